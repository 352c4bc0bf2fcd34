"""The forward passes: a sample through a model, batch by batch, into a feature cache entry.

Decoding and preprocessing run in DataLoader worker processes while the model runs in the main
process; batches go straight into the cache entry's files, so memory holds one
model and a few batches whatever the sample size. On a GPU the forward pass runs under autocast
(float16 on CUDA); everywhere under ``torch.inference_mode``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from tlreg.registry import FeatureExtractor
from tlreg.registry.feature_extractor import Preprocessor
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

ProgressFn = Callable[[int], None]


class Sink(Protocol):
    """Where the batches go: a feature cache entry's writer, or arrays in memory (a Ray worker)."""

    def write(self, features: np.ndarray, probs: np.ndarray | None) -> None: ...


class _Items(TorchDataset):
    def __init__(self, items: Sequence[Any], preprocessor: Preprocessor) -> None:
        self.items, self.preprocessor = items, preprocessor

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.preprocessor(self.items[index])


@dataclass
class EmbedStats:
    samples: int
    seconds: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("inf")


def embed_into(
    extractor: FeatureExtractor,
    items: Sequence[Any],
    writer: Sink,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    device: torch.device | None = None,
    progress: ProgressFn | None = None,
) -> EmbedStats:
    """Embed ``items`` with ``extractor`` into ``writer`` (features and source probabilities)."""
    device = device or torch.device("cpu")
    extractor.to(device)
    loader = DataLoader(
        _Items(items, extractor.preprocessor),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=extractor.preprocessor.collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        multiprocessing_context="fork" if num_workers and os.name == "posix" else None,
    )
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
    )
    start = time.perf_counter()
    with autocast:
        for batch in loader:
            feats, probs = extractor.forward(batch)
            writer.write(feats.cpu().numpy(), None if probs is None else probs.cpu().numpy())
            if progress:
                progress(len(feats))
    return EmbedStats(len(items), time.perf_counter() - start)
