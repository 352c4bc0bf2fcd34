"""``tlreg cache``: see and trim the feature cache."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from .output import emit_json, human_bytes, note, stdout, table, when
from .state import State, pass_state

if TYPE_CHECKING:
    from tlreg.advisor.cache import FeatureCache


def _when(ts: float | None) -> str | None:
    return when(datetime.fromtimestamp(ts, UTC)) if ts else None


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _feature_cache() -> FeatureCache:
    """The feature cache, imported when a command runs: ``tlreg --help`` lists these without it."""
    from tlreg.advisor.cache import FeatureCache

    return FeatureCache()


@click.group()
def cache() -> None:
    """The feature cache (TLREG_CACHE): features computed once per model and data sample."""


@cache.command(name="list")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also temporary entries: being written now, or left by a run that was killed.",
)
@click.option("--json", "as_json", is_flag=True)
def list_(show_all: bool, as_json: bool) -> None:
    """Entries with their model, data fingerprint, size and age."""
    store = _feature_cache()
    entries = list(store.entries())
    temporaries = store.temporaries() if show_all else []
    if as_json:
        emit_json(
            [
                {"key": e.key, "size": e.size, **{k: v for k, v in e.meta.items() if k != "created"}}
                | {"created_at": _iso(e.meta.get("created"))}
                for e in entries
            ]
            + [
                {"key": t.path.name, "path": str(t.path), "size": t.size, "temporary": True, "state": t.state}
                | {"modified_at": _iso(t.modified)}
                for t in temporaries
            ]
        )
        return
    rows = [
        [
            e.key[:16],
            e.meta.get("label", e.meta.get("ref")),
            str(e.meta.get("fingerprint", ""))[:12],
            e.meta.get("n"),
            human_bytes(e.size),
            _when(e.meta.get("created")),
        ]
        for e in entries
    ]
    rows += [
        [t.path.name[:16], f"(temporary: {t.state})", "", "", human_bytes(t.size), _when(t.modified)]
        for t in temporaries
    ]
    stdout().print(table(str(store.root), ["key", "model", "data", "samples", "size", "created (UTC)"], rows))


@cache.command()
@click.option("--older-than", type=float, metavar="DAYS", help="Remove entries created more than DAYS ago.")
@click.option(
    "--max-size", type=float, metavar="BYTES", help="Then remove the oldest until the cache fits (e.g. 2e9)."
)
@pass_state
def prune(state: State, older_than: float | None, max_size: float | None) -> None:
    """Remove old entries (and temporary entries left by killed runs); --older-than also removes the
    cached answers no run has used for that long."""
    if older_than is None and max_size is None:
        raise click.UsageError("Give --older-than DAYS and/or --max-size BYTES.")
    from tlreg.advisor.memo import Memo

    max_bytes = int(max_size) if max_size else None
    store = _feature_cache()
    removed = store.prune(older_than_days=older_than, max_bytes=max_bytes)
    answers = Memo(store).prune(older_than_days=older_than) if older_than is not None else 0
    size = human_bytes(sum(e.size for e in removed))
    note(f"removed {len(removed)} entries ({size}) and {answers} cached answers", quiet=state.quiet)


@cache.command()
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_state
def clear(state: State, yes: bool) -> None:
    """Remove every entry and every cached answer (both are recomputed when needed)."""
    from tlreg.advisor.memo import Memo

    store = _feature_cache()
    if not yes and not click.confirm(f"Remove every feature cache entry under {store.root}?", err=True):
        raise click.Abort()
    answers = Memo(store).clear()
    note(f"removed {store.clear()} entries and {answers} cached answers", quiet=state.quiet)
