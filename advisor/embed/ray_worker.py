"""What runs inside the Ray workers for :mod:`.ray_driver`: load a model, embed, return arrays.

Kept apart from the driver so that it is plain to see what a worker does: it gets a job (the model's
registry record, pretrained or random init), the sample and the settings, loads the model through
its source and embeds the sample on its device, exactly as :func:`.cached.features_for` would, but
into memory. It never opens the registry database nor the feature cache: the driver does both.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import numpy as np
import torch
from tlreg.registry.errors import TlregError
from tlreg.registry.lineage import load_entry  # through its source, a fine-tune with its head

from ..data import Dataset
from .forward import embed_into
from .request import EmbedSettings, Job


@dataclass
class Embedded:
    """What an actor sends back for one job: the arrays and what producing them cost."""

    revision: str | None
    features: np.ndarray
    probs: np.ndarray | None
    seconds: float
    samples_per_s: float


@dataclass
class Failed:
    """A job whose model failed with a tlreg error: its class and message, rebuilt in the driver
    (not every error class can be unpickled through its own constructor)."""

    kind: type[TlregError]
    message: str

    def error(self) -> TlregError:
        exc = self.kind.__new__(self.kind)
        TlregError.__init__(exc, self.message)
        return exc


class _Arrays:
    """The batches in memory (a :class:`~.forward.Sink`): ``embed_into`` fills it batch by batch."""

    def __init__(self, n: int, dim: int, classes: int | None) -> None:
        self.features = np.zeros((n, dim), dtype=np.float32)
        self.probs = np.zeros((n, classes), dtype=np.float32) if classes else None
        self.filled = 0

    def write(self, features: np.ndarray, probs: np.ndarray | None) -> None:
        end = self.filled + len(features)
        self.features[self.filled : end] = features
        if self.probs is not None and probs is not None:
            self.probs[self.filled : end] = probs
        self.filled = end


class Embedder:
    """A Ray actor: loads one model at a time through its source and embeds the sample with it."""

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)

    def embed(self, job: Job, sample: Dataset, settings: EmbedSettings, workers: int) -> Embedded | Failed:
        start, extractor = time.perf_counter(), None
        try:
            if not job.pretrained:
                torch.manual_seed(settings.seed)  # as features_for does: the same random init
            extractor = load_entry(
                job.record, pretrained=job.pretrained, trust_remote_code=settings.trust_remote_code
            )
            arrays = _Arrays(len(sample), extractor.feature_dim, extractor.num_classes)
            stats = embed_into(
                extractor,
                sample.items,
                arrays,
                batch_size=settings.batch_size,
                num_workers=workers,
                device=self.device,
            )
            revision = extractor.revision if job.pretrained else None
        except TlregError as exc:
            return Failed(type(exc), str(exc))
        finally:
            del extractor
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        return Embedded(
            revision, arrays.features, arrays.probs, time.perf_counter() - start, stats.samples_per_s
        )
