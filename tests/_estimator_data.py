"""Controlled data for the estimator tests: class-structured features and source probabilities.

The base seed is read when called from ``TLREG_TEST_SEED`` (default 5), so a failure seen with one
seed can be replayed: ``TLREG_TEST_SEED=123 pytest tests/test_estimators*.py``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from tlreg.advisor.estimators import EstimatorInfo


def base_seed() -> int:
    """The pinned global test seed."""
    return int(os.environ.get("TLREG_TEST_SEED", "5"))


def rng_for(offset: int = 0) -> np.random.Generator:
    """A generator derived from the global seed and a per-test offset."""
    return np.random.default_rng([base_seed(), offset])


def _draw(seed: int, n: int, d: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced shuffled labels, unit-scale class means [c, d] and noise [n, d], all from ``seed``."""
    rng = rng_for(seed)
    labels = np.arange(n) % c
    rng.shuffle(labels)
    return labels, rng.normal(size=(c, d)), rng.normal(size=(n, d))


def make_classification(
    seed: int,
    *,
    n: int = 90,
    d: int = 6,
    c: int = 3,
    separation: float = 1.0,
    mean_scale: float = 1.5,
    offset: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``separation · mean_scale · μ_y + noise`` with balanced classes (n // c samples or one more).

    The class means and the noise are drawn once from ``seed``, so varying only ``separation`` gives a
    family whose class structure strengthens monotonically.
    """
    labels, means, noise = _draw(seed, n, d, c)
    return separation * mean_scale * means[labels] + noise + offset, labels


def source_probs_for(features: np.ndarray, seed: int, *, k: int = 8, temperature: float = 1.0) -> np.ndarray:
    """Softmax of a fixed random linear head on the features: probabilities that carry as much class
    information as the features do."""
    rng = rng_for(10_000 + seed)
    logits = features @ rng.normal(size=(features.shape[1], k)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def make_source_task(
    seed: int, *, n: int = 160, d: int = 6, c: int = 4, separation: float = 1.0, extra_sources: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and source probabilities from a fixed linear head: its first c source classes look
    along the (orthonormal) class means, the others along weaker random directions. The better the
    features separate the classes, the more the source predictions say about the labels."""
    labels, draws, noise = _draw(seed, n, d, c)
    means = np.linalg.qr(draws.T)[0].T * 2.0  # c orthogonal means of norm 2 (c <= d)
    features = separation * means[labels] + noise
    head = np.concatenate([means, 0.5 * rng_for(20_000 + seed).normal(size=(extra_sources, d))]).T
    logits = features @ head
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return features, labels, probs / probs.sum(axis=1, keepdims=True)


def call_kwargs(info: EstimatorInfo, features: np.ndarray, seed: int) -> dict[str, Any]:
    """``source_probs`` for estimators that need them, built from the features."""
    return {"source_probs": source_probs_for(features, seed)} if info.needs_source_probs else {}
