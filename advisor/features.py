"""Candidates and their features: chosen from the registry, taken from the cache or embedded once.

Memory stays bounded by design: one model is loaded at a time, its features stream into the
cache, and the model is dropped before the next one loads.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Protocol

import numpy as np
import torch
from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import UnknownModelError
from tlreg.registry.sources import get_source

from .cache import FeatureCache, cache_key
from .data import Dataset
from .embed import embed_into


class Reporter(Protocol):
    """Where progress goes (the CLI draws rich progress bars; the Python API is silent by default)."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def done(self, label: str, *, seconds: float, samples_per_s: float | None) -> None: ...
    def note(self, message: str) -> None: ...


class Silent:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def done(self, label: str, *, seconds: float, samples_per_s: float | None) -> None:
        pass

    def note(self, message: str) -> None:
        pass


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
    samples_per_s: float | None


def baseline_label(ref: str) -> str:
    return f"{ref} (random init)"


def select_candidates(
    registry: Registry,
    *,
    modality: str,
    models: Sequence[str] | None = None,
    tags: Sequence[str] = (),
    max_params: int | None = None,
) -> list[ModelRecord]:
    """Registered models of the data's modality that match the filters.

    ``models`` holds refs or globs ('timm:convnext*', 'pkg:*'); a plain ref that is not registered is
    an error with suggestions, rather than silently evaluating nothing.
    """
    pool = registry.list(modality=modality, tags=tags, max_params=max_params)
    if not models:
        return pool
    chosen: dict[str, ModelRecord] = {}
    for pattern in models:
        if any(c in pattern for c in "*?["):
            hits = [r for r in pool if fnmatch(r.ref, pattern) or fnmatch(r.ref.partition(":")[2], pattern)]
        else:
            record = registry.get(pattern)
            hits = [r for r in pool if r.ref == record.ref]
            if not hits and record.modality != modality:
                raise UnknownModelError(pattern, what=f"a {modality} model (it is a {record.modality} model)")
        chosen.update({r.ref: r for r in hits})
    return [chosen[k] for k in sorted(chosen)]


def _current_revision(record: ModelRecord) -> str | None:
    """The revision the features would come from now (a local file may have changed since it was added)."""
    source = get_source(record.source)
    current = getattr(source, "current_revision", None)
    return current(record) if current else record.revision


def features_for(
    registry: Registry,
    record: ModelRecord,
    sample: Dataset,
    fingerprint: str,
    *,
    pretrained: bool = True,
    seed: int = 0,
    cache: FeatureCache,
    device: torch.device,
    batch_size: int = 32,
    workers: int = 0,
    trust_remote_code: bool = False,
    reporter: Reporter | None = None,
) -> Features:
    """The features of ``sample`` through ``record`` (or its random-init baseline), cached."""
    reporter = reporter or Silent()
    label = record.ref if pretrained else baseline_label(record.ref)
    parts = {
        "ref": record.ref,
        "preprocessing": record.preprocessing,
        "fingerprint": fingerprint,
        "n": len(sample),
        "init": "pretrained" if pretrained else f"random-init:{seed}",
    }
    revision = _current_revision(record) if pretrained else None
    start = time.perf_counter()
    if revision or not pretrained:
        key = cache_key(**parts, revision=revision)
        hit = cache.load(key)
        if hit is not None:
            return Features(
                label,
                np.asarray(hit.features),
                None if hit.probs is None else np.asarray(hit.probs),
                revision,
                key,
                True,
                time.perf_counter() - start,
                None,
            )
    if not pretrained:
        torch.manual_seed(seed)
    extractor = registry.load(record.ref, pretrained=pretrained, trust_remote_code=trust_remote_code)
    revision = extractor.revision if pretrained else None
    key = cache_key(**parts, revision=revision)
    hit = cache.load(key)  # an unpinned model whose now-known revision was cached by an earlier run
    if hit is None:
        meta = {
            "ref": record.ref,
            "label": label,
            "revision": revision,
            "fingerprint": fingerprint,
            "n": len(sample),
            "init": parts["init"],
            "modality": sample.modality,
        }
        writer = cache.writer(
            key, n=len(sample), dim=extractor.feature_dim, classes=extractor.num_classes, meta=meta
        )
        reporter.start(label, len(sample))
        try:
            stats = embed_into(
                extractor,
                sample.items,
                writer,
                batch_size=batch_size,
                num_workers=workers,
                device=device,
                progress=reporter.advance,
            )
            hit = writer.commit()
        except BaseException:
            writer.abort()
            raise
        finally:
            del extractor
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        reporter.done(label, seconds=stats.seconds, samples_per_s=stats.samples_per_s)
        return Features(
            label,
            np.asarray(hit.features),
            None if hit.probs is None else np.asarray(hit.probs),
            revision,
            key,
            False,
            time.perf_counter() - start,
            stats.samples_per_s,
        )
    return Features(
        label,
        np.asarray(hit.features),
        None if hit.probs is None else np.asarray(hit.probs),
        revision,
        key,
        True,
        time.perf_counter() - start,
        None,
    )
