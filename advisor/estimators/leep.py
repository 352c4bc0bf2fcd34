"""LEEP and N-LEEP: how well an empirical predictor built on source-class posteriors explains the labels."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from ._linalg import Array, class_sums, pca
from .registry import register
from .validation import check_classification, check_labels, check_source_probs, count_samples


def leep_from_posteriors(posteriors: Array, labels: NDArray[np.int64], n_classes: int) -> float:
    """``(1/N) Σ_i log Σ_z P(y_i | z) θ_i(z)``, ``P(y | z)`` the empirical conditional of the posteriors θ."""
    n = labels.shape[0]
    joint = class_sums(posteriors, labels, n_classes) / n  # P(y, z), [C, K]
    marginal = joint.sum(axis=0)  # P(z)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # P(y | z)
    expected = (posteriors * conditional[labels]).sum(axis=1)
    return float(np.log(expected).mean())


@register(
    "leep",
    paper="Nguyen et al., LEEP: A New Measure to Evaluate Transferability of Learned Representations, "
    "ICML 2020",
    needs_source_probs=True,
    uses_features=False,
    cost="O(N K) with K source classes; features unused",
)
def leep(features: Any, labels: Any, *, source_probs: Any = None) -> float:
    r"""Log expected empirical prediction of the source model's posteriors on the target labels.

    With :math:`θ(x_i)` the source model's class probabilities (K source classes) on target sample i:

    .. math::
        \hat P(y, z) = \frac{1}{N}\sum_{i: y_i = y} θ_z(x_i),\quad
        \hat P(y \mid z) = \frac{\hat P(y, z)}{\sum_{y'} \hat P(y', z)},\quad
        \mathrm{LEEP} = \frac{1}{N}\sum_{i=1}^{N} \log \sum_{z} \hat P(y_i \mid z)\, θ_z(x_i).

    It measures how well the source head, re-labelled by the empirical conditional, already predicts
    the target. Source classes no sample gives any probability are left out (their P(y | z) is 0/0).
    The features are not used (only their count is checked against the labels).

    Shape:
        - features: (N, D) or None; unused.
        - labels: (N,) class labels, any values.
        - source_probs: (N, K), rows summing to 1 (softmax of the source head).
        - score: scalar <= 0, higher is better.
    """
    n = count_samples(features, labels, estimator="leep")
    y, n_classes = check_labels(labels, n, estimator="leep")
    probs = check_source_probs(source_probs, n, estimator="leep")
    return leep_from_posteriors(probs, y, n_classes)


def nleep_prepare(
    features: Any,
    labels: Any,
    *,
    source_probs: Any = None,
    variance: float = 0.8,
    components_per_class: int = 5,
    random_state: int = 0,
    max_iter: int = 100,
) -> Callable[[NDArray[np.intp]], float]:
    """N-LEEP's expensive step once: PCA and the Gaussian mixture fitted to the whole sample; the result
    scores any subset of the rows by re-estimating only the cheap part, ``P(y | m)``, from that subset.

    This is what the resampling of the confidence needs: refitting the mixture on each of 50
    subsamples cost a fit per round, while the label-side re-estimate costs well under a millisecond
    (``bench/nleep_cost.py`` measures both). The
    rounds then measure how the labels of a slightly different sample change the score, with the
    mixture (the unsupervised view of the features) held at its whole-sample fit. On all rows the
    result is :func:`nleep` exactly.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    f, y, n_classes = check_classification(features, labels, estimator="nleep")
    order = np.lexsort(f.T[::-1])
    n_components = max(1, min(int(components_per_class) * n_classes, f.shape[0]))
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # the mixture's k-means start (OpenMP) and numpy's BLAS each keep spinning threads: on 2 cores,
        # alternating between them made one call 0.05-2 s; single-threaded it takes 0.03-0.07 s.
        # With 5 components per class and few distinct rows (small or duplicated samples), k-means
        # warns that it found fewer clusters: the score is still defined, and the warning is noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        reduced, _ = pca(f[order], float(variance))
        mixture = GaussianMixture(
            n_components=n_components, covariance_type="diag", random_state=random_state, max_iter=max_iter
        ).fit(reduced)
        posteriors = np.empty((f.shape[0], n_components))
        posteriors[order] = mixture.predict_proba(reduced)

    def on_rows(rows: NDArray[np.intp]) -> float:
        return leep_from_posteriors(posteriors[rows], y[rows], n_classes)

    return on_rows


@register(
    "nleep",
    paper="Li et al., Ranking Neural Checkpoints, CVPR 2021",
    cost="PCA (one Gram + eigendecomposition) and a diagonal Gaussian mixture of 5·C components fitted "
    "by EM; fitted once per sample when resampled",
    prepare=nleep_prepare,
)
def nleep(
    features: Any,
    labels: Any,
    *,
    source_probs: Any = None,
    variance: float = 0.8,
    components_per_class: int = 5,
    random_state: int = 0,
    max_iter: int = 100,
) -> float:
    r"""LEEP with the source head replaced by the posteriors of a Gaussian mixture fitted to the features.

    The features are reduced by PCA, a Gaussian mixture with M components is fitted to them, and its
    posteriors :math:`π_m(x_i)` play the role of the source probabilities in LEEP:

    .. math::
        \mathrm{N\text{-}LEEP} = \frac{1}{N}\sum_{i=1}^{N} \log \sum_{m=1}^{M} \hat P(y_i \mid m)\, π_m(x_i).

    This makes LEEP usable for any checkpoint, with or without a classification head.

    Choices: PCA keeps the fewest components explaining more than ``variance`` = 80% of the variance
    (the paper's choice); the mixture has ``components_per_class`` = 5 components per class (the
    paper's ratio), capped at N, diagonal covariances (full ones are unstable in the hundreds of PCA
    dimensions real features keep), scikit-learn's ``GaussianMixture`` seeded with
    ``random_state`` = 0. The rows are put in a canonical (lexicographic) order before fitting so
    that the score does not depend on the order of the samples. The log is kept, as in the paper
    (the SFDA authors' code reports the mean probability without it). Resampling reuses the fit
    (:func:`nleep_prepare`).

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar <= 0, higher is better.
    """
    prepared = nleep_prepare(
        features,
        labels,
        variance=variance,
        components_per_class=components_per_class,
        random_state=random_state,
        max_iter=max_iter,
    )
    return prepared(np.arange(np.shape(features)[0]))
