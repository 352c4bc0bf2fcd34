"""Leave-one-out k-nearest-neighbour accuracy under cosine similarity, searched with FAISS."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .registry import register
from .validation import check_classification

#: Votes are tallied in blocks of rows so that the [rows, C] tally stays about this many cells.
_TALLY_CELLS = 1 << 22


def neighbours(features: NDArray[np.float64], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Cosine similarities and ids of each row's k nearest other rows, ``[N, k]`` each.

    FAISS's exact inner-product index on L2-normalised rows: it searches in blocks, so no N x N
    matrix is ever formed. The query itself is dropped wherever it appears among the k + 1 hits
    (not necessarily first: duplicates tie with it); rows whose hits do not contain it drop the last.
    """
    import faiss

    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = np.ascontiguousarray(features / np.where(norms > 0, norms, 1.0), dtype=np.float32)
    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit)
    sims, ids = index.search(unit, k + 1)
    is_self = ids == np.arange(unit.shape[0])[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    n = unit.shape[0]
    return sims[keep].reshape(n, k), ids[keep].reshape(n, k).astype(np.int64)


def vote(neighbour_labels: NDArray[np.int64], sims: NDArray[np.float32], n_classes: int) -> NDArray[np.int64]:
    """Majority class among the neighbours; a tie goes to the class with the larger summed similarity."""
    n = neighbour_labels.shape[0]
    predictions = np.empty(n, dtype=np.int64)
    block = max(1, _TALLY_CELLS // n_classes)
    for start in range(0, n, block):
        labs, sim = neighbour_labels[start : start + block], sims[start : start + block].astype(np.float64)
        rows = labs.shape[0]
        cell = (np.arange(rows)[:, None] * n_classes + labs).ravel()
        counts = np.bincount(cell, minlength=rows * n_classes).reshape(rows, n_classes)
        mass = np.bincount(cell, weights=sim.ravel(), minlength=rows * n_classes).reshape(rows, n_classes)
        leaders = counts == counts.max(axis=1, keepdims=True)
        predictions[start : start + rows] = np.where(leaders, mass, -np.inf).argmax(axis=1)
    return predictions


@register(
    "knn",
    paper="Cover & Hart, Nearest neighbor pattern classification, IEEE Trans. Inf. Theory 1967 (as a "
    "transferability baseline: Kornblith et al., Do Better ImageNet Models Transfer Better?, CVPR 2019)",
    cost="exact FAISS search, N² · D flops in blocks, memory O(N k)",
    ceiling=lambda n_classes: 1.0,
)
def knn(features: Any, labels: Any, *, source_probs: Any = None, k: int = 10) -> float:
    r"""Leave-one-out accuracy of a k-nearest-neighbour vote under cosine similarity.

    .. math::
        \mathrm{kNN} = \frac{1}{N}\sum_{i=1}^{N} \mathbb{1}\Big[y_i = \arg\max_c
            \big|\{j \in \mathcal{N}_k(i) : y_j = c\}\big|\Big],

    where :math:`\mathcal{N}_k(i)` are the k rows most similar to row i (cosine, i excluded). It asks
    how well the features already separate the target classes without any training, which is what
    fine-tuning a linear head builds on.

    Choices: k = 10 (capped at N - 1), a common value in feature-quality evaluations that is robust
    to label noise yet local enough for small classes; a tied vote goes to the class with the larger
    summed similarity; rows of zeros get similarity 0 to everything.

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar in [0, 1], higher is better.
    """
    f, y, n_classes = check_classification(features, labels, estimator="knn")
    kk = max(1, min(int(k), f.shape[0] - 1))
    sims, ids = neighbours(f, kk)
    predictions = vote(y[ids], sims, n_classes)
    return float((predictions == y).mean())
