"""Where progress goes: the protocol that embedding and fine-tuning report to, and silence.

The CLI draws rich progress bars on stderr (``cli/progress.py``); the Python API is silent unless
the caller passes a reporter of its own.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """A model's embedding starts, advances and is done; notes are one line each."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def done(self, label: str, *, seconds: float, samples_per_s: float | None) -> None: ...
    def note(self, message: str) -> None: ...


class Silent:
    """The Python API's default reporter: says nothing."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def done(self, label: str, *, seconds: float, samples_per_s: float | None) -> None:
        pass

    def note(self, message: str) -> None:
        pass
