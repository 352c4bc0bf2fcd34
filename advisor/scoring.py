"""Scoring one set of features with several estimators, tolerant of the ones that cannot score it.

An estimator that cannot score a model (too few samples per class for its covariance, features
wider than the sample, no source head for LEEP) must not sink the whole run: its score is NaN,
the reason is kept, and the ranking uses the estimators that did score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import estimators as est
from .errors import EstimatorError


@dataclass
class Scored:
    estimator: str
    value: float
    seconds: float
    error: str | None = None


def score_features(
    features: np.ndarray, probs: np.ndarray | None, labels: Any, task: str, names: Sequence[str]
) -> list[Scored]:
    """Every applicable estimator in ``names`` on these features; estimators needing a source head
    are left out for models without one."""
    out: list[Scored] = []
    for name in names:
        if est.get(name).needs_source_probs and probs is None:
            continue
        start = time.perf_counter()
        try:
            value, error = est.score(name, features, labels, source_probs=probs, task=task), None
        except EstimatorError as exc:
            value, error = math.nan, str(exc)
        out.append(Scored(name, value, time.perf_counter() - start, error))
    return out


def as_dict(scored: Sequence[Scored]) -> dict[str, float]:
    return {s.estimator: s.value for s in scored}
