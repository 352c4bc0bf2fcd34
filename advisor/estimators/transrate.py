"""TransRate: the coding-rate gain of the features from knowing the labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._linalg import Array
from .registry import register
from .validation import check_classification


def coding_rate(z: Array, eps: float) -> float:
    r"""``R(Z, ε) = ½ log det(I_D + ZᵀZ / (n ε))``.

    Through the smaller Gram (Sylvester's identity ``det(I_D + ZᵀZ/c) = det(I_n + ZZᵀ/c)``) and a
    Cholesky factor, whose diagonal gives the log-determinant.
    """
    n, d = z.shape
    gram = z.T @ z if n >= d else z @ z.T
    gram /= n * eps
    gram.flat[:: gram.shape[0] + 1] += 1.0
    factor = np.linalg.cholesky(gram)  # numpy's LAPACK: see the note in ._linalg on OpenBLAS
    return float(np.log(np.diag(factor)).sum())


@register(
    "transrate",
    paper="Huang et al., Frustratingly Easy Transferability Estimation, ICML 2022",
    cost="one Cholesky of the D x D (or N x N) Gram, plus one per class of the smaller class Gram",
)
def transrate(features: Any, labels: Any, *, source_probs: Any = None, eps: float = 1e-4) -> float:
    r"""TransRate: mutual information between features and labels, estimated by coding rates.

    With Z the centred features and :math:`Z_c` the rows of class c (not re-centred):

    .. math::
        R(Z, ε) = \frac{1}{2}\log\det\Big(I_D + \frac{1}{N ε} Z^\top Z\Big),\quad
        R(Z \mid Y, ε) = \frac{1}{C}\sum_{c=1}^{C} R(Z_c, ε),\quad
        \mathrm{TrR} = R(Z, ε) - R(Z \mid Y, ε).

    R approximates the number of bits needed to code the features up to distortion ε; the gain
    from knowing Y measures how much of the features' volume the classes explain.

    Choices: ε = 1e-4 on centred features (the paper's default, fixed by tlreg's issue #5); the
    class rates are averaged with equal weights 1/C, as in the authors' code (the class-size
    weighting n_c/N agrees with it on balanced data). Each determinant is taken through the smaller
    of the two Gram matrices, so wide features cost N³, not D³.

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar, higher is better.
    """
    f, y, n_classes = check_classification(features, labels, estimator="transrate")
    z = f - f.mean(axis=0)
    conditional = sum(coding_rate(z[y == c], eps) for c in range(n_classes)) / n_classes
    return coding_rate(z, eps) - conditional
