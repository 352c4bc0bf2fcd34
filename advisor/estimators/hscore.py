"""H-score and its shrinkage-regularised form: between-class over total feature covariance."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

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
    cost="one D x D covariance, the Ledoit-Wolf shrinkage (N D²) and a Cholesky solve (D³)",
)
def hscore_shrinkage(features: Any, labels: Any, *, source_probs: Any = None) -> float:
    r"""Regularised H-score, with the Ledoit-Wolf shrunk covariance of the features.

    .. math::
        \mathcal{H}_α(f) = \operatorname{tr}\left(\operatorname{cov}_α(f)^{-1}\,(1 - α)\,
            \operatorname{cov}(\mathbb{E}[f \mid y])\right),\quad
        \operatorname{cov}_α(f) = (1-α)\operatorname{cov}(f)
            + α\,\frac{\operatorname{tr}\operatorname{cov}(f)}{D} I,

    with α the Ledoit-Wolf shrinkage intensity (scikit-learn's ``ledoit_wolf``). Shrinking the
    covariance makes the score stable when D approaches or exceeds N, where plain H-score breaks
    down; the factor (1 - α) shrinks the between-class covariance alike. Both covariances use the 1/N
    normaliser (the TLlib code uses N - 1 for the second one, a constant factor N/(N-1)).

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar >= 0, higher is better.
    """
    from sklearn.covariance import ledoit_wolf

    f, y, n_classes = check_classification(features, labels, estimator="hscore_shrinkage")
    centred = f - f.mean(axis=0)
    between = _between_factor(centred, y, n_classes)
    n, d = centred.shape
    if n < d:  # wide features (the usual case for a sample of a few hundred): work in the N x N Gram space
        value = _shrinkage_hscore_dual(centred, between)
        if value is not None:
            return value
    shrunk, alpha = ledoit_wolf(centred, assume_centered=True)
    try:
        solved = scipy.linalg.cho_solve(scipy.linalg.cho_factor(shrunk), between.T)
    except np.linalg.LinAlgError:  # α = 0 with a singular covariance: fall back to the pseudo-inverse
        solved = scipy.linalg.pinvh(shrunk) @ between.T
    return float((1.0 - alpha) * np.einsum("cd,dc->", between, solved))


def _shrinkage_hscore_dual(centred: Array, between: Array) -> float | None:
    """``hscore_shrinkage`` from the N x N Gram matrix: O(N² D + N³) instead of O(N D² + D³).

    The Ledoit-Wolf intensity needs only ``tr(S)``, ``||S||_F²`` and the squared row norms, all
    functions of G = X Xᵀ (the same quantities scikit-learn's ``ledoit_wolf_shrinkage`` sums in D x D
    blocks). With a = 1 - α and b = α tr(S)/D, Woodbury gives
    (a S + b I)⁻¹ = (1/b) (I - Xᵀ (N b/a I + G)⁻¹ X), so the trace against BᵀB needs B Xᵀ only.
    Returns None when b = 0 (no shrinkage of a singular covariance): the caller's pseudo-inverse path.
    """
    n, d = centred.shape
    gram = centred @ centred.T
    trace = float(np.trace(gram))
    mu = trace / (n * d)
    beta_ = float(np.sum(np.diag(gram) ** 2))
    delta_ = float(np.sum(gram**2)) / n**2
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace / n + d * mu**2) / d
    beta = min(beta, delta)
    alpha = 0.0 if beta == 0 else beta / delta
    a, b = 1.0 - alpha, alpha * mu
    if a <= 0.0:
        return 0.0
    if b <= 0.0:
        return None
    projected = between @ centred.T  # B Xᵀ, [C, N]
    solved = scipy.linalg.solve(n * b / a * np.eye(n) + gram, projected.T, assume_a="pos")
    trace_term = float(np.einsum("cn,nc->", projected, solved))
    return float(a * (float((between**2).sum()) - trace_term) / b)
