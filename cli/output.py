"""How the CLI prints: results on stdout, everything else on stderr.

Pipelines read stdout, so it carries only the result (a table, or JSON with ``--json``);
progress, notes and warnings go to stderr, without colour when ``NO_COLOR`` is set and
without progress bars when stderr is not a terminal or ``--quiet`` is given. A note is one line
whatever the terminal's width, so a log can be searched line by line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from tlreg.advisor.result import human_bytes as human_bytes  # one size format for every command
from tlreg.advisor.result import human_count as human_count  # one count format for every command


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def stdout() -> Console:
    tty = sys.stdout.isatty()
    return Console(
        file=sys.stdout, no_color=_no_color(), width=None if tty else 4000, soft_wrap=not tty, highlight=False
    )


def stderr() -> Console:
    return Console(file=sys.stderr, stderr=True, no_color=_no_color(), highlight=False)


def progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=_default))


def note(message: str, *, quiet: bool = False) -> None:
    """A line for the human watching (stderr); silent with --quiet.

    Printed as is: not as rich markup (a path or class name such as ``[/data]`` would vanish or
    raise ``MarkupError``), and not wrapped at the terminal's width.
    """
    if not quiet:
        stderr().print(message, markup=False, emoji=False, soft_wrap=True)


def one_line(text: object) -> str:
    """``text`` with every run of whitespace, line breaks included, as one space."""
    return " ".join(str(text).split())


@contextlib.contextmanager
def warnings_as_notes(*, quiet: bool) -> Iterator[None]:
    """Python warnings shown as tlreg's own notes while the block runs: ``warning: MESSAGE``, one line.

    Python's form (``file.py:123: SomeWarning: ...`` and the source line of the ``warnings.warn``
    call) tells a user where the warning was raised, which is of no use to them; the message is
    what they act on, and tlreg's warnings name the file concerned in it. The same filters apply
    (a warning shown once is not repeated). ``--debug`` keeps Python's form.
    """

    def show(message: Warning | str, category: type[Warning], *_where: Any, **_: Any) -> None:
        note(f"warning: {one_line(message)}", quiet=quiet)

    original = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t
