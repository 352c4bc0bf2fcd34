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
from typing import Any, Protocol

import numpy as np
import torch
from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import UnknownModelError
from tlreg.registry.sources import get_source

from .cache import FeatureCache, cache_key
from .data import Dataset
from .embed import embed_into
from .result import baseline_label


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


def cache_parts(
    record: ModelRecord, sample: Dataset, fingerprint: str, *, pretrained: bool, seed: int
) -> dict[str, Any]:
    """What a job's cache key hashes, but its revision (known once the model is pinned or loaded).

    Every backend keys the cache with this, so features computed anywhere are found everywhere.
    """
    return {
        "ref": record.ref,
        "preprocessing": record.preprocessing,
        "fingerprint": fingerprint,
        "n": len(sample),
        "init": "pretrained" if pretrained else f"random-init:{seed}",
    }


def entry_meta(
    record: ModelRecord, sample: Dataset, parts: dict[str, Any], *, label: str, revision: str | None
) -> dict[str, Any]:
    """The description stored with a cache entry (``tlreg cache list`` shows it)."""
    return {
        "ref": record.ref,
        "label": label,
        "revision": revision,
        "fingerprint": parts["fingerprint"],
        "n": parts["n"],
        "init": parts["init"],
        "modality": sample.modality,
    }


def from_cache(
    cache: FeatureCache, key: str, *, label: str, revision: str | None, start: float
) -> Features | None:
    """The cache entry ``key`` as a candidate's features, or None when it is absent (or was corrupt)."""
    hit = cache.load(key)
    if hit is None:
        return None
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


def cached_features(
    record: ModelRecord,
    sample: Dataset,
    fingerprint: str,
    *,
    pretrained: bool,
    seed: int,
    cache: FeatureCache,
    start: float | None = None,
) -> Features | None:
    """The job's features from the cache without loading the model; None when they are not there, or
    when the model's revision is unknown until it loads (then only loading it can name the entry)."""
    start = time.perf_counter() if start is None else start
    revision = _current_revision(record) if pretrained else None
    if pretrained and not revision:
        return None
    key = cache_key(
        **cache_parts(record, sample, fingerprint, pretrained=pretrained, seed=seed), revision=revision
    )
    label = record.ref if pretrained else baseline_label(record.ref)
    return from_cache(cache, key, label=label, revision=revision, start=start)


def features_for(
    registry: Registry,
    record: ModelRecord,
    sample: Dataset,
    fingerprint: str,
    *,
    pretrained: bool = True,
    seed: int = 0,
    cache: FeatureCache,
    device: torch.device | str,
    batch_size: int = 32,
    workers: int = 0,
    trust_remote_code: bool = False,
    reporter: Reporter | None = None,
) -> Features:
    """The features of ``sample`` through ``record`` (or its random-init baseline), cached."""
    reporter = reporter or Silent()
    device = torch.device(device)  # "cpu" or a device: callers such as the history import pass a name
    label = record.ref if pretrained else baseline_label(record.ref)
    parts = cache_parts(record, sample, fingerprint, pretrained=pretrained, seed=seed)
    start = time.perf_counter()
    hit = cached_features(
        record, sample, fingerprint, pretrained=pretrained, seed=seed, cache=cache, start=start
    )
    if hit is not None:
        return hit
    if not pretrained:
        torch.manual_seed(seed)
    extractor = registry.load(record.ref, pretrained=pretrained, trust_remote_code=trust_remote_code)
    revision = extractor.revision if pretrained else None
    key = cache_key(**parts, revision=revision)
    # an unpinned model whose now-known revision was cached by an earlier run
    cached = from_cache(cache, key, label=label, revision=revision, start=start)
    if cached is not None:
        return cached
    meta = entry_meta(record, sample, parts, label=label, revision=revision)
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
