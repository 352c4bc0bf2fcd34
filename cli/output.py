"""How the CLI prints: results on stdout, everything else on stderr.

Pipelines read stdout, so it carries only the result (a table, or JSON with ``--json``);
progress, notes and warnings go to stderr, without colour when ``NO_COLOR`` is set and
without progress bars when stderr is not a terminal or ``--quiet`` is given. ``--quiet`` silences
progress and notes, never warnings. A note or warning is one line whatever the terminal's width,
so a log can be searched line by line.

Tables keep every identifier whole: a ref, a path or a run id is never folded in the middle, so it
can be copied from the screen. Free text wraps at spaces; when the identifiers alone are wider than
the terminal, the table is printed wider than the terminal rather than cut. Piped, a table is at
most ``COLUMNS`` (default 160) wide unless its identifiers need more: wide enough to keep rows on
one line, not thousands of columns of padding.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import click
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from tlreg.advisor.result import fmt_number, human_bytes, human_count, plain

__all__ = [
    "emit_json",
    "fmt_number",
    "human_bytes",
    "human_count",
    "note",
    "percent",
    "plain",
    "snake",
    "stderr",
    "stdout",
    "table",
    "warn",
    "when",
]

#: a piped table's width when COLUMNS does not say
PIPED_WIDTH = 160
#: a word longer than this may still be folded (a pasted blob, not an identifier)
LONGEST_WORD = 120
_NUMBER = re.compile(r"^(-|[-+]?[0-9.]+(e[-+]?[0-9]+)?[kMB%=]?)$")


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def _piped_width() -> int:
    try:
        return max(int(os.environ.get("COLUMNS", "")), 40)
    except ValueError:
        return PIPED_WIDTH


class _Console(Console):
    """A console that prints a :class:`WideTable` uncut when it is wider than the console."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if any(isinstance(o, WideTable) for o in objects):
            kwargs.setdefault("crop", False)
        super().print(*objects, **kwargs)


def stdout() -> Console:
    """The result's console. No markup and no emoji codes: what tlreg prints comes from paths, class
    names and refs, where ``[/data]`` would raise MarkupError and ``[b]`` or ``:smile:`` change."""
    tty = sys.stdout.isatty()
    return _Console(
        file=sys.stdout,
        no_color=_no_color(),
        width=None if tty else _piped_width(),
        soft_wrap=not tty,
        highlight=False,
        markup=False,
        emoji=False,
    )


def stderr() -> Console:
    """Progress and notes; not a terminal (a log file, a CI job): lines are never hard-wrapped."""
    return Console(
        file=sys.stderr, stderr=True, no_color=_no_color(), highlight=False, soft_wrap=not sys.stderr.isatty()
    )


def progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def snake(key: str) -> str:
    """A label made a JSON key: ``database size (bytes)`` -> ``database_size_bytes``."""
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=_default))


def _line(message: str) -> None:
    stderr().print(message, markup=False, emoji=False, soft_wrap=True)


def note(message: str, *, quiet: bool = False) -> None:
    """A line for the human watching (stderr); silent with --quiet.

    Printed as is: not as rich markup (a path or class name such as ``[/data]`` would vanish or
    raise ``MarkupError``), and not wrapped at the terminal's width.
    """
    if not quiet:
        _line(message)


def warn(message: str) -> None:
    """``warning: MESSAGE`` on stderr, one line; shown with --quiet too (quiet is for progress)."""
    _line(message if message.startswith("warning: ") else f"warning: {message}")


def one_line(text: object) -> str:
    """``text`` with every run of whitespace, line breaks included, as one space."""
    return " ".join(str(text).split())


@contextlib.contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Python warnings shown as tlreg's own lines while the block runs: ``warning: MESSAGE``.

    Python's form (``file.py:123: SomeWarning: ...`` and the source line of the ``warnings.warn``
    call) tells a user where the warning was raised, which is of no use to them; the message is
    what they act on, and tlreg's warnings name the file concerned in it. The same filters apply
    (a warning shown once is not repeated). ``--debug`` keeps Python's form. ``--quiet`` does not
    hide them.
    """

    def show(message: Warning | str, category: type[Warning], *_where: Any, **_: Any) -> None:
        warn(one_line(message))

    original = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


class WideTable:
    """A rich table that never folds a word (an identifier): printed at the console's width when it
    fits, else at the width its words need. Its title is a line of its own (rich pads a table's
    title with spaces to the table's width)."""

    def __init__(self, table: Table, title: str | None = None) -> None:
        self.table, self.title = table, title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.title:
            yield Text(self.title, style="italic")
        need = Measurement.get(console, options.update(width=10**4), self.table).minimum
        width = max(options.max_width, need)
        yield from console.render(self.table, options.update(width=width, max_width=width))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)


def percent(share: float | None) -> str | None:
    """A share (P(best), a share of resampling rounds) as every command prints it: ``46%``."""
    return None if share is None or share != share else f"{share:.0%}"


def when(moment: datetime | str | None) -> str | None:
    """A time in a table (the column says UTC): ``2026-11-25 03:41:00``."""
    if moment is None:
        return None
    text = moment.isoformat() if isinstance(moment, datetime) else moment
    return text[:19].replace("T", " ")


def _longest_word(texts: list[str]) -> int:
    return min(max((len(w) for t in texts for w in t.split()), default=1), LONGEST_WORD)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return fmt_number(value) if isinstance(value, float) else plain(value)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> WideTable:
    """Rows as a table: None as "-", floats in tlreg's one number format, lists as ``a, b``."""
    cells = [[_cell(v) for v in row] for row in rows]
    t = Table(show_lines=False)
    for i, c in enumerate(columns):
        texts = [row[i] for row in cells]
        words = not any(" " in text for text in texts)  # identifiers and numbers: one word per cell
        numbers = all(_NUMBER.match(text) for text in texts) and any(text != "-" for text in texts)
        t.add_column(
            c,
            overflow="fold",
            no_wrap=words,
            min_width=max(_longest_word(texts), len(c) if words else _longest_word([c])),
            justify="right" if numbers else "left",
        )
    for row in cells:
        t.add_row(*row)
    return WideTable(t, title)
