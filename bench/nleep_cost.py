"""What N-LEEP costs ``recommend`` per candidate: the score on the whole sample and the 50 resampling rounds.

    python bench/nleep_cost.py                                  # synthetic 120 x 1280, 10 classes
    python bench/nleep_cost.py --features F.npy --labels y.npy  # your own features (first --n rows)

N-LEEP (Li et al., CVPR 2021) fits a Gaussian mixture to PCA-reduced features. The confidence's
resampling (``advisor/confidence.py``, 50 rounds of stratified 80 % subsamples) used to refit it on
every round; now the mixture is fitted once per (model, sample) by the estimator's ``prepare`` step
and each round re-estimates only ``P(y | component)`` from its rows. Printed side by side, all in this
run: one N-LEEP score; 50 rounds refitting (what every round cost before: ``score`` on the subsample);
50 rounds with the prepared fit (what ``bootstrap`` does now), its speed-up; and for scale LogME and
the shrinkage H-score through the same bootstrap. Timings are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tlreg.advisor.confidence import bootstrap, resample_indices
from tlreg.advisor.estimators import prepared, score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from estimators import make_case  # bench/estimators.py: the same synthetic generator

ROUNDS = 50  # recommend's default --bootstrap
FRACTION = 0.8


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rounds_of(labels: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        resample_indices(len(labels), labels, "classification", fraction=FRACTION, rng=rng)
        for _ in range(ROUNDS)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, help="an [N, D] .npy file (default: synthetic)")
    parser.add_argument("--labels", type=Path, help="an [N] .npy file of class labels, with --features")
    parser.add_argument("--n", type=int, default=120, help="rows used (default 120: the demo's sample)")
    parser.add_argument("--d", type=int, default=1280, help="synthetic width (default 1280)")
    parser.add_argument("--classes", type=int, default=10, help="synthetic classes (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args()
    if args.features is not None:
        if args.labels is None:
            parser.error("--features needs --labels")
        features = np.load(args.features)[: args.n].astype(np.float64)
        labels = np.load(args.labels)[: args.n]
        what = f"{args.features.name}"
    else:
        features, labels, _ = make_case(args.n, args.d, args.classes)
        what = "synthetic (bench/estimators.py's make_case)"
    n, d = features.shape
    classes = len(np.unique(labels))
    subsets = rounds_of(labels)
    print(
        f"{what}: N={n}, D={d}, C={classes}; {ROUNDS} rounds of {len(subsets[0])} rows; {os.cpu_count()} CPUs"
    )

    def refit() -> None:
        for rows in subsets:
            score("nleep", features[rows], labels[rows])

    def reuse() -> None:
        scorer = prepared("nleep", features, labels)
        for rows in subsets:
            scorer(rows)

    one = best_of(args.repeat, lambda: score("nleep", features, labels))
    before = best_of(args.repeat, refit)
    after = best_of(args.repeat, reuse)
    model = {"m": (features, None)}
    default = best_of(
        args.repeat,
        lambda: bootstrap(
            model, labels, "classification", ["logme", "hscore_shrinkage"], ["m"], rounds=ROUNDS
        ),
    )
    with_nleep = best_of(
        args.repeat, lambda: bootstrap(model, labels, "classification", ["nleep"], ["m"], rounds=ROUNDS)
    )
    rows = [
        ("nleep, one score on the whole sample", one),
        (f"nleep, {ROUNDS} rounds refitting the mixture (before)", before),
        (f"nleep, {ROUNDS} rounds reusing one fit (now: prepare + rounds)", after),
        (f"bootstrap of {ROUNDS} rounds, nleep alone", with_nleep),
        (f"bootstrap of {ROUNDS} rounds, logme + hscore_shrinkage", default),
    ]
    for label, seconds in rows:
        print(f"  {label:<64} {seconds:8.3f} s")
    print(f"  speed-up of nleep's rounds: {before / after:.0f}x")


if __name__ == "__main__":
    main()
