"""From a run's scores to its answer: the standings, their confidence, the rows, the verdicts, the Why.

``recommend`` takes these steps in order once every row is scored (:class:`~.scoring.Scoreboard`):

1. :func:`standings`: one combined score per candidate (:mod:`.rank`), the order with its tie rule
   (the cheaper model first, then the name), who ties for first, and competition ranks (1, 1, 3);
2. :func:`resample`: the same ranking on subsamples (:mod:`.confidence`), the baselines scored on
   the same rounds so that the verdicts can ask how often a baseline wins;
3. :func:`rows`: a :class:`~.result.RankingRow` per candidate and per baseline;
4. :func:`judge`: each candidate against its random init and the raw inputs (:mod:`.verdicts`), and
   the warnings the verdicts, a shared first place or an inseparable top two call for;
5. :func:`answer`: the :class:`~.result.RecommendResult`, with the Why (:mod:`.why`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tlreg.registry import ModelRecord
from tlreg.registry.runs import Run

from .confidence import Confidence, bootstrap, competition_ranks, tied_with_best
from .data import Dataset
from .memo import Memo
from .plan import plan_for
from .rank import combine, order, pooled
from .result import RankingRow, RecommendResult, baseline_label
from .scoring import Scoreboard
from .trials import Trial, reorder, too_close
from .trials import recipe as trial_recipe
from .verdicts import beaten_by, verdict_names
from .why import TIE_RULE, PickFacts, explain

#: The history signal's name among the estimators (see :mod:`.history`).
HISTORY = "history"


@dataclass
class Standings:
    """The candidates ranked on the whole sample."""

    names: list[str]  # what they are ranked by: the estimators, and the history signal when it was used
    combined: dict[str, float]
    shown: dict[str, dict[str, float]]  # {label: {estimator: the value it is ranked by}}, baselines too
    params: dict[str, int | None]
    ranked: list[str]
    tied: list[str]  # sharing the best combined score, the pick first
    ranks: dict[str, int]
    method: str  # the aggregation: rank or zscore (advisor/rank.py)


def standings(board: Scoreboard, refs: Sequence[str], names: Sequence[str], *, method: str) -> Standings:
    scores = board.scores
    combined = combine({r: scores[r] for r in refs}, names, method=method)
    shown = pooled({r: scores[r] for r in refs}, names)  # ETran / NCTI by their pool values
    shown.update({b: v for b, v in pooled(scores, names).items() if b not in shown})
    params = {r: board.records[r].params for r in refs}
    ranked = order(combined, {r: float(params[r] or 0) for r in refs})  # ties: the cheaper model first
    tied = [r for r in ranked if r in tied_with_best(combined)]
    return Standings(list(names), combined, shown, params, ranked, tied, competition_ranks(combined), method)


def baseline_labels(board: Scoreboard, candidates: Sequence[ModelRecord]) -> list[str]:
    """The scored rows that are not candidates: random-init baselines and the raw inputs."""
    candidate_refs = {r.ref for r in candidates}
    return [b for b in board.scores if b not in candidate_refs]


def resample(
    board: Scoreboard,
    refs: Sequence[str],
    baselines: Sequence[str],
    standing: Standings,
    *,
    rounds: int,
    seed: int,
    signal: str = HISTORY,
    memo: Memo | None = None,
) -> Confidence:
    """P(best), rank intervals and the runner-up test on ``rounds`` subsamples (none with one candidate
    and no baseline). The history signal does not depend on the sample: it is added unchanged.
    With ``memo``, a previous run's rounds on the same arrays and settings are reused."""
    feats = board.features
    inputs: dict[str, Any] = {
        "features": {r: (feats[r].features, feats[r].probs) for r in refs},
        "labels": board.labels,
        "task": board.task,
        "names": board.names,
        "ranked": standing.ranked,
        "rounds": rounds if len(refs) > 1 or baselines else 0,
        "seed": seed,
        "fixed": {r: {signal: board.scores[r][signal]} for r in refs if signal in board.scores[r]},
        "baselines": {b: (feats[b].features, feats[b].probs) for b in baselines},
        "also": verdict_names(board.task, board.names),
        "method": standing.method,
    }

    def compute() -> dict[str, Any]:
        return bootstrap(**inputs).to_dict()

    if memo is None:
        return Confidence.from_dict(compute())
    return Confidence.from_dict(memo.get_or_compute("bootstrap", inputs, compute))


