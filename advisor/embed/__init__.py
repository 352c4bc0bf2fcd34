"""Embedding: the candidates' features for the sample, computed once and cached, here or on a cluster.

The modules, each with one job:

- :mod:`.request`: what a job is — the :class:`EmbedRequest` (registry, sample, fingerprint, cache,
  device, :class:`EmbedSettings`, reporter) that every step takes, each :class:`Job` in it (a model,
  pretrained or randomly initialised) and the :class:`Features` it gives;
- :mod:`.backends`: the backend protocol and the table of backends by name (``local``, ``ray``);
- :mod:`.local`: the local backend, one model at a time; :mod:`.ray_driver` and :mod:`.ray_worker`:
  the Ray backend's driver (cache, registry, order) and what its actors run (load, embed, return);
- :mod:`.cached`: a job's features from the feature cache, or embedded once into it
  (:func:`features_for`);
- :mod:`.forward`: the forward passes, batch by batch, into a cache entry;
- :mod:`.device`: the device (CUDA, MPS, CPU) and the DataLoader workers.

Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlreg.registry.lazy import lazy_exports

if TYPE_CHECKING:
    from .backends import Backend, make_backend
    from .cached import features_for
    from .device import default_workers, resolve_device
    from .request import EmbedRequest, EmbedSettings, Features, Job

_EXPORTS = {
    "Backend": ".backends",
    "EmbedRequest": ".request",
    "EmbedSettings": ".request",
    "Features": ".request",
    "Job": ".request",
    "default_workers": ".device",
    "features_for": ".cached",
    "make_backend": ".backends",
    "resolve_device": ".device",
}
__all__ = [
    "Backend",
    "EmbedRequest",
    "EmbedSettings",
    "Features",
    "Job",
    "default_workers",
    "features_for",
    "make_backend",
    "resolve_device",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
