"""H-score and its shrinkage-regularised form: between-class over total feature covariance."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._linalg import Array, class_means, rank_cutoff
from .registry import register
from .validation import check_classification, check_width


def _between_factor(centred: Array, labels: np.ndarray, n_classes: int) -> Array:
    """B [C, D] with ``cov(E[f|y]) = BᵀB``: class means of centred features weighted by √(n_c / N)."""
    counts, means = class_means(centred, labels, n_classes)
    return np.sqrt(counts / counts.sum())[:, None] * means


@register(
    "hscore",
    paper="Bao et al., An Information-Theoretic Approach to Transferability in Task Transfer Learning, "
    "ICIP 2019",
    cost="one D x D covariance and its eigendecomposition (D³)",
    ceiling=lambda n_classes: n_classes - 1.0,
)
def hscore(features: Any, labels: Any, *, source_probs: Any = None) -> float:
    r"""H-score: how much of the feature covariance the class-conditional means explain.

    .. math::
        \mathcal{H}(f) = \operatorname{tr}\left(\operatorname{cov}(f)^{+}\,
            \operatorname{cov}(\mathbb{E}[f \mid y])\right),

    the optimal value of the HGR maximal-correlation objective for a linear head on f. Both
    covariances use the 1/N normaliser (any common normaliser cancels). The pseudo-inverse keeps the
    eigenvalues of cov(f) above max(N, D) · eps · λ_max (numpy's rank rule), so directions the
    features do not span contribute nothing instead of rounding noise.

    Wide features: refused when D > N - C (see :mod:`.validation`): cov(f) is then singular, its
    pseudo-inverse whitens the samples into a simplex, and every model gets the same score. Use
    ``hscore_shrinkage`` or LogME there.

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar in [0, C - 1], higher is better.
    """
    f, y, n_classes = check_classification(features, labels, estimator="hscore")
    check_width(f.shape[1], f.shape[0], n_classes, estimator="hscore")
    centred = f - f.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / f.shape[0])
    values = np.clip(values, 0.0, None)
    keep = values > rank_cutoff(values, f.shape)
    between = _between_factor(centred, y, n_classes)
    whitened = (between @ vectors[:, keep]) / np.sqrt(values[keep])
    return float((whitened**2).sum())


@register(
    "hscore_shrinkage",
    paper="Ibrahim, Ponomareva & Mazumder, Newer is not always better: Rethinking transferability metrics, "
    "their peculiarities, stability and performance, ECML-PKDD 2022 (first on OpenReview, 2021)",
    cost="one D x D covariance (N D²) and a linear solve (D³); the N x N Gram matrix instead when D > N",
    ceiling=lambda n_classes: n_classes - 1.0,
)
def hscore_shrinkage(features: Any, labels: Any, *, source_probs: Any = None) -> float:
    r"""Regularised H-score, with the Ledoit-Wolf shrunk covariance of the features.

    .. math::
        \mathcal{H}_α(f) = \operatorname{tr}\left(\operatorname{cov}_α(f)^{-1}\,(1 - α)\,
            \operatorname{cov}(\mathbb{E}[f \mid y])\right),\quad
        \operatorname{cov}_α(f) = (1-α)\operatorname{cov}(f)
            + α\,\frac{\operatorname{tr}\operatorname{cov}(f)}{D} I,

    with α the Ledoit-Wolf shrinkage intensity (as scikit-learn's ``ledoit_wolf`` computes it). Shrinking the
    covariance makes the score stable when D approaches or exceeds N, where plain H-score breaks
    down; the factor (1 - α) shrinks the between-class covariance alike. Both covariances use the 1/N
    normaliser (the TLlib code uses N - 1 for the second one, a constant factor N/(N-1)).

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar in [0, C - 1] (shrinking both covariances cannot raise the plain H-score's bound),
          higher is better.
    """
    f, y, n_classes = check_classification(features, labels, estimator="hscore_shrinkage")
    centred = f - f.mean(axis=0)
    between = _between_factor(centred, y, n_classes)
    n, d = centred.shape
    row_norms = np.einsum("nd,nd->n", centred, centred)
    # The Ledoit-Wolf intensity from whichever product is smaller (||XᵀX||_F = ||XXᵀ||_F).
    if n < d:  # wide features (the usual case for a sample of a few hundred): the N x N Gram space
        gram, covariance = centred @ centred.T, None
        a, b = _ledoit_wolf(row_norms, float(np.sum(gram**2)), n, d)
    else:
        covariance = centred.T @ centred / n
        a, b = _ledoit_wolf(row_norms, float(np.sum(covariance**2)) * n**2, n, d)
    if a <= 0.0:
        return 0.0
    if covariance is None:
        if b > 0.0:
            return _shrinkage_hscore_dual(centred, gram, between, a, b)
        covariance = centred.T @ centred / n  # no shrinkage of a singular covariance: the pseudo-inverse
    shrunk = a * covariance + b * np.eye(d)
    if b > 0.0:  # numpy's LAPACK: see the note in ._linalg on OpenBLAS
        solved = np.linalg.solve(shrunk, between.T)
    else:  # no shrinkage: the covariance may be singular, so the pseudo-inverse
        solved = np.linalg.pinv(shrunk, hermitian=True) @ between.T
    return float(a * np.einsum("cd,dc->", between, solved))


def _ledoit_wolf(row_norms: Array, gram_norm: float, n: int, d: int) -> tuple[float, float]:
    """(1 - α, α tr(S)/D) of the Ledoit-Wolf shrunk covariance (1 - α) S + α tr(S)/D I, S = XᵀX / N.

    The intensity α needs only the squared row norms of the centred X and ``||XᵀX||_F² = ||XXᵀ||_F²``
    (``gram_norm``): the same sums scikit-learn's ``ledoit_wolf_shrinkage`` accumulates in D x D blocks
    (Ledoit & Wolf, A well-conditioned estimator for large-dimensional covariance matrices, 2004), so
    whichever of the D x D or N x N products the caller formed anyway serves.
    """
    trace = float(row_norms.sum())
    mu = trace / (n * d)
    delta_ = gram_norm / n**2
    beta = (float(np.sum(row_norms**2)) / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace / n + d * mu**2) / d
    alpha = 0.0 if delta <= 0.0 else min(max(beta / delta, 0.0), 1.0)  # β is clipped to δ (α ≤ 1)
    return 1.0 - alpha, alpha * mu


def _shrinkage_hscore_dual(centred: Array, gram: Array, between: Array, a: float, b: float) -> float:
    """``hscore_shrinkage`` from the N x N Gram matrix G = X Xᵀ: O(N² D + N³) instead of O(N D² + D³).

    Woodbury: (a S + b I)⁻¹ = (1/b) (I - Xᵀ (N b/a I + G)⁻¹ X), so the trace against BᵀB needs B Xᵀ only.
    """
    n = centred.shape[0]
    projected = between @ centred.T  # B Xᵀ, [C, N]
    solved = np.linalg.solve(n * b / a * np.eye(n) + gram, projected.T)
    trace_term = float(np.einsum("cn,nc->", projected, solved))
    return float(a * (float((between**2).sum()) - trace_term) / b)
