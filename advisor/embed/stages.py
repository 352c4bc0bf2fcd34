"""Features on the stages of successive halving (:mod:`tlreg.advisor.halving`): increment by increment.

Each stage's increment — the items the stages before it did not hold — is a sample of its own (its
own fingerprint and cache entry), embedded through the run's backend like any sample. A
candidate's features on a stage are its increments' features, concatenated; a survivor's features
on the whole sample are all its increments put back in the sample's order and written as the whole
sample's cache entry, so nothing is embedded twice and a later ``--budget full`` run finds them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from tlreg.registry import ModelRecord
from tlreg.registry.errors import TlregError

from ..data import fingerprint
from ..halving import Arrays, increments
from .backends import Backend
from .cached import cached_features, new_entry
from .request import EmbedRequest, Features, Job


class StageEmbedder:
    """The candidates' features on the stages of ``request``'s sample (``stages``: nested index sets,
    the last all of it). ``on_error(job, error)`` hears of a model that could not be embedded."""

    def __init__(
        self,
        request: EmbedRequest,
        backend: Backend,
        records: dict[str, ModelRecord],
        stages: Sequence[np.ndarray],
        *,
        on_error: Callable[[Job, TlregError], None],
    ) -> None:
        self.request, self.backend, self.records, self.on_error = request, backend, records, on_error
        self.parts = increments(stages)
        self.order = np.concatenate(self.parts)
        self.requests: list[EmbedRequest] = []
        for part in self.parts:
            sub = request.sample.subset(part)
            self.requests.append(request.on(sub, fingerprint(sub)))
        self.have: dict[tuple[str, int], Features] = {}
        self.failed: set[str] = set()
        self.forward_passes = 0

    def _embed(self, refs: Sequence[str], j: int) -> None:
        missing = [r for r in refs if r not in self.failed and (r, j) not in self.have]
        if not missing:
            return
        for job, outcome in self.backend.run(self.requests[j], [Job(self.records[r]) for r in missing]):
            if isinstance(outcome, TlregError):
                self.failed.add(job.record.ref)
                self.on_error(job, outcome)
                continue
            self.have[(job.record.ref, j)] = outcome
            self.forward_passes += 0 if outcome.from_cache else len(self.parts[j])

    def features_on(self, refs: list[str], k: int) -> dict[str, Arrays]:
        """The features of ``refs`` on stage ``k``, increment by increment (the halving's order)."""
        for j in range(k + 1):
            self._embed(refs, j)
        out: dict[str, Arrays] = {}
        for r in refs:
            if r in self.failed:
                continue
            got = [self.have[(r, j)] for j in range(k + 1)]
            probs = None if got[0].probs is None else np.concatenate([g.probs for g in got])  # type: ignore[misc]
            out[r] = (np.concatenate([g.features for g in got]), probs)
        return out

    def whole(self, ref: str) -> Features | None:
        """``ref``'s features on the whole sample: the cached entry, or its increments put back in
        order and written as that entry. None when the model could not be embedded."""
        job, start = Job(self.records[ref]), time.perf_counter()
        hit = cached_features(self.request, job, start=start)
        if hit is not None:
            return hit
        last = len(self.parts) - 1
        stacked = self.features_on([ref], last).get(ref)
        if stacked is None:
            return None
        got = [self.have[(ref, j)] for j in range(last + 1)]
        inverse = np.empty_like(self.order)
        inverse[self.order] = np.arange(len(self.order))
        features, probs = stacked[0][inverse], None if stacked[1] is None else stacked[1][inverse]
        revision = got[0].revision
        writer = new_entry(
            self.request,
            job,
            revision,
            dim=features.shape[1],
            classes=None if probs is None else probs.shape[1],
        )
        writer.write(features, probs)
        entry = writer.commit()
        computed = [(len(self.parts[j]), g.seconds) for j, g in enumerate(got) if not g.from_cache]
        seconds = sum(s for _, s in computed)
        rate = sum(n for n, _ in computed) / seconds if computed and seconds > 0 else None
        feats = Features.computed(entry, label=job.label, revision=revision, start=start, samples_per_s=rate)
        feats.from_cache = not computed
        feats.seconds = round(seconds, 3)
        return feats
