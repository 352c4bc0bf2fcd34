"""Successive halving for large registries: embed every candidate on a small part of the sample,
and only the ones that can still win on more of it (``recommend --budget auto``).

Embedding is the cost of a run, and it grows with the number of candidates times the sample. With
``budget="auto"`` and at least :data:`AUTO_FROM` candidates, the sample is split into nested,
stratified stages — a quarter, a half, all of it (fewer stages when a quarter would hold fewer than
:data:`MIN_FIRST_PER_CLASS` items of some class, none when a half would). At each stage but the
last, the surviving
candidates are scored on that stage, the ranking is resampled as :mod:`.confidence` does, and a
candidate stays only when its 5-95 % rank interval still reaches the top (its best plausible rank
is 1); the :data:`KEEP_AT_LEAST` best on the stage's combined score always stay, so the best so far
is never dropped. Candidates that no estimator could score on a stage stay: there is no evidence
against them. This is Jamieson & Talwalkar's successive halving ("Non-stochastic best arm
identification and hyperparameter optimization", AISTATS 2016), with the fixed "keep the top half"
rule replaced by the rank intervals: a clear loser leaves at once, a close race keeps everyone.

Nothing is embedded twice: a stage embeds only the items the previous stages did not (each
increment is a cache entry of its own, so an interrupted run resumes from the last increment), and
a survivor's features on the whole sample are those increments put back in the sample's order,
written as the whole sample's entry — what ``--budget full`` would have computed, found by it later.
Random-init baselines are embedded for the survivors only. The answer (and the run record) lists who
was dropped, at which sample size, and why.

``bench/halving.py`` measures it on the Hub-like benchmark (the README's figures).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tlreg.registry.errors import BadInputError

from . import defaults
from .confidence import bootstrap
from .memo import Memo
from .rank import combine, order, pooled, to_compute
from .scoring import as_dict, score_features

BUDGETS = defaults.BUDGETS
#: ``auto`` halves from this many candidates on (below it, embedding everything costs little).
AUTO_FROM = defaults.HALVING_FROM
#: Each stage holds this many times the items of the one before; at most :data:`MAX_STAGES` stages.
ETA = 2
MAX_STAGES = 3
#: The first stage holds at least this many items of every class (others: :data:`MIN_FIRST_ITEMS`).
#: Measured on the Hub-like benchmark's targets cut to 200 images (20-25 a class): with a first stage
#: of 5 a class the estimators dropped the true contenders (mean pick regret 4.7 points against 3.0
#: for ``full``, worst 31); from 8 a class, ``auto`` had 2.95, as ``full`` (``bench/halving.py``).
MIN_FIRST_PER_CLASS = 8
MIN_FIRST_ITEMS = 48
#: The best this many by a stage's combined score always survive it.
KEEP_AT_LEAST = 3
#: Resampling rounds of each stage's decision (with ``bootstrap=0``: the top half survives instead).
STAGE_ROUNDS = 30

Arrays = tuple[np.ndarray, np.ndarray | None]


@dataclass
class Stage:
    """One stage: how many items, who was embedded on them, who left and why."""

    samples: int
    candidates: list[str]
    dropped: list[dict[str, Any]] = field(default_factory=list)  # {ref, combined, rank_interval, reason}


@dataclass
class Halving:
    """What the budget did: the stages, and the forward passes against embedding everything."""

    budget: str
    active: bool
    note: str = ""
    stages: list[Stage] = field(default_factory=list)
    forward_passes: int = 0  # items embedded by candidates (baselines not counted), this run
    full_forward_passes: int = 0  # what embedding every candidate on the whole sample takes

    @property
    def dropped(self) -> list[dict[str, Any]]:
        return [d for s in self.stages for d in s.dropped]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_budget(budget: str) -> None:
    """An unknown ``--budget`` is bad input (exit 2), named with the choices."""
    if budget not in BUDGETS:
        raise BadInputError(f"Unknown --budget {budget!r}.", hint=f"Use one of: {', '.join(BUDGETS)}.")


def stage_indices(labels: np.ndarray | None, task: str, n: int, *, seed: int) -> list[np.ndarray]:
    """Nested index sets of the sample, the last one all of it, each :data:`ETA` times the one
    before; stratified by class. A single stage (all of it) when the sample is too small to split."""
    rng = np.random.default_rng([seed, 7919])
    if task == "classification" and labels is not None:
        groups = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
        floor = MIN_FIRST_PER_CLASS
    else:
        groups, floor = [rng.permutation(n)], MIN_FIRST_ITEMS
    for stages in range(MAX_STAGES, 1, -1):
        first = float(ETA) ** -(stages - 1)
        if all(math.ceil(first * len(g)) >= floor for g in groups):
            break
    else:
        return [np.arange(n)]
    fractions = [float(ETA) ** -(stages - 1 - k) for k in range(stages)]
    return [np.sort(np.concatenate([g[: math.ceil(f * len(g))] for g in groups])) for f in fractions]


def increments(stages: Sequence[np.ndarray]) -> list[np.ndarray]:
    """What each stage adds to the one before (sorted indices); together, the last stage."""
    seen: np.ndarray = np.array([], dtype=int)
    out = []
    for s in stages:
        out.append(np.setdiff1d(s, seen))
        seen = s
    return out


def stage_order(stages: Sequence[np.ndarray], k: int) -> np.ndarray:
    """The items of stage ``k`` in the order its features are assembled: increment by increment."""
    return np.concatenate(increments(stages)[: k + 1])


def decide(
    features: Mapping[str, Arrays],
    labels: np.ndarray | None,
    task: str,
    names: Sequence[str],
    params: Mapping[str, float],
    *,
    rounds: int,
    seed: int,
    method: str | None = None,
) -> dict[str, Any]:
    """One stage's decision on the survivors' features: who stays, and for those who leave the
    combined score, the rank interval and the reason. JSON-ready (it is cached: :mod:`.memo`)."""
    compute = list(dict.fromkeys(to_compute(names)))
    scores = {r: as_dict(score_features(f, p, labels, task, compute)) for r, (f, p) in features.items()}
    shown = pooled(scores, names)
    unscored = [r for r in features if not any(math.isfinite(v) for v in shown[r].values())]
    scored = {r: scores[r] for r in features if r not in unscored}
    if len(scored) <= KEEP_AT_LEAST:
        return {"kept": list(features), "dropped": []}
    combined = combine(scored, names, method=method)
    ranked = order(combined, params)
    kept = set(ranked[:KEEP_AT_LEAST]) | set(unscored)
    intervals: dict[str, tuple[int, int]] = {}
    if rounds > 0:
        conf = bootstrap(
            {r: features[r] for r in scored},
            labels,
            task,
            names,
            ranked,
            rounds=rounds,
            seed=seed,
            method=method,
        )
        intervals = conf.rank_interval
        kept |= {r for r in ranked if intervals[r][0] <= 1}
    else:  # no resampling asked for: the top half
        kept |= set(ranked[: math.ceil(len(ranked) / ETA)])
    dropped = []
    for r in ranked:
        if r in kept:
            continue
        if intervals:
            lo, hi = intervals[r]
            why = f"rank {lo}-{hi} (5-95 % of {rounds} resamples) cannot reach the top"
        else:
            why = f"ranks {ranked.index(r) + 1} of {len(ranked)}, below the top half"
        dropped.append(
            {"ref": r, "combined": combined[r], "rank_interval": list(intervals.get(r, ())), "reason": why}
        )
    return {"kept": [r for r in features if r in kept], "dropped": dropped}


def halve(
    refs: Sequence[str],
    stages: Sequence[np.ndarray],
    features_on: Callable[[list[str], int], dict[str, Arrays]],
    labels: np.ndarray | None,
    task: str,
    names: Sequence[str],
    params: Mapping[str, float],
    *,
    rounds: int,
    seed: int,
    method: str | None = None,
    memo: Memo | None = None,
) -> tuple[list[str], list[Stage]]:
    """The survivors of every stage but the last, and the stages. ``features_on(refs, k)`` gives the
    features of ``refs`` on stage ``k`` in :func:`stage_order` (a ref it could not embed is left out:
    the caller has recorded why)."""
    alive, done = list(refs), []
    for k in range(len(stages) - 1):
        feats = features_on(alive, k)
        alive = [r for r in alive if r in feats]
        stage = Stage(samples=len(stages[k]), candidates=list(alive))
        done.append(stage)
        if len(alive) <= KEEP_AT_LEAST:
            continue
        sub_labels = None if labels is None else labels[stage_order(stages, k)]
        inputs = {
            "features": {r: feats[r] for r in alive},
            "labels": sub_labels,
            "task": task,
            "names": list(names),
            "params": {r: params.get(r, 0.0) for r in alive},
            "rounds": rounds,
            "seed": seed,
            "method": method,
        }
        decision = (
            memo.get_or_compute("halving", inputs, lambda inputs=inputs: decide(**inputs))
            if memo
            else decide(**inputs)
        )
        stage.dropped = [
            {**d, "reason": f"dropped at {stage.samples} samples: {d['reason']}"} for d in decision["dropped"]
        ]
        alive = [r for r in alive if r in decision["kept"]]
    return alive, done


def plan(budget: str, n_candidates: int, stages: Sequence[np.ndarray]) -> Halving:
    """Whether the budget halves this run, and why not when it does not."""
    check_budget(budget)
    if budget == "full":
        return Halving(budget, False, "every candidate on the whole sample (--budget full)")
    if n_candidates < AUTO_FROM:
        return Halving(budget, False, f"{n_candidates} candidates: halving starts at {AUTO_FROM}")
    if len(stages) < 2:
        return Halving(budget, False, "the sample is too small to split into stages")
    return Halving(
        budget, True, f"{len(stages)} stages: " + ", ".join(str(len(s)) for s in stages) + " samples"
    )
