"""How sure is the ranking? Resampling the sample, with the features already cached.

The sample is resampled ``rounds`` times and every estimator re-scores every candidate on each
resample; the combined ranking of each round gives each model the share of rounds it came first
(P(best)) and the spread of its rank (a 5-95 % interval). No forward pass runs: the features are
rows of the cached arrays.

Resamples are drawn *without* replacement (m-out-of-n subsampling, Politis & Romano 1994: each
class keeps ``fraction`` of its items, at least two) rather than with replacement, because exact
duplicates distort several estimators: a duplicated point is its own nearest neighbour in the
leave-one-out kNN probe, and duplicates shrink the class covariances that H-score, GBC and SFDA
invert. Subsampling answers the same question — would a slightly different sample change the
pick? — without that artefact.

An estimator with an expensive sample-wide step registers it as its ``prepare`` (N-LEEP: PCA and the
Gaussian mixture); it is done once per model on the whole sample and each round re-estimates only
what depends on the rows drawn (:func:`tlreg.advisor.estimators.prepared`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .rank import combine, to_compute
from .scoring import prepare_rows

#: The pick is called separable from the runner-up when it ranks above it in at least this share of rounds.
SEPARABLE = 0.9
#: A round never takes more items than this: the kNN probe is quadratic in N, and 50 rounds over a
#: 50k sample would cost more than the embedding (bench/scale.py); smaller rounds only widen the intervals.
MAX_ROUND_ITEMS = 5000


@dataclass
class Confidence:
    rounds: int
    p_best: dict[str, float] = field(default_factory=dict)
    rank_interval: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: share of rounds in which the pick ranked above the runner-up (None with fewer than 2 models)
    beats_runner_up: float | None = None
    #: every round's scores ({label: {estimator: value}}, candidates and baselines), for the verdicts
    round_scores: list[dict[str, dict[str, float]]] = field(default_factory=list, repr=False, compare=False)

    @property
    def separable(self) -> bool | None:
        return None if self.beats_runner_up is None else self.beats_runner_up >= SEPARABLE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every field (the answer cache keeps it: :mod:`tlreg.advisor.memo`)."""
        return {
            "rounds": self.rounds,
            "p_best": self.p_best,
            "rank_interval": {r: list(v) for r, v in self.rank_interval.items()},
            "beats_runner_up": self.beats_runner_up,
            "round_scores": self.round_scores,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Confidence:
        return cls(
            rounds=int(doc["rounds"]),
            p_best=dict(doc["p_best"]),
            rank_interval={r: (int(v[0]), int(v[1])) for r, v in doc["rank_interval"].items()},
            beats_runner_up=doc["beats_runner_up"],
            round_scores=list(doc["round_scores"]),
        )


def tied_with_best(combined: Mapping[str, float]) -> list[str]:
    """The refs whose combined score equals the best one (to rounding): the first place, shared."""
    finite = [v for v in combined.values() if math.isfinite(v)]
    if not finite:
        return []
    top = max(finite)
    return [
        r
        for r, v in combined.items()
        if math.isfinite(v) and math.isclose(v, top, rel_tol=1e-12, abs_tol=1e-12)
    ]


def competition_ranks(combined: Mapping[str, float]) -> dict[str, int]:
    """1 + the number of refs strictly better: tied refs share a rank (1, 1, 3); NaN ranks last."""
    values = {r: (v if math.isfinite(v) else -math.inf) for r, v in combined.items()}
    out = {}
    for r, v in values.items():
        better = sum(
            1 for w in values.values() if w > v and not math.isclose(w, v, rel_tol=1e-12, abs_tol=1e-12)
        )
        out[r] = 1 + better
    return out


def resample_indices(
    n: int, labels: np.ndarray | None, task: str, *, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """One subsample (sorted indices) of ``n`` items: for classes, ``fraction`` of each class and at
    least 2 per class; otherwise ``fraction`` of all items."""
    if task != "classification" or labels is None:
        size = max(2, round(fraction * n))
        return np.sort(rng.choice(n, size=size, replace=False))
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = min(len(members), max(2, round(fraction * len(members))))
        picks.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(picks))


def bootstrap(
    features: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    labels: np.ndarray | None,
    task: str,
    names: Sequence[str],
    ranked: Sequence[str],
    *,
    rounds: int = 50,
    fraction: float = 0.8,
    seed: int = 0,
    weights: Mapping[str, float] | None = None,
    fixed: Mapping[str, Mapping[str, float]] | None = None,
    baselines: Mapping[str, tuple[np.ndarray, np.ndarray | None]] | None = None,
    also: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    method: str | None = None,
) -> Confidence:
    """P(best) and rank intervals for the models in ``features`` ({ref: (features, probs)}).

        ``ranked`` is the ranking on the full sample (best first); the runner-up test compares its
        first two entries. ``fixed`` holds signals that do not depend on the sample ({ref: {name:
        value}}, e.g. the history's), added unchanged to every round. ``baselines`` are scored on the
        same rounds but not ranked; every round's scores (``also``: estimators scored but not ranked by,
    the verdicts') are kept in ``round_scores`` for the verdicts.

        Ties count as ties: models sharing the best combined score of a round share its P(best) credit
        (a tie-break rule such as "fewer parameters" must not win rounds it did not win), and tied
        models share a rank.
    """
    refs = list(features)
    if rounds <= 0 or not refs:
        return Confidence(rounds=rounds)
    n = len(next(iter(features.values()))[0])
    compute = list(dict.fromkeys(to_compute([*names, *also])))
    rng = np.random.default_rng(seed)
    everyone = {**(baselines or {}), **features}
    # each estimator's sample-wide work (N-LEEP's mixture) once per model, not once per round
    scorers = {r: prepare_rows(f, p, labels, task, compute) for r, (f, p) in everyone.items()}
    round_scores = []
    for _ in range(rounds):
        idx = resample_indices(n, labels, task, fraction=min(fraction, MAX_ROUND_ITEMS / n), rng=rng)
        round_scores.append({r: {**scorers[r](idx), **(fixed or {}).get(r, {})} for r in everyone})
        if progress:
            progress(1)
    return from_rounds(round_scores, refs, names, ranked, weights=weights, fixed=fixed, method=method)


def from_rounds(
    round_scores: Sequence[Mapping[str, Mapping[str, float]]],
    refs: Sequence[str],
    names: Sequence[str],
    ranked: Sequence[str],
    *,
    weights: Mapping[str, float] | None = None,
    fixed: Mapping[str, Mapping[str, float]] | None = None,
    method: str | None = None,
) -> Confidence:
    """P(best), rank intervals and the runner-up test from rounds already scored ({label: {estimator:
    value}} per round; labels not in ``refs``, the baselines, are kept but not ranked).

    One place for what :func:`bootstrap` concludes, so that a benchmark judging stored rounds
    (``bench/hub_eval.py``) concludes exactly what ``recommend`` would.
    """
    rounds = len(round_scores)
    conf = Confidence(rounds=rounds, round_scores=[dict(r) for r in round_scores])
    if rounds == 0 or not refs:
        return conf
    extra = sorted({name for values in (fixed or {}).values() for name in values})
    ranks: dict[str, list[int]] = {r: [] for r in refs}
    first = dict.fromkeys(refs, 0.0)
    ahead = 0
    for scores in round_scores:
        combined = combine({r: scores[r] for r in refs}, [*names, *extra], weights, method=method)
        for r, position in competition_ranks(combined).items():
            ranks[r].append(position)
        winners = tied_with_best(combined)
        for r in winners:
            first[r] += 1.0 / len(winners)
        if len(ranked) >= 2:
            a, b = combined[ranked[0]], combined[ranked[1]]
            ahead += (a > b) or (math.isfinite(a) and not math.isfinite(b))
    conf.p_best = {r: first[r] / rounds for r in refs}
    conf.rank_interval = {
        r: (
            int(np.percentile(ranks[r], 5, method="lower")),
            int(np.percentile(ranks[r], 95, method="higher")),
        )
        for r in refs
    }
    conf.beats_runner_up = ahead / rounds if len(ranked) >= 2 else None
    return conf
