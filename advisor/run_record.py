"""The one writer of run records: a ``recommend`` run's record is opened before the first model
loads, gets a row per candidate and score as they come and the dataset's signature, and is closed
with the result or the failure; records whose process died mid-way are closed as failed.

Every write the advisor makes to the run tables (:mod:`tlreg.registry.runs`) goes through this
module, so what a record holds, and when, can be read in one place. A :class:`RunRecorder` made
with ``record=False`` writes nothing (``tlreg runs verify`` recomputes a run that way) and leaves
the run id empty. Writes of a run are never rewritten: runs are append-only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tlreg.registry import OutcomeStore, Registry
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore, RunStore, new_run_id

if TYPE_CHECKING:
    from tlreg.registry.outcomes import DatasetSignature

    from .embed.request import Features
    from .result import RecommendResult
    from .scoring import Scored


def close_abandoned(registry: Registry) -> list[str]:
    """Close as failed the records of runs whose process died mid-way (killed, the machine lost), so
    nothing is shown as running that is not; their ids. A read-only registry is left as it is."""
    if registry.read_only:
        return []
    return RunStore(registry.engine).mark_abandoned()


class RunRecorder:
    """Records one run in ``registry``; closes the records of runs that died mid-way first."""

    def __init__(self, registry: Registry, *, record: bool = True) -> None:
        self.runs = RunStore(registry.engine) if record else None
        self.outcomes = OutcomeStore(registry.engine) if record else None
        self.run_id = ""
        if record:
            close_abandoned(registry)

    def new_id(self) -> str:
        """The id the run will be recorded under ("" when nothing is recorded)."""
        return new_run_id() if self.runs is not None else ""

    def start(self, run: Run) -> None:
        """Open the record (status ``running``) before any model loads."""
        self.run_id = run.id
        if self.runs is not None:
            self.runs.start(run)

    def candidate(
        self, feats: Features, scored: Sequence[Scored], *, params: int | None, baseline_of: str | None
    ) -> None:
        """One embedded row (a candidate or a baseline) and each of its scores, written together."""
        if self.runs is None:
            return
        self.runs.add(
            RunCandidate(
                run_id=self.run_id,
                ref=feats.label,
                revision=feats.revision,
                cache_key=feats.cache_key,
                baseline_of=baseline_of,
                params=params,
                feature_dim=feats.features.shape[1],
                seconds=feats.seconds,
                samples_per_s=feats.samples_per_s,
                from_cache=feats.from_cache,
            ),
            *(
                RunScore(
                    run_id=self.run_id,
                    ref=feats.label,
                    estimator=i.estimator,
                    value=i.value if math.isfinite(i.value) else None,
                    seconds=i.seconds,
                    error=i.error,
                )
                for i in scored
            ),
        )

    def skipped(self, label: str, reason: str) -> None:
        """A row whose model could not be embedded, and why."""
        if self.runs is not None:
            self.runs.add(RunCandidate(run_id=self.run_id, ref=label, status="skipped", reason=reason))

    def dropped(self, ref: str, reason: str) -> None:
        """A candidate that successive halving left out before the whole sample, and why."""
        if self.runs is not None:
            self.runs.add(RunCandidate(run_id=self.run_id, ref=ref, status="dropped", reason=reason))

    def signature(self, signature: DatasetSignature) -> None:
        """The dataset's signature, so later runs on similar data find this one (the history)."""
        if self.outcomes is not None:
            self.outcomes.add_signature(signature)

    def fail(self, exc: BaseException) -> None:
        """Close the record as failed, with the error (an interrupted run is recorded as such)."""
        if self.runs is not None:
            self.runs.fail(self.run_id, f"{type(exc).__name__}: {exc}")

    def finish(self, result: RecommendResult, *, device: str | None = None) -> None:
        """Close the record with the whole answer (the ranking in full, whatever ``top`` shows) and
        ``device``, the one models ran on here (None: none ran, every feature came from the cache)."""
        if self.runs is None:
            return
        self.runs.finish(
            RunResult(
                run_id=self.run_id,
                best_ref=result.best.ref if result.best else None,
                reason=result.reason,
                ranking=[r.to_dict() for r in result.ranking + result.baselines],
                warnings=result.warnings,
                skipped=result.skipped,
                detail={
                    "estimators": result.estimators,
                    "aggregation": result.aggregation,
                    "confidence": result.confidence,
                    "history": result.history,
                    "budget": result.budget,
                    "device": device,
                },
            )
        )
