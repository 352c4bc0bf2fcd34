"""A job's features: read from the feature cache, or embedded once into it.

Every backend keys the cache the same way (:func:`cache_parts` plus the revision), so features
computed anywhere are found everywhere. A job's features are looked up *before* its model loads
whenever its revision is known without loading (:func:`cached_features`), so a rerun, or a new
estimator, costs no forward pass.

Memory stays bounded by design: one model is loaded at a time, its features stream into the
cache entry batch by batch (:mod:`.forward`), and the model is dropped before the next one loads.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Any

from tlreg.registry.sources import current_revision

from ..cache import cache_key
from .request import EmbedRequest, Features, Job

if TYPE_CHECKING:  # torch and the forward passes load on a cache miss only: a cached run needs neither
    from tlreg.registry import ModelRecord

    from ..cache_writer import EntryWriter


def cache_parts(request: EmbedRequest, job: Job) -> dict[str, Any]:
    """What a job's cache key hashes, but its revision (known once the model is pinned or loaded)."""
    record, settings = job.record, request.settings
    return {
        "ref": record.ref,
        "preprocessing": record.preprocessing,
        "fingerprint": request.fingerprint,
        "n": len(request.sample),
        "init": "pretrained" if job.pretrained else f"random-init:{settings.seed}",
    }


def entry_key(request: EmbedRequest, job: Job, revision: str | None) -> str:
    return cache_key(**cache_parts(request, job), revision=revision)


def read_entry(
    request: EmbedRequest, job: Job, revision: str | None, *, start: float | None = None
) -> Features | None:
    """The job's cache entry at ``revision`` as its features, or None when it is absent (or was corrupt)."""
    start = time.perf_counter() if start is None else start
    hit = request.cache.load(entry_key(request, job, revision))
    if hit is None:
        return None
    return Features.cached(hit, label=job.label, revision=revision, start=start)


def new_entry(
    request: EmbedRequest, job: Job, revision: str | None, *, dim: int, classes: int | None
) -> EntryWriter:
    """A writer for the job's entry, described as ``tlreg cache list`` shows it."""
    parts = cache_parts(request, job)
    meta = {
        "ref": job.record.ref,
        "label": job.label,
        "revision": revision,
        "fingerprint": parts["fingerprint"],
        "n": parts["n"],
        "init": parts["init"],
        "modality": request.sample.modality,
    }
    key = cache_key(**parts, revision=revision)
    return request.cache.writer(key, n=len(request.sample), dim=dim, classes=classes, meta=meta)


def cached_features(request: EmbedRequest, job: Job, *, start: float | None = None) -> Features | None:
    """The job's features from the cache without loading the model; None when they are not there, or
    when the model's revision is unknown until it loads (then only loading it can name the entry).

    The revision is the one the weights have now (a local file may have changed since it was added).
    """
    revision = current_revision(job.record) if job.pretrained else None
    if job.pretrained and not revision:
        return None
    return read_entry(request, job, revision, start=start)


def features_for(request: EmbedRequest, record: ModelRecord, *, pretrained: bool = True) -> Features:
    """The features of the request's sample through ``record`` (or its random-init baseline), cached."""
    job, settings = Job(record, pretrained), request.settings
    start = time.perf_counter()
    hit = cached_features(request, job, start=start)
    if hit is not None:
        return hit
    import torch

    from .forward import embed_into

    device = request.torch_device()
    if not pretrained:
        torch.manual_seed(settings.seed)
    extractor = request.registry.load(
        record.ref, pretrained=pretrained, trust_remote_code=settings.trust_remote_code
    )
    revision = extractor.revision if pretrained else None
    # an unpinned model whose now-known revision was cached by an earlier run
    cached = read_entry(request, job, revision, start=start)
    if cached is not None:
        return cached
    writer = new_entry(request, job, revision, dim=extractor.feature_dim, classes=extractor.num_classes)
    request.reporter.start(job.label, len(request.sample))
    try:
        stats = embed_into(
            extractor,
            request.sample.items,
            writer,
            batch_size=settings.batch_size,
            num_workers=settings.workers,
            device=device,
            progress=request.reporter.advance,
        )
        entry = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        del extractor
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    request.reporter.done(job.label, seconds=stats.seconds, samples_per_s=stats.samples_per_s)
    return Features.computed(
        entry, label=job.label, revision=revision, start=start, samples_per_s=stats.samples_per_s
    )