def rows(
    board: Scoreboard,
    standing: Standings,
    conf: Confidence,
    baselines: Sequence[str],
    *,
    trials: Mapping[str, Trial] | None = None,
) -> tuple[list[RankingRow], list[RankingRow]]:
    """The ranking's rows, best first, and the baselines' rows. With ``trials`` the candidates that
    had one come first, by validation accuracy (:func:`.trials.reorder`), and rank by it: equal
    accuracies share a rank; the others follow in the estimators' order and by their combined score."""
    several = len(standing.ranked) > 1
    trials = trials or {}

    def row(label: str, rank: int) -> RankingRow:
        feats, record = board.features[label], board.records.get(label)
        return RankingRow(
            rank=rank,
            ref=label,
            revision=feats.revision,
            scores={**board.scores[label], **standing.shown[label]},
            combined=standing.combined.get(label, math.nan),
            params=record.params if record else None,
            feature_dim=feats.features.shape[1],
            samples_per_s=feats.samples_per_s,
            seconds=round(feats.seconds, 3),
            from_cache=feats.from_cache,
            baseline_of=None if label in standing.combined else (record.ref if record else "*"),
            p_best=conf.p_best.get(label) if several else None,
            rank_interval=conf.rank_interval.get(label) if several else None,
            trial=trials[label].to_dict() if label in trials else None,
        )

    if trials:
        ranked = reorder(standing.ranked, trials)
        key = {r: (0, -trials[r].val_acc) if r in trials else (1, -standing.combined[r]) for r in ranked}
        ranks = {r: 1 + sum(key[o] < key[r] for o in ranked) for r in ranked}
    else:
        ranked, ranks = standing.ranked, standing.ranks
    ranking = [row(label, ranks[label]) for label in ranked]
    shared = [ranks[r] for r in ranked]
    for r in ranking:
        r.tied = shared.count(r.rank) > 1
    return ranking, [row(label, 0) for label in baselines]


def judge(
    ranking: Sequence[RankingRow],
    board: Scoreboard,
    conf: Confidence,
    *,
    raw_label: str | None,
    n_classes: int,
) -> None:
    """Each candidate against its own random init and the raw inputs: whose frozen features beat its
    own (a warning says so, with the advice). ``negative_transfer`` stays False: frozen-feature scores
    do not predict it (:mod:`tlreg.advisor.verdicts`)."""
    scores, names = board.scores, verdict_names(board.task, board.names)
    for r in ranking:
        own = baseline_label(r.ref)
        own_baselines = [b for b in (own, raw_label) if b and b in scores]
        if not own_baselines:
            continue
        r.frozen_features_beaten_by = beaten_by(
            r.ref, scores, own_baselines, names, n_classes=n_classes, rounds=conf.round_scores
        )
        # Not predicted from frozen features (see tlreg.advisor.verdicts): no evidence, no claim.
        r.negative_transfer = False if own in scores else None
        r.negative_transfer_vs = []
        if r.frozen_features_beaten_by:
            board.warns.append(
                f"{r.ref}: its frozen features lose to {' and '.join(r.frozen_features_beaten_by)}; "
                "fine-tune the whole network rather than train a linear head on them."
            )


#: Which candidates get a transfer plan and a learning curve (``recommend(plan=...)``).
PLAN_CHOICES = ("pick", "all", "none")


def plan_rows(
    ranking: Sequence[RankingRow], board: Scoreboard, *, which: str, seed: int, memo: Memo | None = None
) -> None:
    """The transfer plan and learning curve of the pick (``which="pick"``), of every candidate
    (``"all"``) or of none, from the features already embedded: no forward pass. With ``memo``, a
    previous run's plan on the same arrays and settings is reused."""
    chosen = [] if which == "none" else list(ranking[:1] if which == "pick" else ranking)
    for r in chosen:
        inputs: dict[str, Any] = {
            "features": board.features[r.ref].features,
            "labels": board.labels,
            "task": board.task,
            "frozen_beaten_by": r.frozen_features_beaten_by,
            "seed": seed,
        }

        def compute(inputs: dict[str, Any] = inputs) -> dict[str, Any]:
            plan, curve = plan_for(**inputs)
            return {"plan": plan.to_dict() if plan else None, "learning_curve": curve.to_dict()}

        done = compute() if memo is None else memo.get_or_compute("plan", inputs, compute)
        r.plan, r.learning_curve = done["plan"], done["learning_curve"]


