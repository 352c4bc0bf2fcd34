"""The local backend: the jobs one at a time, in this process, in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tlreg.registry.errors import TlregError

from ..errors import StorageError
from .cached import features_for
from .request import EmbedRequest, Features, Job


class LocalBackend:
    """One model at a time in this process (memory holds one model); a model that cannot be loaded
    takes its random-init baseline with it."""

    def __init__(self, *, address: str | None = None) -> None:
        """``address`` is for distributed backends; a local run has none to join."""

    def run(self, request: EmbedRequest, jobs: Sequence[Job]) -> Iterator[tuple[Job, Features | TlregError]]:
        failed: set[str] = set()
        for job in jobs:
            if job.record.ref in failed:
                continue
            try:
                feats = features_for(request, job.record, pretrained=job.pretrained)
            except StorageError:
                raise  # a full disk or an unwritable cache is no model's fault: the run stops
            except TlregError as exc:
                failed.add(job.record.ref)
                yield job, exc
                continue
            yield job, feats
