"""``tlreg doctor``: what a bug report needs in one screen."""

from __future__ import annotations

import click

from .output import emit_json, snake, stdout, table
from .state import State, pass_state


@click.command()
@click.option("--json", "as_json", is_flag=True)
@pass_state
def doctor(state: State, as_json: bool) -> None:
    """Versions, device, offline state, and where the database and caches are (with sizes)."""
    from tlreg.registry.doctor import diagnose  # here: `tlreg --help` must not load the store

    report = diagnose(state.db)
    if as_json:
        emit_json({snake(k): v for k, v in report.items()})
        return
    stdout().print(table(None, ["item", "value"], [[k, v] for k, v in report.items()]))
