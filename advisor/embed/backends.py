"""Where the candidates' features are computed: the backend protocol, and the backends by name.

A backend turns the jobs of an :class:`~.request.EmbedRequest` — (model record, pretrained or
random-init) — into their :class:`~.request.Features`, or the :class:`TlregError` that stopped one.
Everything after (scores, ranking, the run record) is the same whichever backend ran, so a backend
only decides where the forward passes happen: ``local`` (:mod:`.local`) one model at a time in this
process, ``ray`` (:mod:`.ray_driver`, optional extra ``tlreg[ray]``) on a Ray cluster.

Types only, and the table: a backend is imported by name when a run asks for it, so no backend
module imports another (and Ray is never imported by a local run).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib import import_module
from typing import Protocol

from tlreg.registry.errors import BadInputError, TlregError

from .. import defaults
from .request import EmbedRequest, Features, Job

#: backend name -> "module:class" in this package; the names are ``defaults.BACKENDS``.
TABLE = {"local": "local:LocalBackend", "ray": "ray_driver:RayBackend"}


class Backend(Protocol):
    def run(self, request: EmbedRequest, jobs: Sequence[Job]) -> Iterator[tuple[Job, Features | TlregError]]:
        """Each job with its features or its error, in the order of ``jobs``. A model that fails
        takes its random-init baseline with it; an error that is no model's fault (a full disk, a
        :class:`~tlreg.advisor.errors.StorageError`) is raised and stops the run."""
        ...


def make_backend(name: str, *, address: str | None = None) -> Backend:
    """The backend called ``name`` (``address``: the cluster a distributed backend joins)."""
    target = TABLE.get(name)
    if target is None:
        raise BadInputError(f"Unknown backend {name!r}.", hint=f"Use one of: {', '.join(defaults.BACKENDS)}.")
    module, cls = target.split(":")
    return getattr(import_module(f".{module}", __package__), cls)(address=address)
