"""``tlreg registry alias``: names (``@champion``) for registry entries, with every move kept."""

from __future__ import annotations

from datetime import datetime

import click

from .output import emit_json, note, stdout, table
from .state import State, pass_state


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _rev(revision: str | None) -> str:
    return (revision or "unpinned")[:12]


@click.group()
def alias() -> None:
    """Names for models (@champion) that every command takes as a ref; each move is kept."""


@alias.command("set")
@click.argument("name")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the alias as JSON.")
@pass_state
def set_(state: State, name: str, ref: str, as_json: bool) -> None:
    """Point NAME at REF (at its current revision); moving it is recorded with who and when."""
    record, status = state.registry.set_alias(name, ref)
    if as_json:
        emit_json({"status": status, "alias": record})
        return
    stdout().print(f"@{record.name} -> {record.ref} @ {_rev(record.revision)} ({status})")


@alias.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_(state: State, as_json: bool) -> None:
    """Every alias, where it points now, and who set it when."""
    aliases = state.registry.aliases()
    if as_json:
        emit_json(aliases)
        return
    rows = [[f"@{a.name}", a.ref, _rev(a.revision), _when(a.set_at), a.set_by] for a in aliases]
    stdout().print(table(None, ["alias", "ref", "revision", "since (UTC)", "by"], rows))
    note(f"{len(aliases)} alias{'' if len(aliases) == 1 else 'es'}", quiet=state.quiet)


@alias.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def history(state: State, name: str | None, as_json: bool) -> None:
    """Every move of alias NAME (of all aliases without NAME): from where to where, who, when."""
    moves = state.registry.alias_history(name)
    if as_json:
        emit_json([m.to_dict() for m in moves])
        return
    rows = [
        [
            _when(m.at),
            m.user,
            m.host,
            f"@{m.name}",
            m.action,
            f"{m.old_ref} @ {_rev(m.old_revision)}" if m.old_ref else "-",
            f"{m.ref} @ {_rev(m.revision)}" if m.ref else "-",
        ]
        for m in moves
    ]
    stdout().print(table(None, ["when (UTC)", "who", "host", "alias", "what", "from", "to"], rows))


@alias.command()
@click.argument("name")
@pass_state
def remove(state: State, name: str) -> None:
    """Remove alias NAME; its history is kept (tlreg registry alias history NAME)."""
    record = state.registry.remove_alias(name)
    note(f"removed @{record.name} (it pointed at {record.ref})", quiet=state.quiet)
