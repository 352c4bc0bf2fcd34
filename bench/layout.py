"""The benchmarks' training loop in the default and the channels-last memory layout, side by side.

Every fine-tune of the two benchmark builds (``bench/zoo_train.py``: ``train`` then ``accuracy``) runs
its model in the channels-last layout, which oneDNN's CPU convolutions prefer. This measures what
that buys on the Hub-like build's own work: each EfficientNet-Lite fine-tuned for ``--steps`` steps
of 32 images at 64 px, then its predictions on 500 images, once in each layout with the same seed
and one torch thread (as the builds' worker processes run),
the two layouts alternated round by round in one process (this machine is noisy), and how far the two
runs' weights end apart (the same arithmetic, rounded differently; but AdamW divides each gradient
by its own running size, so a weight whose gradient is rounding-sized still moves by about the
learning rate a step, one way or the other: the gap can reach steps x lr, 1e-2 here).

tlreg's own fine-tune (``tlreg finetune --mode full``) trains through ``FeatureExtractor.features``,
which hands timm models channels-last batches too: the second table times its training steps
(``pkg:efficientnet_lite0`` at its 224 px, batch 16, all cores) against the same steps with the
extractor's ``channels_last`` switched off.

    python bench/layout.py [--steps 10] [--rounds 3] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
import zoo_train
from zoo_train import Budget

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def one_run(
    arch: str, x: torch.Tensor, y: torch.Tensor, test: torch.Tensor, steps: int, channels_last: bool
) -> tuple[float, dict[str, torch.Tensor]]:
    """Seconds of one fine-tune (train, then predict ``test``) and the trained weights."""
    torch.manual_seed(0)
    model = timm.create_model(arch, num_classes=10)
    start = time.perf_counter()
    zoo_train.train(
        model, x, y, Budget(steps, 32, 1e-3, 0.01, max(1, steps // 10)), seed=0, channels_last=channels_last
    )
    zoo_train.predict(model, test, channels_last=channels_last)
    return time.perf_counter() - start, {k: v.detach().clone() for k, v in model.named_parameters()}


def product_steps(rounds: int, steps: int) -> None:
    """tlreg's fine-tune step (features with autograd, a new head, AdamW) in both layouts, alternated."""
    import tempfile

    from tlreg.registry import Registry

    threads = zoo_train.set_threads()
    with tempfile.TemporaryDirectory() as tmp:
        registry = Registry(f"sqlite:///{tmp}/layout.db")
        try:
            ref = registry.add_ref("pkg:efficientnet_lite0")[0].ref
        except Exception as exc:  # the demo extra is not installed
            print(f"\ntlreg finetune's steps: skipped ({exc})")
            return
        extractor = registry.load(ref)
    head = torch.nn.Linear(extractor.feature_dim, 10)
    params = list(extractor.module.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 224, 224, generator=generator)
    y = torch.randint(0, 10, (16,), generator=generator)
    sides = {"default": False, "channels-last": True}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    extractor.module.train()

    def step(channels_last: bool) -> None:
        extractor.channels_last = channels_last
        loss = torch.nn.functional.cross_entropy(head(extractor.features(x)), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for channels_last in sides.values():  # untimed: the first step pays for loading and oneDNN's set-up
        step(channels_last)
    for _ in range(rounds):
        for name, channels_last in sides.items():
            start = time.perf_counter()
            for _ in range(steps):
                step(channels_last)
            seconds[name].append((time.perf_counter() - start) / steps)
    default, fast = statistics.median(seconds["default"]), statistics.median(seconds["channels-last"])
    print(f"\ntlreg finetune's training step: {ref}, batch 16 at 224 px, torch threads {threads}")
    print(f"  default {default:.2f} s/step  channels-last {fast:.2f} s/step  speed-up {default / fast:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="training steps per fine-tune (default 10)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as the builds' workers)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: lite0, 2 steps, 1 round")
    args = parser.parse_args()
    archs, steps, rounds = (LITES[:1], 2, 1) if args.quick else (LITES, args.steps, args.rounds)
    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, 64, 64, generator=generator)
    y = torch.randint(0, 10, (256,), generator=generator)
    test = torch.randn(500, 3, 64, 64, generator=generator)
    print(f"fine-tune: {steps} steps x 32 images at 64 px, then 500 predictions; torch threads {threads}")
    print(f"{'model':<20}{'default s':>10}{'channels-last s':>16}{'speed-up':>9}{'max |dw|':>10}")
    for arch in archs:
        seconds: dict[bool, list[float]] = {False: [], True: []}
        weights = {}
        for _ in range(rounds):
            for channels_last in (False, True):
                spent, weights[channels_last] = one_run(arch, x, y, test, steps, channels_last)
                seconds[channels_last].append(spent)
        default, fast = statistics.median(seconds[False]), statistics.median(seconds[True])
        drift = max(
            float((weights[True][k].float() - weights[False][k].float()).abs().max()) for k in weights[True]
        )
        print(f"{arch:<20}{default:>10.2f}{fast:>16.2f}{default / fast:>8.2f}x{drift:>10.1e}")
    print(f"(medians of {rounds} alternated rounds)")
    product_steps(rounds, 1 if args.quick else 3)


if __name__ == "__main__":
    main()
