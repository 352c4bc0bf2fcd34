"""The protocol every model source implements, and the entry-point discovery of sources.

A source knows one family of refs (``schemes``): it lists what it offers, describes one model
as a :class:`ModelSpec` without loading weights, and loads a stored entry as a feature
extractor. Built-in sources register through the entry-point group ``tlreg.sources`` exactly as
a third-party package would, so a plugin source is a class and one line in its pyproject.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..errors import InvalidRefError
from ..feature_extractor import FeatureExtractor
from ..models import ModelBase, ModelSpec
from ..refs import Ref

ENTRY_POINT_GROUP = "tlreg.sources"


@dataclass(frozen=True)
class Skip:
    """A model a listing could not describe, and why (shown to the user, never dropped silently)."""

    name: str
    reason: str


@runtime_checkable
class Source(Protocol):
    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    def list(
        self, *, filters: Sequence[str] = (), limit: int | None = None, sort: str | None = None
    ) -> Iterator[ModelSpec | Skip]:
        """What this source offers, matching ``filters``, as specs (or skips with a reason)."""
        ...

    def describe(self, ref: Ref, **options: Any) -> ModelSpec:
        """Everything the registry stores about ``ref``, pinned, without loading weights."""
        ...

    def load(
        self, entry: ModelBase, *, pretrained: bool = True, trust_remote_code: bool = False
    ) -> FeatureExtractor:
        """The entry as a feature extractor (``pretrained=False``: same architecture, random init)."""
        ...


class SourceOverrideWarning(UserWarning):
    """Two installed packages register a source under one name; the later one wins."""


@cache
def sources() -> dict[str, Source]:
    """Every installed source by name, from the ``tlreg.sources`` entry points."""
    found: dict[str, Source] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            warnings.warn(
                f"Source {ep.name!r} from {ep.value} overrides an earlier registration.",
                SourceOverrideWarning,
                stacklevel=2,
            )
        found[ep.name] = ep.load()()
    return found


def get_source(name: str) -> Source:
    try:
        return sources()[name]
    except KeyError:
        raise InvalidRefError(
            f"Unknown model source {name!r}.", hint=f"Installed sources: {', '.join(sorted(sources()))}."
        ) from None


def source_for_scheme(scheme: str) -> Source:
    for source in sources().values():
        if scheme in source.schemes:
            return source
    raise InvalidRefError(f"No installed source handles {scheme}: refs.")
