"""From per-estimator scores to one ranking, and the sentence that explains the pick.

Estimators live on different scales (LogME is a log evidence per sample, kNN an accuracy, LEEP
a log-likelihood), so scores are combined by rank: within each estimator the candidates are
ranked (ties share their mean rank), each rank is mapped to [0, 1] (1 = best), and the combined
score is the weighted mean over the estimators that scored the candidate. With one estimator
this is that estimator's order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

#: The estimators ``recommend`` runs when the caller names none, by target task. Estimators that
#: need the source head's probabilities are used only for models that have a head.
DEFAULT_ESTIMATORS: dict[str, tuple[str, ...]] = {
    "classification": ("logme", "knn", "leep"),
    "regression": ("logme",),
    "unlabelled": ("rankme",),
}


def combine(
    scores: Mapping[str, Mapping[str, float]],
    estimators: Sequence[str],
    weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Combined score in [0, 1] per candidate (higher is better); NaN for a candidate nobody scored."""
    refs = list(scores)
    total = np.zeros(len(refs))
    weight_sum = np.zeros(len(refs))
    for est in estimators:
        values = np.array([scores[r].get(est, math.nan) for r in refs], dtype=float)
        ok = np.isfinite(values)
        if ok.sum() == 0:
            continue
        w = (weights or {}).get(est, 1.0)
        ranks = rankdata(-values[ok], method="average")  # 1 = best
        norm = np.ones(ok.sum()) if ok.sum() == 1 else 1.0 - (ranks - 1.0) / (ok.sum() - 1.0)
        total[ok] += w * norm
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


def explain(
    ranked: Sequence[str],
    scores: Mapping[str, Mapping[str, float]],
    combined: Mapping[str, float],
    estimators: Sequence[str],
) -> str:
    """Why the first model is the pick, in one or two sentences."""
    if not ranked:
        return "No candidate could be evaluated."
    best = ranked[0]
    used = [e for e in estimators if math.isfinite(scores[best].get(e, math.nan))]
    leads = [
        e
        for e in used
        if all(
            scores[best][e] >= scores[r].get(e, -math.inf)
            for r in ranked
            if math.isfinite(scores[r].get(e, math.nan))
        )
    ]
    if len(ranked) == 1:
        return f"{best} is the only candidate that could be scored ({', '.join(used)})."
    second = ranked[1]
    lead_text = (
        f"it scores highest on {len(leads)} of {len(used)} estimators ({', '.join(leads)})"
        if leads
        else f"it has the best combined rank over {', '.join(used)} without leading any single one"
    )
    return (
        f"{best} ranks first: {lead_text}; combined {combined[best]:.2f} vs {combined[second]:.2f} "
        f"for {second}."
    )
