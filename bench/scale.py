"""How the cost of ``tlreg recommend`` grows with the number of candidates and with the sample (issue #9).

1. candidates: ``recommend`` on one small image folder (3 classes x 16 images, 32 px) with 1, 4, 16
   and 64 tiny timm models (``test_*`` architectures, different seeds, saved as local folders), each
   count in a fresh registry and feature cache, defaults otherwise (random-init baselines, bootstrap
   of 50 rounds, history). The wall time is split into its parts, all measured in the same run: the
   embedding (model loads and forward passes, from the run record), the estimators on the full
   sample (from the run record), the bootstrap (timed around it) and the rest (data, database,
   ranking, dataset signature).
2. samples: synthetic features of a realistic width (D=512, C=10 and 100 classes, a source head of
   1000 classes; ``bench/estimators.py``'s generator) for N = 1k, 10k, 50k samples through each
   default estimator of a classification task (``rank.DEFAULT_ESTIMATORS``)
   and the bootstrap (50 rounds of at most 5000 items, as ``recommend`` runs it), per candidate, next
   to what embedding N samples costs: N / the throughput of resnet18 at 224 px through tlreg's
   embedding, measured here on a few hundred images.

Every figure is measured on this machine in this run; where a figure is extrapolated (the embedding
of N samples from a measured throughput) the table says so.

    python bench/scale.py [candidates|samples|all] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from tlreg.advisor import answer as answer_module
from tlreg.advisor import recommend
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.confidence import bootstrap
from tlreg.advisor.estimators import score
from tlreg.advisor.rank import DEFAULT_ESTIMATORS
from tlreg.registry import Registry, RunStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from estimators import make_case  # bench/estimators.py: the same synthetic case

ARCHS = ("test_resnet", "test_vit", "test_efficientnet", "test_convnext", "test_byobnet", "test_nfnet")
ROUNDS = 50  # recommend's default --bootstrap


def image_folder(root: Path, *, classes: int, per_class: int, size: int, seed: int = 0) -> Path:
    """Classes that differ in colour, so that features can separate them (as in the tests)."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size, 3))
            pixels[..., c % 3] += 150
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def save_model(folder: Path, arch: str, seed: int, num_classes: int = 10) -> Path:
    torch.manual_seed(seed)
    timm.models.save_for_hf(
        timm.create_model(arch, num_classes=num_classes), str(folder), safe_serialization=True
    )
    return folder


class TimedBootstrap:
    """Wraps the bootstrap ``recommend`` calls (``tlreg.advisor.answer``), to time it inside a real run."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return bootstrap(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def bench_candidates(work: Path, counts: tuple[int, ...]) -> None:
    data = image_folder(work / "images", classes=3, per_class=16, size=32)
    folders = [save_model(work / f"m{i:02d}", ARCHS[i % len(ARCHS)], seed=i) for i in range(max(counts))]
    print(
        f"\n1. candidates: recommend on {3 * 16} images (32 px), tiny timm models, defaults (baselines, "
        f"bootstrap {ROUNDS}, history)"
    )
    header = ("models", "jobs", "total s", "embed s", "estim. s", "bootstrap s", "other s", "estim.+boot.")
    print(" ".join(f"{h:>12}" for h in header))
    for count in counts:
        registry = Registry(f"sqlite:///{work / f'reg-{count}.db'}")
        for folder in folders[:count]:
            registry.add_ref(str(folder))
        timed = TimedBootstrap()
        answer_module.bootstrap = timed
        try:
            start = time.perf_counter()
            result = recommend(data, registry=registry, cache=FeatureCache(work / f"cache-{count}"))
            total = time.perf_counter() - start
        finally:
            answer_module.bootstrap = bootstrap
        _, candidates, scores, _ = RunStore(registry.engine).get(result.run_id)
        embed = sum(c.seconds or 0.0 for c in candidates)
        estim = sum(s.seconds for s in scores)
        other = total - embed - estim - timed.seconds
        share = (estim + timed.seconds) / total
        row = (count, len(candidates), total, embed, estim, timed.seconds, other)
        print(" ".join(f"{v:>12}" if isinstance(v, int) else f"{v:>12.2f}" for v in row) + f"{share:>12.1%}")
        registry.engine.dispose()


def embedding_throughput(work: Path, n: int) -> float:
    """Samples/s of resnet18 (random init: the same cost as pretrained) at 224 px through recommend."""
    folder = save_model(work / "resnet18", "resnet18", seed=0, num_classes=1000)
    data = image_folder(work / "photos", classes=2, per_class=n // 2, size=256)
    registry = Registry(f"sqlite:///{work / 'reg-throughput.db'}")
    registry.add_ref(str(folder))
    result = recommend(
        data,
        registry=registry,
        cache=FeatureCache(work / "cache-throughput"),
        baselines=False,
        bootstrap=0,
        history=False,
    )
    return float(result.ranking[0].samples_per_s)


def bench_samples(work: Path, sizes: tuple[int, ...], classes: tuple[int, ...], photos: int) -> None:
    speed = embedding_throughput(work, photos)
    print(
        f"\n2. samples: per candidate, D=512, source head of 1000 classes; embedding extrapolated from "
        f"resnet18 at 224 px: {speed:.1f} samples/s measured on {photos} images"
    )
    names = DEFAULT_ESTIMATORS["classification"]
    header = ("N", "C", *(f"{name} s" for name in names), f"boot.{ROUNDS} s", "estim.+boot.")
    header += ("embed s", "share")
    print(" ".join(f"{h:>16}" for h in header))
    for n in sizes:
        for c in classes:
            features, labels, probs = make_case(n, 512, c)
            features, probs = features.astype(np.float32), probs.astype(np.float32)
            seconds = {}
            for name in names:
                start = time.perf_counter()
                score(name, features, labels, source_probs=probs)
                seconds[name] = time.perf_counter() - start
            start = time.perf_counter()
            bootstrap({"m": (features, probs)}, labels, "classification", list(names), ["m"], rounds=ROUNDS)
            boot = time.perf_counter() - start
            estim = sum(seconds.values()) + boot
            embed = n / speed
            cells = (n, c, *(f"{seconds[name]:.2f}" for name in names), f"{boot:.2f}", f"{estim:.2f}")
            cells += (f"{embed:.1f}", f"{estim / (estim + embed):.1%}")
            print(" ".join(f"{cell:>16}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="?", default="all", choices=("candidates", "samples", "all"))
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}"
    )
    with tempfile.TemporaryDirectory(prefix="tlreg-scale-") as tmp:
        work = Path(tmp)
        if args.which in ("candidates", "all"):
            bench_candidates(work, (1, 4) if args.quick else (1, 4, 16, 64))
        if args.which in ("samples", "all"):
            if args.quick:
                bench_samples(work, (1000, 5000), (10,), photos=32)
            else:
                bench_samples(work, (1000, 10_000, 50_000), (10, 100), photos=256)


if __name__ == "__main__":
    main()
