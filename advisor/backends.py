"""Where the candidates' features are computed: in this process, or on an engine that spreads them.

A backend turns a list of embedding jobs — (model record, pretrained or random-init) — into their
:class:`~tlreg.advisor.features.Features`, or the :class:`TlregError` that stopped one. Everything after
(scores, ranking, the run record) is the same whichever backend ran, so a backend only decides where the
forward passes happen. The local backend runs them one model at a time, in order; ``ray`` (optional
extra ``tlreg[ray]``) runs them on a Ray cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import BadInputError, TlregError

from .cache import FeatureCache
from .data import Dataset
from .errors import StorageError
from .features import Features, Reporter, features_for


@dataclass(frozen=True)
class Job:
    record: ModelRecord
    pretrained: bool


@dataclass
class EmbedSettings:
    seed: int
    batch_size: int
    workers: int
    trust_remote_code: bool


class Backend(Protocol):
    def run(
        self,
        registry: Registry,
        jobs: Sequence[Job],
        sample: Dataset,
        fingerprint: str,
        *,
        cache: FeatureCache,
        device: torch.device,
        settings: EmbedSettings,
        reporter: Reporter,
    ) -> Iterator[tuple[Job, Features | TlregError]]:
        """Each job with its features or its error, in the order of ``jobs``."""
        ...


class LocalBackend:
    """One model at a time in this process (memory holds one model); a model that cannot be loaded
    takes its random-init baseline with it."""

    def run(
        self,
        registry: Registry,
        jobs: Sequence[Job],
        sample: Dataset,
        fingerprint: str,
        *,
        cache: FeatureCache,
        device: torch.device,
        settings: EmbedSettings,
        reporter: Reporter,
    ) -> Iterator[tuple[Job, Features | TlregError]]:
        failed: set[str] = set()
        for job in jobs:
            if job.record.ref in failed:
                continue
            try:
                feats = features_for(
                    registry,
                    job.record,
                    sample,
                    fingerprint,
                    pretrained=job.pretrained,
                    seed=settings.seed,
                    cache=cache,
                    device=device,
                    batch_size=settings.batch_size,
                    workers=settings.workers,
                    trust_remote_code=settings.trust_remote_code,
                    reporter=reporter,
                )
            except StorageError:
                raise  # a full disk or an unwritable cache is no model's fault: the run stops
            except TlregError as exc:
                failed.add(job.record.ref)
                yield job, exc
                continue
            yield job, feats


BACKENDS = ("local", "ray")


def make_backend(name: str, *, address: str | None = None) -> Backend:
    if name == "local":
        return LocalBackend()
    if name == "ray":
        from .ray_backend import RayBackend

        return RayBackend(address=address)
    raise BadInputError(f"Unknown backend {name!r}.", hint=f"Use one of: {', '.join(BACKENDS)}.")
