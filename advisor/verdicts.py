"""Does pretraining pay? Each candidate against its baselines, saying only what the scores can tell.

Two different facts, both shown in the answer (issue 13):

- ``frozen_features_beaten_by``: the baselines — the candidate's architecture randomly initialised,
  the raw inputs — whose features the estimators prefer to the candidate's *frozen* features. It
  predicts what a linear head on frozen features reaches, and its advice is to fine-tune the whole
  network rather than train a linear head. Measured against linear-probe accuracies on the Hub-like
  benchmark (``bench/hub_quality.py``).
- ``negative_transfer``: fine-tuning from this model is not expected to beat training the same
  architecture from scratch. Frozen-feature scores do not predict it, so ``recommend`` does not claim
  it from them (the field stays ``false``). The evidence: on the Hub-like benchmark fine-tuning beat
  random init on all 168 (model, target) pairs, models fine-tuned on shuffled labels included, while
  the unanimous, decisive frozen-score rule of :func:`negative_transfer` flagged 9 of them with the
  ranking's estimators (5.4 % false alarms); and on the demo digits the kNN probe prefers the random
  init of EfficientNet-Lite0 by 23 points while fine-tuning from ImageNet gains 24. The rule is kept
  so that the benchmark keeps measuring it.

A comparison counts only what can tell the two apart: estimators that scored both, excluding one
that sits at its ceiling for both (H-score at C - 1 with wide features: both sides "perfect"); a
split vote is a tie, not a loss. With resampling (the confidence rounds), a loss must hold in at
least :data:`DECISIVE` of the rounds, as "separable" does for the pick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from . import estimators as est
from .errors import EstimatorError
from .rank import pooled

#: A loss to a baseline is reported when it holds in at least this share of the resampling rounds.
DECISIVE = 0.9

#: What the verdicts compare by, per task, whatever the ranking uses. On the Hub-like benchmark
#: (``bench/hub_quality.py``, 168 fine-tuned (model, target) pairs, 336 frozen-feature pairs) the
#: ranking's defaults of the time (LogME + shrinkage H-score) flagged negative transfer on 9 pairs where
#: fine-tuning from the model did beat random init (5.4 % false alarms, the defect of issue 13);
#: the kNN probe, which measures what the frozen features separate directly, flagged none. Tasks not
#: named here (regression) compare by the ranking's estimators.
VERDICT_ESTIMATORS: dict[str, tuple[str, ...]] = {"classification": ("knn",)}


def verdict_names(task: str, names: Sequence[str]) -> list[str]:
    """The estimators the verdicts of a ``task`` run use, when the ranking uses ``names``."""
    return list(VERDICT_ESTIMATORS.get(task, names))


Scores = Mapping[str, float]


def _ceiling_info(name: str) -> est.EstimatorInfo | None:
    try:
        return est.get(name)
    except EstimatorError:  # a signal that is not an estimator (history)
        return None


def informative(name: str, a: float, b: float, n_classes: int) -> bool:
    """Whether estimator ``name`` can tell values ``a`` and ``b`` apart: both finite, not both at its
    ceiling for ``n_classes`` classes."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    info = _ceiling_info(name)
    if info is None or n_classes < 2:  # regression, label-free, or classes unknown: no ceiling applies
        return True
    return not (info.at_ceiling(a, n_classes) and info.at_ceiling(b, n_classes))


def vote(
    candidate: Scores,
    baseline: Scores,
    names: Sequence[str],
    *,
    n_classes: int = 0,
    weights: Mapping[str, float] | None = None,
) -> str | None:
    """``"win"``, ``"loss"`` or ``"tie"`` for the candidate against one baseline, by the (weighted)
    majority of the informative estimators; None when no estimator can compare them.

    ETran and NCTI compare their pool normalisation over the pair. Equal values, and a split vote,
    are ties.
    """
    pair = pooled({"candidate": candidate, "baseline": baseline}, names)
    won = lost = total = 0.0
    for name in names:
        a, b = pair["candidate"][name], pair["baseline"][name]
        if not informative(name, a, b, n_classes):
            continue
        w = float((weights or {}).get(name, 1.0))
        total += w
        won += w * (a > b)
        lost += w * (a < b)
    if total == 0:
        return None
    if won > total / 2:
        return "win"
    if lost > total / 2:
        return "loss"
    return "tie"


def loss_share(
    rounds: Sequence[Mapping[str, Scores]],
    candidate: str,
    baseline: str,
    names: Sequence[str],
    *,
    n_classes: int = 0,
) -> float | None:
    """The share of resampling rounds ({label: scores} each) in which ``baseline`` beats ``candidate``;
    None without rounds, or when no round could compare them."""
    votes = [
        vote(r[candidate], r[baseline], names, n_classes=n_classes)
        for r in rounds
        if candidate in r and baseline in r
    ]
    decided = [v for v in votes if v is not None]
    return sum(v == "loss" for v in decided) / len(decided) if decided else None


def beaten_by(
    candidate: str,
    scores: Mapping[str, Scores],
    baselines: Sequence[str],
    names: Sequence[str],
    *,
    n_classes: int = 0,
    rounds: Sequence[Mapping[str, Scores]] = (),
) -> list[str]:
    """The baselines that beat the candidate's frozen features: a loss on the whole sample and, when
    there are resampling rounds, in at least :data:`DECISIVE` of them."""
    out = []
    for b in baselines:
        if b not in scores or vote(scores[candidate], scores[b], names, n_classes=n_classes) != "loss":
            continue
        if rounds:
            share = loss_share(rounds, candidate, b, names, n_classes=n_classes)
            if share is None or share < DECISIVE:
                continue
        out.append(b)
    return out


def negative_transfer(
    candidate: str,
    random_init: str | None,
    scores: Mapping[str, Scores],
    names: Sequence[str],
    *,
    n_classes: int = 0,
    rounds: Sequence[Mapping[str, Scores]] = (),
) -> bool | None:
    """Whether frozen-feature scores would call ``candidate`` negative transfer: measured by the
    Hub-like benchmark, not shipped (see the module doc: the scores do not predict fine-tuning).

    Flagged only on unanimous, decisive evidence: *every* informative estimator prefers the
    random-init features of the same architecture on the whole sample, and the random init wins the
    vote in at least :data:`DECISIVE` of the resampling rounds. A frozen-feature loss on a split or
    marginal vote is not enough: fine-tuning moves every weight, and starting from a pretrained
    network has beaten random init on most (model, target) pairs of the Hub-like benchmark even where
    the frozen features scored lower. None when there is no random-init baseline to compare with.
    """
    if random_init is None or random_init not in scores:
        return None
    pair = pooled({"candidate": scores[candidate], "baseline": scores[random_init]}, names)
    usable = [n for n in names if informative(n, pair["candidate"][n], pair["baseline"][n], n_classes)]
    if not usable or not all(pair["candidate"][n] < pair["baseline"][n] for n in usable):
        return False
    if rounds:
        share = loss_share(rounds, candidate, random_init, names, n_classes=n_classes)
        return share is not None and share >= DECISIVE
    return True
