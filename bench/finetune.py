"""Benchmark of ``tlreg finetune --mode linear`` (issue #8): cached features vs a forward pass per epoch.

Both sides train the same new head on the same split with the same loop (``tlreg.advisor.handoff.train``:
AdamW, warm-up then cosine, same seed, no early stopping) for the same number of epochs:

- cached, cold: tlreg's linear mode from nothing: one forward pass over the data (features written
  to the feature cache), then every epoch on the cached tensors;
- cached, warm: the same when the features are already cached (after ``tlreg recommend`` on the same
  data, or a second fine-tune): no forward pass at all;
- forward: the backbone frozen, every epoch a forward pass over every training and validation
  image, as a linear probe written as an ordinary training loop does.

Each side's time runs from loading the model (or the cache) to the end of training; data listing
and decoding checks, common to both, are left out. It prints the seconds, the ratios forward /
cached, and the validation accuracies (same features and head, so they agree closely; the batch
order differs, since a DataLoader draws its worker seed from the shuffling generator).

    python bench/finetune.py [--quick] [--epochs N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from tlreg.advisor import finetune
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.embed.device import default_workers
from tlreg.advisor.handoff.inputs import load_data, split
from tlreg.advisor.handoff.mode_setup import ItemBatches
from tlreg.advisor.handoff.model import Classifier, new_head, param_groups, prepare_backbone
from tlreg.advisor.handoff.train import TrainConfig, Trainer
from tlreg.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def colour_folder(root: Path, *, classes: int = 3, per_class: int = 20, size: int = 64) -> Path:
    """Images whose class is their dominant colour: learnable by a linear head on any features."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size, 3))
            pixels[..., c % 3] += 150
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / f"class{c}" / f"{i:03d}.png")
    return root


def forward_per_epoch(reg: Registry, ref: str, data: Path, epochs: int, work: Path) -> tuple[float, float]:
    """The head trained through a frozen backbone, one forward pass per image per epoch."""
    start = time.perf_counter()
    record = reg.get(ref)
    ds = load_data(data, None, modality=record.modality, columns={})
    train_idx, val_idx = split(np.asarray(ds.dataset.labels), 0.2, 0)
    decoded = time.perf_counter() - start
    extractor = reg.load(ref)
    prepare_backbone(extractor)
    head = new_head(extractor.feature_dim, len(ds.classes), seed=0)
    model = Classifier(extractor, head, trainable=[])  # nothing of the backbone trains
    labels = torch.as_tensor(np.asarray(ds.dataset.labels))
    items, workers = ds.dataset.items, default_workers("image")
    batches = {
        name: ItemBatches([items[i] for i in idx], labels[idx], extractor.preprocessor, workers=workers)
        for name, idx in (("train", train_idx), ("val", val_idx))
    }
    cfg = TrainConfig(epochs=epochs, lr=1e-2, batch_size=32, patience=0)
    trainer = Trainer(
        model,
        param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay, head_scale=1.0),
        batches["train"],
        batches["val"],
        cfg,
        device=torch.device("cpu"),
        checkpoint=work / "forward-checkpoint.pt",
        save_best=lambda *args: None,
    )
    torch.manual_seed(0)
    state = trainer.fit()
    return time.perf_counter() - start - decoded, state.best_acc


def case(name: str, reg: Registry, ref: str, data: Path, epochs: int, work: Path) -> None:
    cache = FeatureCache(work / "cache")
    shutil.rmtree(work / "cache", ignore_errors=True)
    common = {"model": ref, "data": data, "epochs": epochs, "patience": 0, "registry": reg, "record": False}
    cold = finetune(out=work / f"{name}-cold", cache=cache, **common)
    warm = finetune(out=work / f"{name}-warm", cache=cache, **common)
    cold_s = cold.timings["features_s"] + cold.timings["train_s"]
    warm_s = warm.timings["features_s"] + warm.timings["train_s"]
    forward_s, forward_acc = forward_per_epoch(reg, ref, data, epochs, work)
    n = cold.data["samples"]
    print(f"\n{name}: {ref}, {n} images, {epochs} epochs, torch threads {torch.get_num_threads()}")
    print(f"  {'side':<14}{'seconds':>9}{'val acc':>9}")
    print(f"  {'forward':<14}{forward_s:>9.2f}{forward_acc:>9.3f}")
    print(f"  {'cached, cold':<14}{cold_s:>9.2f}{cold.best_val_acc:>9.3f}")
    print(f"  {'cached, warm':<14}{warm_s:>9.2f}{warm.best_val_acc:>9.3f}")
    print(f"  speed-up forward / cached: cold {forward_s / cold_s:.1f}x, warm {forward_s / warm_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny model, 3 epochs")
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs per side (default 10; 3 with --quick)"
    )
    args = parser.parse_args()
    epochs = args.epochs or (3 if args.quick else 10)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        reg = Registry(f"sqlite:///{work / 'bench.db'}")
        tiny = work / "tiny-resnet"
        torch.manual_seed(0)
        timm.models.save_for_hf(timm.create_model("test_resnet"), str(tiny), safe_serialization=True)
        case("tiny", reg, reg.add_ref(str(tiny))[0].ref, colour_folder(work / "colours"), epochs, work)
        if args.quick:
            return
        try:
            ref = reg.add_ref("pkg:efficientnet_lite0")[0].ref
        except Exception as exc:  # the demo extra is not installed
            print(f"\ndigits: skipped ({exc})")
            return
        case("digits", reg, ref, ROOT / "data" / "demo" / "digits", epochs, work)


if __name__ == "__main__":
    main()
