"""Linear algebra shared by several estimators: class sums, PCA, Gram spectra, shrunk LDA, softmax.

Kept private: these are means to the scores, not scores. Everything works on validated float64
arrays (see :mod:`.validation`) and never writes into its inputs.

Dense solves and factorisations use numpy's LAPACK (``np.linalg``) rather than scipy's where numpy has
the routine: the numpy and scipy wheels bundle two separate OpenBLAS builds, and when calls alternate
between them (numpy matrix products and ``eigh`` for one estimator, a scipy Cholesky for the next, round
after round in the bootstrap) each library's idle threads spin while the other works: the bootstrap of
LogME + shrinkage H-score ran 3x slower that way on 2 cores. scipy stays for what numpy lacks (a
subset eigensolver, the generalised symmetric eigenproblem), imported where it is used: a cached
``recommend`` ranks without running an estimator and should not pay scipy's import (0.2 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from tlreg.advisor.errors import EstimatorError

Array = NDArray[np.float64]


def class_sums(values: Array, labels: NDArray[np.int64], n_classes: int) -> Array:
    """Row sums per class, ``[C, ...]``: a sparse one-hot product, O(N D) with no N x C dense matrix."""
    import scipy.sparse

    n = labels.shape[0]
    onehot_t = scipy.sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(n_classes, n))
    return np.asarray(onehot_t @ values)


def class_means(features: Array, labels: NDArray[np.int64], n_classes: int) -> tuple[Array, Array]:
    """``(counts [C], means [C, D])``."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return counts, class_sums(features, labels, n_classes) / counts[:, None]


def gram_spectrum(features: Array) -> tuple[Array, Array, bool]:
    """Eigendecomposition of the smaller Gram matrix: ``FᵀF`` (D x D) if N >= D, else ``FFᵀ`` (N x N).

    Returns ``(eigenvalues descending, clipped at 0; eigenvectors as columns; is_feature_side)``.
    This one product and one symmetric eigendecomposition are the floor of LogME's cost.
    """
    n, d = features.shape
    feature_side = n >= d
    gram = features.T @ features if feature_side else features @ features.T
    values, vectors = np.linalg.eigh(gram)
    return np.clip(values[::-1], 0.0, None), vectors[:, ::-1], feature_side


def rank_cutoff(eigenvalues: Array, shape: tuple[int, int]) -> float:
    """Eigenvalues of a Gram matrix at or below this are zero (``numpy.linalg.matrix_rank``'s rule, squared
    singular values: max(N, D) * eps * largest)."""
    return float(eigenvalues.max(initial=0.0)) * max(shape) * np.finfo(np.float64).eps


def pca(features: Array, n_components: int | float) -> tuple[Array, Array]:
    """Principal-component scores of the centred features and all explained variances (N - 1 denominator).

    ``n_components`` is a count (capped at the rank) or, below 1, the fraction of variance to keep:
    the fewest components whose cumulative explained variance exceeds it (scikit-learn's rule). Signs
    of the components are arbitrary; every caller is invariant to them.
    """
    centred = features - features.mean(axis=0)
    values, vectors, feature_side = gram_spectrum(centred)
    keep = values > rank_cutoff(values, centred.shape)
    values, vectors = values[keep], vectors[:, keep]
    variances = values / (features.shape[0] - 1)
    if isinstance(n_components, float) and 0.0 < n_components < 1.0:
        ratio = np.cumsum(variances) / variances.sum()
        k = int(np.searchsorted(ratio, n_components, side="right")) + 1
    else:
        k = int(n_components)
    k = max(1, min(k, values.shape[0]))
    scores = centred @ vectors[:, :k] if feature_side else vectors[:, :k] * np.sqrt(values[:k])
    return scores, variances


def shrink(scatter: Array, shrinkage: float) -> Array:
    """``(1 - λ) S + λ tr(S)/D I``: scikit-learn's ``shrunk_covariance`` and the SFDA paper's regulariser."""
    d = scatter.shape[0]
    shrunk = (1.0 - shrinkage) * scatter
    shrunk.flat[:: d + 1] += shrinkage * np.trace(scatter) / d
    return shrunk


def within_class_scatter(features: Array, labels: NDArray[np.int64], means: Array) -> Array:
    """``Σ_c π_c Cov_c`` with biased class covariances, computed as one Gram of the class-centred rows."""
    centred = features - means[labels]
    return centred.T @ centred / features.shape[0]


