"""Benchmark of tlreg's transferability estimators, all measured in one run on one synthetic case.

    python bench/estimators.py           # N=5000, D=2048, C=100
    python bench/estimators.py --quick   # N=1000, D=256, C=20, a smoke run

1. LogME against a straightforward implementation written here as the paper's algorithm reads
   (an SVD of FᵀF, then a Python loop over classes with the scalar fixed-point iteration): the
   speed-up, and the same value to 1e-6 relative (asserted).
2. LogME against its floor: the one Gram matrix and symmetric eigendecomposition it cannot avoid,
   timed alone.
3. Every registered estimator on the same case: seconds and the ratio to LogME.

Timings are the best of ``--repeat`` runs (``time.perf_counter``); an estimator whose first run
exceeds ``--slow`` seconds is run once. Threads are left at the libraries' defaults (printed).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tlreg.advisor.estimators import available, score


def make_case(
    n: int, d: int, c: int, *, seed: int = 0, latent: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features with class structure and a fast-decaying spectrum, their labels, and source probabilities.

    Class means and within-class noise live in a ``latent``-dimensional space mapped into D dimensions,
    plus small isotropic noise, as the features of a pretrained network roughly do (so PCA-based scores
    keep tens, not thousands, of components). The source head is a random linear map to 1000 classes.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    rng.shuffle(labels)
    means = rng.normal(size=(c, latent)) * 0.4
    mixing = rng.normal(size=(latent, d)) / math.sqrt(latent)
    features = (means[labels] + rng.normal(size=(n, latent))) @ mixing + 0.3 * rng.normal(size=(n, d))
    logits = features @ rng.normal(size=(d, 1000)) / math.sqrt(d) * 3.0
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return features, labels, probs / probs.sum(axis=1, keepdims=True)


def naive_logme(features: np.ndarray, labels: np.ndarray, *, tol: float = 1e-6, max_iter: int = 100) -> float:
    """LogME as the paper's algorithm reads: SVD of FᵀF, then per class the scalar fixed point."""
    n, d = features.shape
    v, s, _ = np.linalg.svd(features.T @ features)
    keep = s > s.max() * max(n, d) * np.finfo(np.float64).eps
    sigma, v = s[keep], v[:, keep]
    u = features @ v / np.sqrt(sigma)
    evidences = []
    for c in range(int(labels.max()) + 1):
        y = (labels == c).astype(np.float64)
        x2 = (u.T @ y) ** 2
        res_out = max(float(y @ y - x2.sum()), 0.0)
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
            res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + res_out
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= tol:
                break
        t = alpha / beta
        m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
        res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + res_out
        log_det = float(np.log(alpha + beta * sigma).sum()) + (d - sigma.size) * math.log(alpha)
        evidence = (
            d / 2 * math.log(alpha)
            + n / 2 * math.log(beta)
            - log_det / 2
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * math.log(2 * math.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def floor(features: np.ndarray) -> None:
    """The work LogME cannot avoid: one Gram matrix and one symmetric eigendecomposition."""
    np.linalg.eigh(features.T @ features)


def best_of(fn: Callable[[], Any], repeat: int, slow: float) -> tuple[float, Any, int]:
    """``(best seconds, last result, runs)``."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if times[-1] > slow:
            break
    return min(times), result, len(times)


def threads() -> str:
    try:
        from threadpoolctl import threadpool_info

        pools = {f"{p['internal_api']}": p["num_threads"] for p in threadpool_info()}
        return ", ".join(f"{k}={v}" for k, v in sorted(pools.items())) or "unknown"
    except ImportError:
        return "threadpoolctl not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="A small case (N=1000, D=256, C=20) for a smoke run."
    )
    parser.add_argument("--repeat", type=int, default=3, help="Runs per timing; the best is reported.")
    parser.add_argument("--slow", type=float, default=30.0, help="Run an estimator once if it takes longer.")
    args = parser.parse_args()
    n, d, c = (1000, 256, 20) if args.quick else (5000, 2048, 100)
    features, labels, probs = make_case(n, d, c)
    print(
        f"case: N={n} D={d} C={c} float64, seed 0 | {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs | threads: {threads()} | numpy {np.__version__}"
    )

    t_fast, fast, runs = best_of(lambda: score("logme", features, labels), args.repeat, args.slow)
    t_naive, naive, naive_runs = best_of(lambda: naive_logme(features, labels), args.repeat, args.slow)
    t_floor, _, floor_runs = best_of(lambda: floor(features), args.repeat, args.slow)
    relative = abs(fast - naive) / abs(naive)
    print("\n1-2. LogME (best of runs)")
    print(f"  {'tlreg logme':<34}{t_fast:8.3f} s  value {fast:.10f}  ({runs} runs)")
    print(
        f"  {'naive (SVD of FᵀF + class loop)':<34}{t_naive:8.3f} s  value {naive:.10f}  ({naive_runs} runs)"
    )
    print(f"  {'floor (FᵀF + eigh only)':<34}{t_floor:8.3f} s  ({floor_runs} runs)")
    print(
        f"  speed-up over naive: {t_naive / t_fast:.2f}x   LogME / floor: {t_fast / t_floor:.2f}x   "
        f"relative difference: {relative:.2e}"
    )
    assert relative <= 1e-6, f"tlreg LogME and the naive algorithm differ by {relative:.2e} (> 1e-6)"

    print("\n3. Every registered estimator on this case")
    print(f"  {'estimator':<18}{'seconds':>10}{'x LogME':>10}{'runs':>6}  value")
    for info in available():
        kwargs = {"source_probs": probs} if info.needs_source_probs else {}
        target = labels if info.needs_labels else None
        try:
            seconds, value, runs = best_of(
                lambda info=info, kwargs=kwargs, target=target: score(info.name, features, target, **kwargs),
                args.repeat,
                args.slow,
            )
        except Exception as error:  # report and go on: the table is for every estimator
            print(f"  {info.name:<18}{'-':>10}{'-':>10}{'-':>6}  {type(error).__name__}: {error}")
            continue
        print(f"  {info.name:<18}{seconds:10.3f}{seconds / t_fast:10.2f}{runs:6d}  {value:.6g}")


if __name__ == "__main__":
    main()
