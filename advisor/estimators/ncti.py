"""NCTI: how far the features are from neural collapse on the target (SELI, NCC and VC scores)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._linalg import fit_lda, minmax_combine, pca, shrink, softmax
from .registry import register
from .validation import check_classification

PAPER = (
    "Wang et al., How Far Pre-trained Models Are from Neural Collapse on the Target Dataset Informs their "
    "Transferability, ICCV 2023"
)
COMPONENTS = ("seli", "ncc", "vc")
COST = "PCA to 64 dimensions (one Gram + eigendecomposition), then an LDA and C small nuclear norms"


def pool_normalize_ncti(
    component_scores: Mapping[str, Mapping[str, float]], *, weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    r"""The paper's combination across a pool: min-max normalise each component over the models and add,
    :math:`\hat S_{seli} + \hat S_{ncc} + \hat S_{vc}`.

    tlreg's VC component is already negated (higher is better), so this equals the authors'
    ``seli + ncc - vc`` on their un-negated VC plus the constant 1: the same ranking.
    """
    return minmax_combine(component_scores, COMPONENTS, weights or {}, estimator="ncti")


def components(
    features: Any, labels: Any, *, estimator: str, n_components: int = 64, variance_head: int = 32
) -> dict[str, float]:
    """The three NCTI components of one model (see :func:`ncti` for the formulas and choices)."""
    f, y, n_classes = check_classification(features, labels, estimator=estimator)
    n = f.shape[0]
    reduced, variances = pca(f, min(int(n_components), f.shape[1], n - n_classes))
    shrinkage = max(float(np.exp(-variances[:variance_head].sum())), 1e-10)
    fit = fit_lda(reduced, y, n_classes, shrinkage=shrinkage)
    probs = softmax(fit.logits(reduced))

    centred = reduced - reduced.mean(axis=0)
    total = shrink(centred.T @ centred / n, shrinkage)
    import scipy.linalg  # here, not at import: see _linalg's module doc

    evals, evecs = scipy.linalg.eigh(total - fit.within, fit.within)
    top = evecs[:, np.argsort(evals)[::-1][: min(n_classes - 1, reduced.shape[1])]]
    projected = reduced @ top
    projected -= projected.mean(axis=0)
    seli = float(np.linalg.svd(projected, compute_uv=False).sum())

    ncc = float(probs[np.arange(n), y].mean())
    class_nuclear = sum(float(np.linalg.svd(probs[y == c], compute_uv=False).sum()) for c in range(n_classes))
    return {"seli": seli, "ncc": ncc, "vc": -float(np.log(class_nuclear))}


@register("ncti", paper=PAPER, components=COMPONENTS, pool_normalizer=pool_normalize_ncti, cost=COST)
def ncti(features: Any, labels: Any, *, source_probs: Any = None, n_components: int = 64) -> float:
    r"""NCTI per model: the plain sum of its SELI, NCC and (negated) VC components.

    Features are reduced by PCA, then a shrinkage LDA is fitted (λ = max(exp(-Σ top-32 PCA
    variances), 1e-10), as the authors' code). With Z the LDA projection onto its C - 1 discriminant
    directions, centred, and P the LDA class probabilities (P_c their rows of class c):

    .. math::
        S_{seli} = \lVert Z \rVert_*,\quad
        S_{ncc} = \frac{1}{N}\sum_{i} P_{i, y_i},\quad
        S_{vc} = -\log \sum_{c=1}^{C} \lVert P_c \rVert_*,\quad
        \mathrm{NCTI} = S_{seli} + S_{ncc} + S_{vc}.

    SELI asks whether the class means spread into a simplex-like configuration (a large nuclear
    norm: many well-used discriminant directions), NCC whether a nearest-class-centre rule already
    classifies, VC whether each class's predictions have collapsed (low rank). The paper combines
    them only after min-max normalisation across the models (``pool_normalize("ncti", ...)``); this
    per-model sum is dominated by SELI, whose scale grows with N.

    Choices: PCA to ``n_components`` = 64 dimensions (the authors' code), capped at D and at N - C
    so that the within-class scatter stays invertible; the shrinkage uses the top 32 PCA variances;
    the LDA always uses the eigen solver (their code switches to scikit-learn's SVD solver when λ
    hits the 1e-10 floor, which gives the same discriminant up to rounding).

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar, higher is better.
    """
    parts = components(features, labels, estimator="ncti", n_components=n_components)
    return parts["seli"] + parts["ncc"] + parts["vc"]


@register("ncti_seli", paper=PAPER, cost=COST)
def ncti_seli(features: Any, labels: Any, *, source_probs: Any = None, n_components: int = 64) -> float:
    r"""NCTI's SELI component: nuclear norm of the centred LDA projection (see ``ncti``).

    .. math::
        S_{seli} = \lVert Z \rVert_*

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar, higher is better.
    """
    return components(features, labels, estimator="ncti_seli", n_components=n_components)["seli"]


@register("ncti_ncc", paper=PAPER, cost=COST)
def ncti_ncc(features: Any, labels: Any, *, source_probs: Any = None, n_components: int = 64) -> float:
    r"""NCTI's NCC component: mean LDA probability of the true class (see ``ncti``).

    .. math::
        S_{ncc} = \frac{1}{N}\sum_i P_{i, y_i}

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar, higher is better.
    """
    return components(features, labels, estimator="ncti_ncc", n_components=n_components)["ncc"]


@register("ncti_vc", paper=PAPER, cost=COST)
def ncti_vc(features: Any, labels: Any, *, source_probs: Any = None, n_components: int = 64) -> float:
    r"""NCTI's VC component, negated so that higher is better (see ``ncti``).

    .. math::
        S_{vc} = -\log \sum_{c=1}^{C} \lVert P_c \rVert_*

    Shape:
        - features: (N, D) float.
        - labels: (N,) class labels, any values.
        - source_probs: ignored.
        - score: scalar, higher is better.
    """
    return components(features, labels, estimator="ncti_vc", n_components=n_components)["vc"]