def largest_eigenvalue(symmetric: Array) -> float:
    """The largest eigenvalue of a symmetric PSD matrix (exact: LAPACK's subset solver)."""
    import scipy.linalg

    d = symmetric.shape[0]
    return float(scipy.linalg.eigh(symmetric, eigvals_only=True, subset_by_index=[d - 1, d - 1])[0])


@dataclass(frozen=True)
class LdaFit:
    """A fitted shrinkage LDA: ``logits = F @ coef + intercept``."""

    coef: Array  # [D, C] = Sw_λ⁻¹ μ_cᵀ
    intercept: Array  # [C] = -½ μ_c Sw_λ⁻¹ μ_cᵀ + log π_c
    means: Array  # [C, D]
    priors: Array  # [C]
    within: Array  # [D, D] shrunk within-class scatter Sw_λ
    shrinkage: float

    def logits(self, features: Array) -> Array:
        return features @ self.coef + self.intercept


def adaptive_shrinkage(within: Array, decay: float) -> float:
    """SFDA's regularisation strength ``λ = max(exp(-a · λ_max(Sw)), 1e-10)``: strong shrinkage only when the
    within-class scatter is small, i.e. for features of small scale."""
    return max(float(np.exp(-decay * largest_eigenvalue(within))), 1e-10)


def fit_lda(
    features: Array, labels: NDArray[np.int64], n_classes: int, *, shrinkage: float | None, decay: float = 5.0
) -> LdaFit:
    """Linear discriminant analysis with the within-class scatter shrunk by λ (``shrinkage``, or SFDA's
    adaptive value from ``decay`` when None).

    Equal to scikit-learn's ``LinearDiscriminantAnalysis(solver="eigen", shrinkage=λ)`` decision
    function: with all D discriminant directions kept, ``V Vᵀ = Sw_λ⁻¹``, so the projection drops out.
    """
    counts, means = class_means(features, labels, n_classes)
    priors = counts / counts.sum()
    scatter = within_class_scatter(features, labels, means)
    lam = adaptive_shrinkage(scatter, decay) if shrinkage is None else float(shrinkage)
    within = shrink(scatter, lam)
    try:
        coef = np.linalg.solve(within, means.T)  # numpy's LAPACK: see the module's note on OpenBLAS
    except np.linalg.LinAlgError:
        coef = np.linalg.pinv(within, hermitian=True) @ means.T
    intercept = -0.5 * np.einsum("cd,dc->c", means, coef) + np.log(priors)
    return LdaFit(coef=coef, intercept=intercept, means=means, priors=priors, within=within, shrinkage=lam)


def softmax(logits: Array) -> Array:
    """Row-wise softmax, shifted by the row maximum so that it never overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def logsumexp_rows(values: Array) -> Array:
    """``log Σ_j exp(v_ij)`` per row, computed stably."""
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


def minmax_combine(
    component_scores: Mapping[str, Mapping[str, float]],
    components: tuple[str, ...],
    weights: Mapping[str, float],
    *,
    estimator: str,
) -> dict[str, float]:
    """Min-max normalise each component across the models, then take the weighted sum per model.

    A component equal for every model (or a pool of one) carries no ranking information and adds 0.
    Every model must give the same components, a subset of ``components``.
    """
    if not component_scores:
        return {}
    present = {frozenset(parts) for parts in component_scores.values()}
    if len(present) != 1:
        raise EstimatorError(
            f"{estimator}: every model must give the same components, got {sorted(map(sorted, present))}."
        )
    given = next(iter(present))
    unknown = given - set(components)
    if unknown or not given:
        raise EstimatorError(
            f"{estimator}: components {sorted(unknown) or '(none)'} given; expected some of "
            f"{', '.join(components)}."
        )
    models = list(component_scores)
    combined = dict.fromkeys(models, 0.0)
    for part in (c for c in components if c in given):
        values = np.array([float(component_scores[m][part]) for m in models])
        if not np.isfinite(values).all():
            raise EstimatorError(
                f"{estimator}: component {part!r} has a non-finite value; rescore that model."
            )
        spread = values.max() - values.min()
        if spread <= 0:
            continue
        for model, value in zip(models, values, strict=True):
            combined[model] += float(weights.get(part, 1.0)) * (value - values.min()) / spread
    return combined
