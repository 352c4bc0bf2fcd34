"""ETran: energy (is the target in-distribution?), LDA classification and SVD regression scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._linalg import class_sums, fit_lda, logsumexp_rows, minmax_combine, rank_cutoff, softmax
from .registry import register
from .validation import (
    check_classification,
    check_features,
    check_labels,
    check_targets,
    check_task,
    check_width,
)

PAPER = "Gholami et al., ETran: Energy-Based Transferability Estimation, ICCV 2023"
COMPONENTS = ("energy", "lda", "svd")
ALL_TASKS = ("classification", "regression", "unlabelled")


def pool_normalize_etran(
    component_scores: Mapping[str, Mapping[str, float]], *, weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    r"""The paper's combination across a pool of models: min-max normalise each component over the models,
    then add them, :math:`T_m = \hat S_{en} + \hat S_{lda} + \hat S_{svd}`.

    ``weights`` (default 1 each) reweights components: the authors' released code uses
    ``{"energy": 0.15, "lda": 0.85}`` for classification; ``{"svd": 0}`` drops the regression term,
    which the paper adds for detection. Give any subset of the components, the same for every model.
    """
    return minmax_combine(component_scores, COMPONENTS, weights or {}, estimator="etran")


def _energy(f: np.ndarray, tail_fraction: float | None) -> float:
    energy = logsumexp_rows(f)
    if tail_fraction is not None:
        keep = max(1, int(np.ceil(float(tail_fraction) * energy.shape[0])))
        energy = np.sort(energy)[:keep]
    return float(energy.mean())


def _lda(f: np.ndarray, y: np.ndarray, n_classes: int, decay: float) -> float:
    fit = fit_lda(f, y, n_classes, shrinkage=None, decay=decay)
    return float(softmax(fit.logits(f))[np.arange(f.shape[0]), y].mean())


def _svd(f: np.ndarray, targets: np.ndarray | None, y: np.ndarray | None, n_classes: int) -> float:
    """``-‖Y - F F⁺ Y‖² / (N T)`` from the eigendecomposition of FᵀF (callers ensure N > D)."""
    values, vectors = np.linalg.eigh(f.T @ f)
    keep = values > rank_cutoff(np.clip(values, 0.0, None), f.shape)
    fty = class_sums(f, y, n_classes).T if targets is None else f.T @ targets
    projected = (vectors[:, keep].T @ fty) / np.sqrt(values[keep])[:, None]
    energy = float(f.shape[0]) if targets is None else float((targets**2).sum())
    columns = n_classes if targets is None else targets.shape[1]
    residual = max(energy - float((projected**2).sum()), 0.0)
    return -residual / (f.shape[0] * columns)


@register(
    "etran_energy", paper=PAPER, needs_labels=False, tasks=ALL_TASKS, cost="O(N D): a log-sum-exp per sample"
)
def etran_energy(
    features: Any,
    labels: Any = None,
    *,
    source_probs: Any = None,
    task: str = "classification",
    tail_fraction: float | None = None,
) -> float:
    r"""ETran's energy score: mean negative free energy of the features read as logits (label-free).

    .. math::
        S_{en} = \frac{1}{N}\sum_{i=1}^{N} -E(x_i),\quad -E(x) = \log \sum_{d=1}^{D} e^{f_d(x)}

    (temperature 1). Energy-based OOD detection reads a low energy as in-distribution: a target
    whose features have high log-sum-exp looks familiar to the model. ``tail_fraction`` averages only
    that fraction of samples with the lowest log-sum-exp (the authors' released code uses 0.005);
    the default ``None`` averages all samples, as the paper's formula reads. Labels are ignored.

    Shape:
        - features: (N, D) float.
        - labels: ignored (may be None).
        - source_probs: ignored.
        - score: scalar, higher is better.
    """
    check_task(task, ALL_TASKS, estimator="etran_energy")
    return _energy(check_features(features, estimator="etran_energy"), tail_fraction)


@register(
    "etran_lda", paper=PAPER, cost="one D x D within-class scatter, its largest eigenvalue, a Cholesky solve"
)
def etran_lda(features: Any, labels: Any, *, source_probs: Any = None, decay: float = 5.0) -> float:
    r"""ETran's classification score: mean probability of the true class under a shrinkage LDA.

    .. math::
        S_{lda} = \frac{1}{N}\sum_{i=1}^{N} p_{\mathrm{LDA}}(y_i \mid x_i),

    with the regularised LDA of SFDA's first stage (:func:`tlreg.advisor.estimators.sfda.sfda`: within
    scatter shrunk by :math:`λ = \max(e^{-5σ_{\max}(S_w)}, 10^{-10})`), without the self-challenging
    mix. The authors' code decomposes ``inv(Sw) @ Sb`` with a symmetric solver, which makes its
    classifier a nearest-mean rule; this follows the paper's LDA. Wide features (D > N - C) are refused.

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar in (0, 1], higher is better.
    """
    f, y, n_classes = check_classification(features, labels, estimator="etran_lda")
    check_width(f.shape[1], f.shape[0], n_classes, estimator="etran_lda")
    return _lda(f, y, n_classes, decay)


@register(
    "etran_svd",
    paper=PAPER,
    tasks=("classification", "regression"),
    cost="one Gram and its eigendecomposition (as LogME)",
)
def etran_svd(features: Any, labels: Any, *, source_probs: Any = None, task: str = "classification") -> float:
    r"""ETran's regression score: negative mean squared error of the least-squares fit of the targets.

    With the thin SVD :math:`F = U Σ V^\top` (rank-truncated) the minimum-norm solution is
    :math:`\hat W = V Σ^{-1} U^\top Y`, and

    .. math::
        S_{svd} = -\frac{1}{N T}\lVert Y - F\hat W\rVert_F^2 = -\frac{1}{N T}\big(\lVert Y\rVert_F^2
            - \lVert U^\top Y\rVert_F^2\big),

    Y being the one-hot labels (T = C) for classification or the targets (T columns) for
    regression. U comes from the eigendecomposition of FᵀF, as in LogME. With
    D >= N the fit interpolates and every model scores 0, so classification needs D <= N - C and
    regression D < N.

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, or (N,) / (N, T) float targets with ``task="regression"``.
        - source_probs: ignored.
        - score: scalar <= 0, higher is better.
    """
    check_task(task, ("classification", "regression"), estimator="etran_svd")
    f = check_features(features, estimator="etran_svd")
    if task == "regression":
        targets = check_targets(labels, f.shape[0], estimator="etran_svd")
        check_width(f.shape[1], f.shape[0], 1, estimator="etran_svd")
        return _svd(f, targets, None, 0)
    y, n_classes = check_labels(labels, f.shape[0], estimator="etran_svd")
    check_width(f.shape[1], f.shape[0], n_classes, estimator="etran_svd")
    return _svd(f, None, y, n_classes)


@register(
    "etran",
    paper=PAPER,
    components=COMPONENTS,
    pool_normalizer=pool_normalize_etran,
    cost="etran_energy + etran_lda + etran_svd",
)
def etran(
    features: Any,
    labels: Any,
    *,
    source_probs: Any = None,
    tail_fraction: float | None = None,
    decay: float = 5.0,
) -> float:
    r"""ETran's per-model score: the plain sum of its energy, LDA and SVD components.

    .. math::
        \mathrm{ETran} = S_{en} + S_{lda} + S_{svd}

    The paper min-max normalises each component across the candidate models before adding them;
    that needs the pool, so it lives in :func:`pool_normalize_etran` (``pool_normalize("etran", ...)``).
    This un-normalised sum is what one model can be given alone; its energy term, being on the
    scale of the features, usually dominates. Wide features (D > N - C) are refused.

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar, higher is better.
    """
    f, y, n_classes = check_classification(features, labels, estimator="etran")
    check_width(f.shape[1], f.shape[0], n_classes, estimator="etran")
    return _energy(f, tail_fraction) + _lda(f, y, n_classes, decay) + _svd(f, None, y, n_classes)
