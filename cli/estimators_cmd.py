"""``tlreg estimators``: the transferability estimators tlreg can run, and what each needs."""

from __future__ import annotations

import click

from .output import emit_json, stdout, table

COLUMNS = ["name", "tasks", "needs", "paper"]


@click.group()
def estimators() -> None:
    """Transferability estimators: which exist, what each needs, which paper it comes from."""


@estimators.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print every estimator's metadata as a JSON list.")
def list_(as_json: bool) -> None:
    """List the registered estimators, built-in and from plugins."""
    from tlreg.advisor.estimators import available  # here: `tlreg --help` must not load SciPy

    infos = available()
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    rows = [[info.name, ", ".join(sorted(info.tasks)), " + ".join(info.needs), info.paper] for info in infos]
    stdout().print(table(None, COLUMNS, rows))
