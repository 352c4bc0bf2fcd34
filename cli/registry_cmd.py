"""``tlreg registry``: add, import, list, show, remove, tag models, and read the history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from tlreg.registry import ModelRecord

from .output import emit_json, human_count, note, stdout, table
from .state import State, pass_state


def _rows(records: list[ModelRecord]) -> list[list[object]]:
    return [
        [
            r.ref,
            r.modality,
            r.architecture,
            human_count(r.params),
            r.feature_dim,
            f"{r.imagenet_top1:.1f}" if r.imagenet_top1 else None,
            (r.revision or "unpinned")[:12],
            ", ".join(r.tags),
        ]
        for r in records
    ]


COLUMNS = ["ref", "modality", "architecture", "params", "dim", "top-1", "revision", "tags"]


class SourceName(click.Choice):
    """The names of the installed sources, plugins included, read when the command runs."""

    def __init__(self) -> None:
        super().__init__([])

    @property
    def choices(self) -> Sequence[str]:
        from tlreg.registry.sources import source_names

        return source_names()

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        pass  # click sets them in __init__; they are read from the installed packages instead


@click.group()
def registry() -> None:
    """The models tlreg can recommend."""


@registry.command()
@click.argument("ref")
@click.option("--arch", help="timm architecture of a weights file, e.g. resnet18.")
@click.option("--tag", "tags", multiple=True, help="Tag to attach (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@pass_state
def add(state: State, ref: str, arch: str | None, tags: tuple[str, ...], as_json: bool) -> None:
    """Add one model: timm:NAME, hf:ORG/NAME[@REV], pkg:NAME, a weights file (--arch) or a model folder."""
    record, status = state.registry.add_ref(ref, arch=arch, tags=tags)
    if as_json:
        emit_json({"status": status, "model": record})
        return
    note(f"{status}: {record.ref} @ {record.revision or 'unpinned'}", quiet=state.quiet)
    stdout().print(table(None, COLUMNS, _rows([record])))


@registry.command(name="import")
@click.argument("source", type=SourceName())
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="timm: a name glob ('convnext*'); hf: a Hub filter (library, tag, task); repeatable.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many models.")
@click.option("--sort", help="hf: sort the Hub listing (downloads, likes, created_at, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print what was added, kept and skipped as JSON.")
@pass_state
def import_(
    state: State, source: str, filters: tuple[str, ...], limit: int | None, sort: str | None, as_json: bool
) -> None:
    """Register the models a source offers (timm, hf, bundled, catalog, or a plugin's)."""
    report = state.registry.import_from(source, filters=filters, limit=limit, sort=sort)
    if as_json:
        emit_json(report.to_dict())
        return
    for skip in report.skipped:
        note(f"skipped {skip.name}: {skip.reason}", quiet=state.quiet)
    note(
        f"{len(report.added)} added, {len(report.updated)} updated (new revision), "
        f"{len(report.unchanged)} already registered, {len(report.skipped)} skipped",
        quiet=state.quiet,
    )
    stdout().print(table(None, COLUMNS, _rows(report.added + report.updated + report.unchanged)))


@registry.command(name="list")
@click.argument("pattern", required=False)
@click.option("--modality", type=click.Choice(["image", "text"]))
@click.option("--source", help="Only models of this source (timm, hf, local, bundled).")
@click.option("--tag", "tags", multiple=True, help="Only models with this tag (repeatable: all of them).")
@click.option("--max-params", type=float, help="Only models with at most this many parameters (e.g. 3e7).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_(
    state: State,
    pattern: str | None,
    modality: str | None,
    source: str | None,
    tags: tuple[str, ...],
    max_params: float | None,
    as_json: bool,
) -> None:
    """List registered models, optionally matching a glob (e.g. 'convnext*')."""
    records = state.registry.list(
        pattern=pattern,
        modality=modality,
        source=source,
        tags=tags,
        max_params=int(max_params) if max_params else None,
    )
    if as_json:
        emit_json(records)
        return
    stdout().print(table(None, COLUMNS, _rows(records)))
    note(f"{len(records)} models", quiet=state.quiet)


@registry.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def show(state: State, ref: str, as_json: bool) -> None:
    """Everything the registry knows about one model."""
    record = state.registry.get(ref)
    if as_json:
        emit_json(record)
        return
    rows = [[k, v] for k, v in record.model_dump(mode="json").items() if v not in (None, {}, [])]
    stdout().print(table(record.ref, ["field", "value"], rows))


@registry.command()
@click.argument("ref")
@pass_state
def remove(state: State, ref: str) -> None:
    """Remove a model from the registry (its history is kept)."""
    record = state.registry.remove(ref)
    note(f"removed {record.ref}", quiet=state.quiet)


@registry.command()
@click.argument("ref")
@click.argument("tags", nargs=-1)
@click.option("--remove", "untag", multiple=True, help="Tag to take off (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def tag(state: State, ref: str, tags: tuple[str, ...], untag: tuple[str, ...], as_json: bool) -> None:
    """Add tags to a model (and take some off with --remove)."""
    record = state.registry.tag(ref, add=tags, remove=untag)
    if as_json:
        emit_json(record)
        return
    stdout().print(f"{record.ref}: {', '.join(record.tags) or '(no tags)'}")


@registry.command()
@click.argument("ref", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def history(state: State, ref: str | None, as_json: bool) -> None:
    """The registry's own history: every add, remove, tag and revision change, who and when."""
    events = state.registry.events(ref)
    if as_json:
        emit_json(events)
        return
    rows = [
        [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.user, e.host, e.action, e.ref, _summary(e.action, e.detail)]
        for e in events
    ]
    stdout().print(table(None, ["when (UTC)", "who", "host", "what", "ref", "detail"], rows))


def _summary(action: str, detail: dict[str, object]) -> str:
    if action == "revision":
        return f"{str(detail.get('old') or 'unpinned')[:12]} -> {str(detail.get('new'))[:12]}"
    if action in ("tag", "untag"):
        return ", ".join(map(str, detail.get("tags", [])))
    return str(detail.get("revision") or "")[:12]
