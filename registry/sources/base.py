"""The protocol every model source implements, the discovery of installed sources, and ref parsing.

A source knows one family of refs (``schemes``): it lists what it offers, describes one model
as a :class:`ModelSpec` without loading weights, and loads a stored entry as a feature
extractor. Built-in sources register through the entry-point group ``tlreg.sources`` exactly as
a third-party package would, so a plugin source is a class and one line in its pyproject
(``[project.entry-points."tlreg.sources"] mine = "my_pkg:MySource"``), and its schemes become refs
the registry accepts: :func:`parse_ref` asks the installed sources, not a fixed list.

A plugin that fails to load (an import error, a class that is not a source) is reported by a
:class:`SourcePluginWarning` and skipped, as estimator plugins are: one broken package must not
break every command. Subclassing :class:`Source` gives a plugin the protocol's defaults (how a ref's
name is read, how its current revision is found); a class that does not is given them too.

Light on purpose: nothing here imports torch or timm (the CLI lists the source names at start).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import InvalidRefError
from ..refs import Ref, split_ref

if TYPE_CHECKING:
    from ..feature_extractor import FeatureExtractor
    from ..models import ModelBase, ModelSpec

ENTRY_POINT_GROUP = "tlreg.sources"
#: What a loaded plugin must have to be used as a source.
REQUIRED = ("schemes", "list", "describe", "load")


@dataclass(frozen=True)
class Skip:
    """A model a listing could not describe, and why (shown to the user, never dropped silently)."""

    name: str
    reason: str


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

    def parse(self, ref: Ref, text: str) -> Ref:
        """``ref`` (``scheme:name#options`` split as written in ``text``) as this source reads it.

        The default takes the name as it is, any text but none: a source whose names carry a
        revision (``hf:org/name@sha``) or a path (``file:``) overrides it to read and check them.
        """
        if not ref.name:
            raise InvalidRefError(f"{text!r}: no model name after '{ref.scheme}:'.")
        return ref

    def current_revision(self, entry: ModelBase) -> str | None:
        """The revision of the entry's weights as they are now, not only the one the registry pins.

        The default describes the model again, for sources with no cheaper way to tell; a source
        whose revisions are immutable ids (a commit sha) returns the pinned one, and one whose files
        can change in place hashes them (``local``).
        """
        return self.describe(parse_ref(entry.ref)).revision


class SourceOverrideWarning(UserWarning):
    """Two installed packages register a source under one name; the later one wins."""


class SourcePluginWarning(UserWarning):
    """An installed source plugin failed to load; it is skipped and the other sources work."""


def source_names() -> list[str]:
    """The names the installed packages register sources under, without loading any of them."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


@cache
def sources() -> dict[str, Source]:
    """Every installed source that loads, by name, from the ``tlreg.sources`` entry points."""
    found: dict[str, Source] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            source = ep.load()()
            missing = [m for m in REQUIRED if not hasattr(source, m)]
            if missing:
                raise TypeError(f"it has no {', '.join(missing)}: not a model source")
        except Exception as error:  # a plugin must not break tlreg: report it and go on
            warnings.warn(
                f"Model source plugin {ep.name!r} ({ep.value}) failed to load and was skipped: "
                f"{type(error).__name__}: {error}",
                SourcePluginWarning,
                stacklevel=2,
            )
            continue
        if ep.name in found:
            warnings.warn(
                f"Source {ep.name!r} from {ep.value} overrides an earlier registration.",
                SourceOverrideWarning,
                stacklevel=2,
            )
        found[ep.name] = source
    return found


def get_source(name: str) -> Source:
    try:
        return sources()[name]
    except KeyError:
        raise InvalidRefError(
            f"Unknown model source {name!r}.", hint=f"Installed sources: {', '.join(sorted(sources()))}."
        ) from None


def schemes() -> dict[str, Source]:
    """Every ref scheme an installed source reads, and that source (the first that claims it)."""
    found: dict[str, Source] = {}
    for source in sources().values():
        for scheme in source.schemes:
            found.setdefault(scheme, source)
    return found


def source_for_scheme(scheme: str) -> Source:
    source = schemes().get(scheme)
    if source is None:
        raise InvalidRefError(f"No installed source handles {scheme}: refs.")
    return source


def parse_ref(text: str) -> Ref:
    """Parse a ref string through the installed source of its scheme; :class:`InvalidRefError` naming
    the problem otherwise."""
    known = schemes()
    ref = split_ref(text)
    if ref is None or ref.scheme not in known:
        raise InvalidRefError(
            f"{text!r} is not a model reference.",
            hint=f"Start it with an installed scheme ({', '.join(sorted(known))}), e.g. timm:NAME, "
            "hf:ORG/NAME[@REV], file:PATH#arch=ARCH, local-dir:PATH or pkg:NAME; or give a path to a "
            "weights file or folder.",
        )
    source = known[ref.scheme]
    method = getattr(source, "parse", None)
    return method(ref, text) if method else Source.parse(source, ref, text)


def current_revision(entry: ModelBase) -> str | None:
    """What the entry's source says its weights' revision is now (see :meth:`Source.current_revision`)."""
    source = get_source(entry.source)
    method = getattr(source, "current_revision", None)
    return method(entry) if method else Source.current_revision(source, entry)