def warn_if_undecided(
    standing: Standings,
    conf: Confidence,
    warns: list[str],
    *,
    ranking: Sequence[RankingRow] = (),
    trials: Mapping[str, Trial] | None = None,
) -> None:
    """A first place shared by several candidates, or a top two the resampling cannot tell apart; with
    ``trials`` (which then decide), a top two whose trials do not tell them apart."""
    if trials and len(ranking) > 1 and ranking[0].ref in trials and ranking[1].ref in trials:
        a, b = trials[ranking[0].ref], trials[ranking[1].ref]
        if too_close(a, b):
            warns.append(
                f"The trials do not tell {a.ref} and {b.ref} apart: {a.correct}/{a.val} and "
                f"{b.correct}/{b.val} validation items right, within one standard error; either is a sound "
                "start."
            )
        return
    tied, ranked = standing.tied, standing.ranked
    if len(tied) > 1:
        warns.append(f"{', '.join(tied)} tie for first; {tied[0]} is picked as {TIE_RULE}.")
    elif conf.separable is False:
        warns.append(
            f"The top two are not separable: {ranked[0]} ranks above {ranked[1]} in only "
            f"{conf.beats_runner_up:.0%} of {conf.rounds} resamples; more samples per class would tell them "
            "apart (--per-class, --max-samples)."
        )


def answer(
    run: Run,
    sample: Dataset,
    board: Scoreboard,
    standing: Standings,
    conf: Confidence,
    ranked_rows: tuple[list[RankingRow], list[RankingRow]],
    *,
    history: dict[str, Any],
    trials: Mapping[str, Trial] | None = None,
    tried: Sequence[str] = (),
) -> RecommendResult:
    """The result of the run, with the Why of its pick; ``tried`` are the candidates trials were asked
    of (``trials`` holds those that could be fine-tuned)."""
    ranking, baselines = ranked_rows
    trials = trials or {}
    pick, tied = ranking[0], standing.tied
    facts = PickFacts(
        params=standing.params,
        tied=tied,
        beats_runner_up=conf.beats_runner_up,
        rounds=conf.rounds,
        separable=conf.separable,
        negative_transfer=bool(pick.negative_transfer),
        frozen_features_beaten_by=pick.frozen_features_beaten_by or (),
        trials=trials,
        order=[r.ref for r in ranking],
        tried=tried,
    )
    return RecommendResult(
        run_id=run.id,
        data={
            "path": run.data_path,
            "fingerprint": run.fingerprint,
            "modality": sample.modality,
            "task": sample.task,
            "samples": len(sample),
            "classes": sample.classes,
            "format": sample.format,
        },
        estimators=standing.names,
        aggregation=standing.method,
        ranking=ranking,
        baselines=baselines,
        reason=explain(standing.ranked, board.scores, standing.combined, standing.names, facts),
        warnings=board.warns,
        skipped=board.skipped,
        confidence={
            "rounds": conf.rounds,
            "beats_runner_up": conf.beats_runner_up,
            "separable": conf.separable,
            "tied": tied if len(tied) > 1 else [],
            "tie_rule": TIE_RULE,
            # what decided the pick: the estimators' combined ranking, or short fine-tunes of its top
            "decided_by": "trials" if trials else "estimators",
            "trials": (
                {
                    "k": len(tried) or len(trials),
                    "failed": [r for r in tried if r not in trials],
                    "repeats": next(iter(trials.values())).repeats,  # splits per candidate, averaged
                    "recipe": trial_recipe(
                        run.options.get("seed", 0),
                        next(iter(trials.values())).train,
                        # a run recorded before --trial-epochs trained one epoch
                        run.options.get("trial_epochs", 1),
                    ),
                }
                if trials
                else None
            ),
        },
        history=history,
    )
