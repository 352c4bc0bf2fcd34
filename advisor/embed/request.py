"""What an embedding job is: the request a backend serves, the jobs in it, and the features each gives.

One :class:`EmbedRequest` carries what every step of the embedding needs — the registry (to load
models and pin their revisions), the sample and its fingerprint, the feature cache, the device,
the :class:`EmbedSettings` and where progress goes — so the local and Ray backends and
:func:`~tlreg.advisor.embed.cached.features_for` all take that one object. The device stays a name
(``auto``, ``cpu``, ``cuda:1``) until a model runs: resolving it imports torch, which a run served
from the feature cache never needs (the cache key does not depend on the device). A :class:`Job` is one
model of the request, pretrained or randomly initialised (its baseline); :class:`Features` is what
a job gives, read from the cache or computed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from .. import defaults
from ..progress import Reporter, Silent
from ..result import baseline_label

if TYPE_CHECKING:
    import torch
    from tlreg.registry import ModelRecord, Registry

    from ..cache import CachedFeatures, FeatureCache
    from ..data import Dataset


@dataclass(frozen=True)
class EmbedSettings:
    """How the forward passes run (the part of a run's options that the workers of a backend need)."""

    seed: int = defaults.SEED  # of the random-init baselines
    batch_size: int = defaults.BATCH_SIZE
    workers: int = 0  # DataLoader worker processes
    trust_remote_code: bool = False


@dataclass(frozen=True)
class Job:
    """One model to embed the sample with: pretrained, or its architecture randomly initialised."""

    record: ModelRecord
    pretrained: bool = True

    @property
    def label(self) -> str:
        """Its name in rankings, run records and the cache: the ref, or the ref's baseline label."""
        return self.record.ref if self.pretrained else baseline_label(self.record.ref)


def jobs_for(candidates: Sequence[ModelRecord], *, baselines: bool) -> list[Job]:
    """Each candidate, followed by its random-init baseline when ``baselines``."""
    inits = (True, False) if baselines else (True,)
    return [Job(record, pretrained) for record in candidates for pretrained in inits]


@dataclass
class EmbedRequest:
    """Everything an embedding backend needs to turn jobs into features (``device``: a name such as
    ``auto``, or a ``torch.device``; see :meth:`torch_device`)."""

    registry: Registry
    sample: Dataset
    fingerprint: str
    _: KW_ONLY
    cache: FeatureCache
    device: torch.device | str = "cpu"
    settings: EmbedSettings = field(default_factory=EmbedSettings)
    reporter: Reporter = field(default_factory=Silent)
    _resolved: torch.device | None = field(default=None, init=False, repr=False)
    _parent: EmbedRequest | None = field(default=None, init=False, repr=False)

    def torch_device(self) -> torch.device:
        """The device the forward passes run on (``auto``: CUDA, then MPS, then CPU), resolved when the
        first model runs and the same for every later one."""
        if self._resolved is None:
            from .device import resolve_device

            self._resolved = resolve_device(self.device)
            if self._parent is not None:
                self._parent._resolved = self._resolved
        return self._resolved

    @property
    def device_used(self) -> str | None:
        """The device models ran on in this process; None while every feature came from the cache."""
        return None if self._resolved is None else str(self._resolved)

    def on(self, sample: Dataset, fingerprint: str) -> EmbedRequest:
        """The same request for another sample (a stage of successive halving): what runs there
        counts as run here (:attr:`device_used`)."""
        part = replace(self, sample=sample, fingerprint=fingerprint)
        part._parent = self
        return part


@dataclass
class Features:
    """A candidate's (or a baseline's) features for the sample, and what producing them cost."""

    label: str
    features: np.ndarray
    probs: np.ndarray | None
    revision: str | None
    cache_key: str
    from_cache: bool
    seconds: float
    samples_per_s: float | None = None

    @classmethod
    def cached(cls, entry: CachedFeatures, *, label: str, revision: str | None, start: float) -> Features:
        """Features read from a cache entry (no forward pass: no throughput to report)."""
        return cls._of(
            entry, label=label, revision=revision, start=start, from_cache=True, samples_per_s=None
        )

    @classmethod
    def computed(
        cls,
        entry: CachedFeatures,
        *,
        label: str,
        revision: str | None,
        start: float,
        samples_per_s: float | None,
    ) -> Features:
        """Features just computed and committed to the cache as ``entry``."""
        return cls._of(
            entry, label=label, revision=revision, start=start, from_cache=False, samples_per_s=samples_per_s
        )

    @classmethod
    def _of(
        cls,
        entry: CachedFeatures,
        *,
        label: str,
        revision: str | None,
        start: float,
        from_cache: bool,
        samples_per_s: float | None,
    ) -> Features:
        return cls(
            label=label,
            features=np.asarray(entry.features),
            probs=None if entry.probs is None else np.asarray(entry.probs),
            revision=revision,
            cache_key=entry.key,
            from_cache=from_cache,
            seconds=time.perf_counter() - start,
            samples_per_s=samples_per_s,
        )
