"""From per-estimator scores to one ranking (the sentences that explain the pick: :mod:`.why`).

Estimators live on different scales (LogME is a log evidence per sample, kNN an accuracy, LEEP a
log-likelihood), so each estimator's scores are first normalised over the candidate pool, then
averaged with weights over the estimators that scored the candidate:

- ``rank`` (the default): the candidates are ranked within each estimator (ties share their mean
  rank) and each rank is mapped to [0, 1], 1 = best. Robust to outliers and to scales.
- ``zscore``: each estimator's scores are standardised over the pool (mean 0, standard deviation 1),
  so a candidate far ahead on one estimator keeps that margin.

With one estimator, either is that estimator's order.

Scores whose papers normalise their parts across the pool of models (ETran, NCTI: their
``EstimatorInfo.components``) are ranked by
:func:`tlreg.advisor.estimators.pool_normalize` over the candidates' component scores
(``etran_energy``, ``etran_lda``, ``etran_svd``; ``ncti_seli``, ``ncti_ncc``, ``ncti_vc``), not by the
per-model sum, whose largest term swamps the others; :func:`to_compute` says which scores a caller
must compute for that.

The defaults (:data:`DEFAULT_ESTIMATORS`, :data:`DEFAULT_WEIGHTS`, :data:`DEFAULT_AGGREGATION`) come
from the ground truth of both benchmarks: ``bench/transfer_quality.py`` (23 models fine-tuned on 7
targets, an ImageNet model best on 6 of them) and ``bench/hub_quality.py`` (21 fine-tuned descendants and
originals of three backbones on 8 targets, five distinct winners). Over their 15 targets pooled, the
search space (subsets of up to 1-4 of the estimators a default can run on any candidate, rank or
z-score aggregation) was chosen by leave-one-target-out, then the best combination in it
(``bench/joint_defaults.py``); the README's "Advice quality" section gives the figures, and
``python bench/transfer_quality.py --report`` checks that these defaults are still what the
evidence selects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from . import defaults
from . import estimators as est
from .errors import EstimatorError

#: The estimators ``recommend`` runs when the caller names none, by target task. Estimators that
#: need the source head's probabilities are used only for models that have a head.
DEFAULT_ESTIMATORS: dict[str, tuple[str, ...]] = {
    # Shrinkage H-score (Ibrahim et al., ECML-PKDD 2022) + LogME (You et al., ICML 2021) + NCE (Tran et
    # al., ICCV 2019), z-score-aggregated: the combination both benchmarks' 15 targets select
    # (bench/joint_defaults.py; 12 of 15 folds held out).
    "classification": ("hscore_shrinkage", "logme", "nce"),
    "regression": ("logme",),
    "unlabelled": ("rankme",),
}
#: Relative weights of estimators in :func:`combine` when the caller gives none (missing: 1). Equal:
#: weighting each estimator by its benchmark tau did worse when judged leave-one-target-out.
DEFAULT_WEIGHTS: dict[str, float] = {}
AGGREGATIONS = defaults.AGGREGATIONS
DEFAULT_AGGREGATION = defaults.AGGREGATION

Scores = Mapping[str, Mapping[str, float]]


def components_of(name: str) -> tuple[str, ...]:
    """The component estimators (``etran_lda``, ...) that rank ``name`` over a pool; () for others.

    Names that are not registered estimators (a signal such as ``history``) have no components.
    """
    try:
        info = est.get(name)
    except EstimatorError:
        return ()
    if info.pool_normalizer is None or not info.components:
        return ()
    return tuple(f"{name}_{part}" for part in info.components)


def to_compute(estimators: Sequence[str]) -> list[str]:
    """The scores a caller must compute per model so that :func:`combine` can rank by ``estimators``:
    each pool-normalised estimator is replaced by its components; order kept, duplicates dropped."""
    out: list[str] = []
    for name in estimators:
        for needed in components_of(name) or (name,):
            if needed not in out:
                out.append(needed)
    return out


def _value(scores: Scores, ref: str, name: str) -> float:
    value = scores[ref].get(name)
    return math.nan if value is None else float(value)


def signal(scores: Scores, name: str) -> dict[str, float]:
    """The values ``name`` ranks the candidates by: its scores, or for ETran / NCTI the pool
    normalisation of their components over the candidates that have every component (the others
    get NaN). Where no candidate has components, the per-model scores are used as they are."""
    parts = components_of(name)
    refs = list(scores)
    if parts and any(any(p in scores[r] for p in parts) for r in refs):
        pool = {
            r: {p.removeprefix(f"{name}_"): _value(scores, r, p) for p in parts}
            for r in refs
            if all(math.isfinite(_value(scores, r, p)) for p in parts)
        }
        values = est.pool_normalize(name, pool) if pool else {}
        return {r: float(values.get(r, math.nan)) for r in refs}
    return {r: _value(scores, r, name) for r in refs}


def pooled(scores: Scores, estimators: Sequence[str]) -> dict[str, dict[str, float]]:
    """{ref: {estimator: value it is ranked by}}: what a table of the ranking should show."""
    columns = {name: signal(scores, name) for name in estimators}
    return {r: {name: columns[name][r] for name in estimators} for r in scores}


def average_ranks(values: np.ndarray | Sequence[float]) -> np.ndarray:
    """Ranks 1..n, smallest first, ties sharing their mean: ``scipy.stats.rankdata(values)``.

    Written here because importing ``scipy.stats`` takes 0.8 s, a third of a cached ``recommend``
    (which ranks but runs no estimator); a test checks it against SciPy.
    """
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # each run of equal values gets the mean of the positions it spans (1-based)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def normalise(values: np.ndarray, method: str = DEFAULT_AGGREGATION) -> np.ndarray:
    """One estimator's values over the pool, made comparable across estimators (NaN stays NaN).

    ``rank``: 1 for the best, 0 for the worst, ties sharing their mean (a pool of one gets 1).
    ``zscore``: standardised over the scored candidates (0 for all when they are all equal).
    """
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values)
    n = int(ok.sum())
    if n == 0:
        return out
    if method == "rank":
        ranks = average_ranks(-values[ok])  # 1 = best
        out[ok] = 1.0 if n == 1 else 1.0 - (ranks - 1.0) / (n - 1.0)
    elif method == "zscore":
        spread = float(values[ok].std())
        out[ok] = (
            0.0
            if spread <= 1e-12 * max(1.0, float(np.abs(values[ok]).max()))
            else (values[ok] - values[ok].mean()) / spread
        )
    else:
        raise ValueError(f"unknown aggregation {method!r}: use one of {', '.join(AGGREGATIONS)}")
    return out


def combine(
    scores: Scores,
    estimators: Sequence[str],
    weights: Mapping[str, float] | None = None,
    *,
    method: str | None = None,
) -> dict[str, float]:
    """Combined score per candidate, higher is better; NaN for a candidate no estimator scored.

    ``scores`` is {ref: {estimator: value}} (NaN or missing: not scored); ``weights`` default to
    :data:`DEFAULT_WEIGHTS` (1 for an estimator it does not list); ``method`` is one of
    :data:`AGGREGATIONS` (default :data:`DEFAULT_AGGREGATION`). The ``rank`` combination lies in
    [0, 1]; the ``zscore`` one is a mean z-score. Each candidate's combination is the weighted mean
    over the estimators that scored it.
    """
    refs = list(scores)
    weights = DEFAULT_WEIGHTS if weights is None else weights
    total = np.zeros(len(refs))
    weight_sum = np.zeros(len(refs))
    for name in estimators:
        w = float(weights.get(name, 1.0))
        if w <= 0:
            continue
        values = signal(scores, name)
        norm = normalise(np.array([values[r] for r in refs]), method or DEFAULT_AGGREGATION)
        ok = np.isfinite(norm)
        total[ok] += w * norm[ok]
        weight_sum[ok] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = np.where(weight_sum > 0, total / weight_sum, np.nan)
    return dict(zip(refs, combined.tolist(), strict=True))


def order(combined: Mapping[str, float], tiebreak: Mapping[str, float] | None = None) -> list[str]:
    """Refs best first; NaN last; ties broken by ``tiebreak`` (e.g. fewer parameters first), then name."""

    def key(ref: str) -> tuple[float, float, str]:
        value = combined[ref]
        return (-(value if math.isfinite(value) else -math.inf), (tiebreak or {}).get(ref, 0.0), ref)

    return sorted(combined, key=key)
