"""Scoring features with several estimators, tolerant of the ones that cannot score them; and the
:class:`Scoreboard` that collects one run's scores, row by row.

An estimator that cannot score a model (too few samples per class for its covariance, features
wider than the sample, no source head for LEEP) must not sink the whole run: its score is NaN,
the reason is kept, and the ranking uses the estimators that did score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import estimators as est
from .errors import EstimatorError, NoCandidatesError
from .memo import Memo
from .rank import pooled, to_compute
from .verdicts import verdict_names

if TYPE_CHECKING:
    from tlreg.registry import ModelRecord

    from .embed.request import Features


@dataclass
class Scored:
    estimator: str
    value: float
    seconds: float
    error: str | None = None


def score_features(
    features: np.ndarray, probs: np.ndarray | None, labels: Any, task: str, names: Sequence[str]
) -> list[Scored]:
    """Every applicable estimator in ``names`` on these features; estimators needing a source head
    are left out for models without one."""
    out: list[Scored] = []
    for name in names:
        if est.get(name).needs_source_probs and probs is None:
            continue
        start = time.perf_counter()
        try:
            value, error = est.score(name, features, labels, source_probs=probs, task=task), None
        except EstimatorError as exc:
            value, error = math.nan, str(exc)
        out.append(Scored(name, value, time.perf_counter() - start, error))
    return out


def prepare_rows(
    features: np.ndarray, probs: np.ndarray | None, labels: Any, task: str, names: Sequence[str]
) -> Callable[[np.ndarray], dict[str, float]]:
    """Every applicable estimator in ``names`` made ready to score subsets of this sample: the result
    maps row indices to ``{estimator: value}`` (NaN where it refuses), what
    ``as_dict(score_features(features[rows], ...))`` gives, but with each estimator's sample-wide
    step (:func:`tlreg.advisor.estimators.prepared`: N-LEEP's mixture) done once, not once per subset.
    """
    scorers: dict[str, Callable[[np.ndarray], float] | None] = {}
    for name in names:
        if est.get(name).needs_source_probs and probs is None:
            continue
        try:
            scorers[name] = est.prepared(name, features, labels, source_probs=probs, task=task)
        except EstimatorError:
            scorers[name] = None

    def on_rows(rows: np.ndarray) -> dict[str, float]:
        out = {}
        for name, scorer in scorers.items():
            try:
                out[name] = math.nan if scorer is None else scorer(rows)
            except EstimatorError:
                out[name] = math.nan
        return out

    return on_rows


def as_dict(scored: Sequence[Scored]) -> dict[str, float]:
    return {s.estimator: s.value for s in scored}


@dataclass
class Scoreboard:
    """One run's scores so far, by label (candidates and baselines alike): what each estimator gave,
    the features it scored, the candidate's registry record, and what could not be scored or embedded.

    ``names`` are the estimators the ranking uses; pool-normalised ones are scored by their
    components (:func:`~tlreg.advisor.rank.to_compute`). An estimator that fails on one row leaves a
    NaN and a warning: the ranking uses those that did score.
    """

    names: list[str]
    labels: Any
    task: str
    warns: list[str]
    memo: Memo | None = None  # reuse an earlier run's scores of the same arrays (:mod:`.memo`)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    features: dict[str, Features] = field(default_factory=dict)
    records: dict[str, ModelRecord] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def score(self, feats: Features, record: ModelRecord | None = None) -> list[Scored]:
        """Score one row's features with every estimator (``record``: the model they came from)."""
        scored = self._score_features(feats)
        for item in scored:
            if item.error:
                self.errors.setdefault(feats.label, []).append(item.error)
                self.warns.append(f"{item.estimator} could not score {feats.label}: {item.error}")
        self.scores[feats.label], self.features[feats.label] = as_dict(scored), feats
        if record is not None:
            self.records[feats.label] = record
        return scored

    def _score_features(self, feats: Features) -> list[Scored]:
        inputs = {
            "features": feats.features,
            "probs": feats.probs,
            "labels": self.labels,
            "task": self.task,
            "names": self.computed,
        }
        if self.memo is None:
            return score_features(**inputs)
        done = self.memo.get_or_compute(
            "scores", inputs, lambda: [asdict(s) for s in score_features(**inputs)]
        )
        return [Scored(**s) for s in done]

    @property
    def computed(self) -> list[str]:
        """What each row is scored with: the ranking's estimators' components and the verdicts'."""
        return list(dict.fromkeys(to_compute([*self.names, *verdict_names(self.task, self.names)])))

    def skip(self, label: str, reason: str) -> None:
        self.skipped.append({"ref": label, "reason": reason})

    def scored_candidates(self, candidates: Sequence[ModelRecord]) -> list[str]:
        """The candidates that at least one estimator scored; the others join ``skipped`` with the reason.

        A candidate with no finite score is never ranked, never gets P(best) and never beats anything:
        a ranking built on nothing would still name a pick. None scored at all is an error (exit 3).
        """
        refs, unscored = [], []
        for record in candidates:
            if record.ref not in self.scores:
                continue
            values = pooled({record.ref: self.scores[record.ref]}, self.names)[record.ref]
            if any(math.isfinite(v) for v in values.values()):
                refs.append(record.ref)
                continue
            why = "; ".join(dict.fromkeys(self.errors.get(record.ref, []))) or "every estimator refused it"
            self.skip(record.ref, f"no estimator could score it ({why})")
            unscored.append(why)
        if not refs:
            if unscored:
                raise NoCandidatesError(
                    f"No candidate could be scored: {unscored[0]}",
                    hint="Fix the data so the estimators can use it (see the reason), then run again.",
                )
            raise NoCandidatesError(
                f"None of the {len(candidates)} candidate models could be evaluated.",
                hint="See the reasons above (or in the run record); fix them and run again.",
            )
        return refs
