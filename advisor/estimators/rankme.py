"""RankMe: the effective rank of the features, a label-free measure of representation quality."""

from __future__ import annotations

from typing import Any

import numpy as np

from .registry import register
from .validation import check_features, check_task

ALL_TASKS = ("classification", "regression", "unlabelled")


@register(
    "rankme",
    paper="Garrido et al., RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised "
    "Representations by Their Rank, ICML 2023",
    needs_labels=False,
    tasks=ALL_TASKS,
    cost="one Gram (min(N,D)² · max(N,D)) and its eigenvalues",
)
def rankme(
    features: Any,
    labels: Any = None,
    *,
    source_probs: Any = None,
    task: str = "classification",
    eps: float = 1e-7,
) -> float:
    r"""Smooth effective rank of the feature matrix: exp of the entropy of its normalised singular values.

    .. math::
        p_k = \frac{σ_k(F)}{\lVert σ(F)\rVert_1} + ε,\quad
        \mathrm{RankMe}(F) = \exp\Big(-\sum_{k=1}^{\min(N, D)} p_k \log p_k\Big).

    A representation that collapses onto a few directions carries little that a downstream head
    can use; the paper shows the rank tracks downstream accuracy without any label. Labels are
    ignored, so it scores any task, including unlabelled data.

    Choices: ε = 1e-7 (the paper's); the features are not centred (as in the paper); the singular
    values are the square roots of the eigenvalues of the smaller Gram matrix, which costs a
    fraction of a full SVD and is exact to rounding for all but negligible singular values.

    Shape:
        - features: (N, D) float.
        - labels: ignored (may be None).
        - source_probs: ignored.
        - score: scalar in [1, min(N, D)] (up to ε), higher is better.
    """
    check_task(task, ALL_TASKS, estimator="rankme")
    f = check_features(features, estimator="rankme")
    gram = f.T @ f if f.shape[0] >= f.shape[1] else f @ f.T
    singular = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))
    p = singular / singular.sum() + eps
    return float(np.exp(-(p * np.log(p)).sum()))
