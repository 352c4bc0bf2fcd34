"""Every error tlreg raises on purpose, with the cause and what to do about it.

Each class also subclasses the builtin a caller would naturally catch (``LookupError``,
``ValueError``, ``FileNotFoundError``, ...), as huggingface_hub's errors do, so library users need
not know tlreg's hierarchy. The CLI prints ``str(error)`` as one line and exits with
``exit_code``; tracebacks are for ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TlregError(Exception):
    """Base class: a problem the user can act on. ``exit_code`` is what the CLI returns."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class BadInputError(TlregError, ValueError):
    """Input the user gave is wrong (a ref, a path, an option): exit code 2."""

    exit_code = 2


class InvalidRefError(BadInputError):
    """A model reference that no source understands."""


class UnknownModelError(BadInputError, LookupError):
    """A ref that is not in the registry (or not known to its source). ``removed`` says who removed
    it and when, for a ref the registry once held: "not found" alone would send the user hunting."""

    def __init__(
        self,
        ref: str,
        *,
        known: Iterable[str] = (),
        what: str = "in the registry",
        removed: str | None = None,
    ) -> None:
        close = close_matches(ref, known)
        if removed:
            message = f"Unknown model {ref!r}: it was removed from the registry ({removed})."
            hint = f"Add it again (tlreg registry add {ref}) to use it."
        else:
            message = f"Unknown model {ref!r}: not {what}."
            hint = f"Did you mean: {', '.join(close)}?" if close else "See `tlreg registry list`."
        super().__init__(message, hint=hint)
        self.ref = ref
        self.close_matches = close


class UnknownAliasError(BadInputError, LookupError):
    """An ``@name`` that no alias has (now), with the closest alias names."""

    def __init__(self, name: str, *, known: Iterable[str] = ()) -> None:
        close = [f"@{n}" for n in difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)]
        hint = f"Did you mean: {', '.join(close)}?" if close else "See `tlreg registry alias list`."
        super().__init__(f"Unknown alias '@{name}'.", hint=hint)
        self.name = name
        self.close_matches = close


class DanglingAliasError(BadInputError, LookupError):
    """An alias whose entry was removed from the registry after the alias was set on it."""


class LineageCycleError(BadInputError):
    """A parent that would make a model its own ancestor."""


def close_matches(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Known names closest to ``name``, comparing whole names and also names without their tag
    (``timm:resnet81`` is closer to ``timm:resnet18.a1_in1k`` than the tags make it look)."""
    known = list(known)
    by_stem: dict[str, str] = {}
    for k in known:
        by_stem.setdefault(k.split(".")[0], k)
    stem_hits = [
        by_stem[s] for s in difflib.get_close_matches(name.split(".")[0], list(by_stem), n=n, cutoff=0.6)
    ]
    full_hits = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    return list(dict.fromkeys(stem_hits + full_hits))[:n]


class UnknownRunError(BadInputError, LookupError):
    """A run id (or id prefix) that names no run, or more than one; ``close_matches``: the ids it may
    have meant (the closest recent ids, or those the prefix matches)."""

    def __init__(self, message: str, *, hint: str | None = None, close: Iterable[str] = ()) -> None:
        super().__init__(message, hint=hint)
        self.close_matches = list(close)


class UnsupportedModalityError(BadInputError):
    """A model whose input is neither images nor text."""


class WeightsError(BadInputError):
    """A weights file that is missing, corrupt or does not fit the architecture."""

    def __init__(self, path: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}: {problem}", hint=hint)
        self.path = path


class OfflineError(TlregError, FileNotFoundError):
    """Something must be downloaded but the Hub cannot be reached (or ``HF_HUB_OFFLINE`` is set)."""


class RemoteCodeError(BadInputError):
    """A model that needs its own Python code, which tlreg runs only with ``--trust-remote-code``."""


class DatabaseError(TlregError):
    """The registry database cannot be used as it is."""


class DatabaseVersionError(DatabaseError):
    """The database was written by a newer tlreg; this one does not know its schema."""


class DatabaseCorruptError(DatabaseError):
    """The database file is not a SQLite database, or is damaged: tlreg leaves it as it is."""


class DatabaseReadOnlyError(DatabaseError, PermissionError):
    """The database cannot be written: its file or folder is read-only, or it was opened read-only."""
