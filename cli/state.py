"""The global options every command sees, and the registry they open lazily."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) loads when a command opens it, not at start-up
    from tlreg.registry import Registry


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


pass_state = click.make_pass_decorator(State, ensure=True)
