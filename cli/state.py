"""The global options every command sees, and the registry they open lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) loads when a command opens it, not at start-up
    from tlreg.registry import Registry
    from tlreg.registry.sqlite_read import SqliteReader

T = TypeVar("T")


@dataclass
class State:
    db: str | None = None
    quiet: bool = False
    debug: bool = False
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from tlreg.registry import Registry

            self._registry = Registry(self.db)
        return self._registry

    def read(self, fast: Callable[[SqliteReader], T | None], slow: Callable[[Registry], T]) -> T:
        """What ``fast`` reads from the registry's SQLite file without the ORM, when it can answer (a
        third of a second less start-up: see :mod:`tlreg.registry.sqlite_read`); else ``slow`` asks
        :attr:`registry`, the same answer."""
        if self._registry is None:
            from tlreg.registry.sqlite_read import SqliteReader

            reader = SqliteReader.for_url(self.db)
            answer = fast(reader) if reader is not None else None
            if answer is not None:
                return answer
        return slow(self.registry)


pass_state = click.make_pass_decorator(State, ensure=True)
