"""GBC: Gaussian Bhattacharyya coefficient, the overlap of per-class Gaussians in feature space."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._linalg import class_means, class_sums, pca
from .registry import register
from .validation import check_classification

#: Per-class variances are floored at this fraction of the mean feature variance, so that a class
#: constant along one direction gives a large but finite distance instead of a division by zero.
VARIANCE_FLOOR = 1e-9


@register(
    "gbc",
    paper="Pándy et al., Transferability Estimation using Bhattacharyya Class Separability, CVPR 2022",
    cost="PCA (one Gram + eigendecomposition) then C² Bhattacharyya distances in 64 dimensions",
)
def gbc(features: Any, labels: Any, *, source_probs: Any = None, n_components: int = 64) -> float:
    r"""Negative total Bhattacharyya coefficient between the classes, each modelled as a diagonal Gaussian.

    Each class c is :math:`N(μ_c, \mathrm{diag}(σ_c^2))` in the PCA-reduced feature space. With
    :math:`σ^2 = (σ_i^2 + σ_j^2)/2`, the Bhattacharyya distance and coefficient are

    .. math::
        D_B(i, j) = \frac{1}{8}\sum_d \frac{(μ_{id} - μ_{jd})^2}{σ_d^2}
            + \frac{1}{2}\sum_d \log\frac{σ_d^2}{\sqrt{σ_{id}^2 σ_{jd}^2}},\quad
        \mathrm{GBC} = -\sum_{i=1}^{C}\sum_{j \ne i} e^{-D_B(i, j)}.

    The less the class Gaussians overlap, the closer GBC is to 0 from below.

    Choices: PCA to ``n_components`` = 64 dimensions (the paper's setting; capped at D and N - 1),
    which keeps the per-class variance estimates stable; diagonal covariances (the paper's best
    variant); biased per-class variances, which need 2 samples per class (fewer are refused), floored
    at ``VARIANCE_FLOOR`` times the mean variance; the sum runs over ordered pairs as in the paper.

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values, at least 2 samples per class.
        - source_probs: ignored.
        - score: scalar in [-C(C-1), 0], higher is better.
    """
    f, y, n_classes = check_classification(features, labels, estimator="gbc", min_class_size=2)
    reduced, _ = pca(f, min(int(n_components), f.shape[1], f.shape[0] - 1))
    counts, means = class_means(reduced, y, n_classes)
    variances = class_sums((reduced - means[y]) ** 2, y, n_classes) / counts[:, None]
    floor = VARIANCE_FLOOR * float(reduced.var(axis=0).mean())
    variances = np.maximum(variances, floor)
    log_var = np.log(variances)
    total = 0.0
    for i in range(n_classes):
        pooled = (variances[i] + variances) / 2
        distance = 0.125 * ((means[i] - means) ** 2 / pooled).sum(axis=1) + 0.5 * (
            np.log(pooled) - 0.5 * (log_var[i] + log_var)
        ).sum(axis=1)
        coefficients = np.exp(-distance)
        total += float(coefficients.sum() - coefficients[i])
    return -total
