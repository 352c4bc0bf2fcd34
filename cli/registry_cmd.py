"""``tlreg registry``: add, import, list, show, remove, tag models, aliases, lineage, and the history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from tlreg.registry import ModelRecord, Registry

from .alias_cmd import alias
from .lineage_view import family_lines, lineage_tree
from .output import emit_json, human_count, note, stdout, table
from .state import State, pass_state


def _loadable(ref: str, unavailable: dict[str, str] | None) -> list[str]:
    if unavailable is None:
        return []
    return [f"no: {unavailable[ref]}" if ref in unavailable else "yes"]


def _rows(records: list[ModelRecord], unavailable: dict[str, str] | None = None) -> list[list[object]]:
    """Table rows; with ``unavailable`` (offline), a last column says which cannot be loaded now."""
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
            *_loadable(r.ref, unavailable),
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


def _columns(unavailable: dict[str, str] | None) -> list[str]:
    return COLUMNS if unavailable is None else [*COLUMNS, "loadable now"]


def _offline_marks(records: list[ModelRecord]) -> dict[str, str] | None:
    """Offline, which of ``records`` cannot be loaded now and why; online, None (no column)."""
    from tlreg.registry import config

    if not config.hf_offline():
        return None
    from tlreg.registry import availability

    return {u.ref: u.reason for u in availability.split(records)[1]}


@click.group()
def registry() -> None:
    """The models tlreg can recommend."""


registry.add_command(alias)


@registry.command()
@click.argument("ref")
@click.option("--arch", help="timm architecture of a weights file, e.g. resnet18.")
@click.option("--tag", "tags", multiple=True, help="Tag to attach (repeatable).")
@click.option(
    "--parent",
    metavar="REF",
    help="The registered model this one was fine-tuned from (read from a tlreg finetune folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@pass_state
def add(
    state: State, ref: str, arch: str | None, tags: tuple[str, ...], parent: str | None, as_json: bool
) -> None:
    """Add one model: timm:NAME, hf:ORG/NAME[@REV], pkg:NAME, a weights file (--arch) or a model folder.

    A `tlreg finetune` output (OUT or OUT/model) comes in with its parent, run and outcome.
    """
    record, status = state.registry.add_ref(ref, arch=arch, tags=tags, parent=parent)
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
    """Register the models a source offers (timm, hf, bundled, catalog, or a plugin's).

    Offline, it says how many of them cannot be downloaded now (recommend leaves those out).
    """
    from tlreg.registry import config
    from tlreg.registry.hub import offline_reason

    report = state.registry.import_from(source, filters=filters, limit=limit, sort=sort)
    if as_json:
        emit_json(report.to_dict())
        return
    for skip in report.skipped:
        note(f"skipped {skip.name}: {skip.reason}", quiet=state.quiet)
    records = report.added + report.updated + report.unchanged
    note(
        f"{len(report.added)} added, {len(report.updated)} updated (new revision), "
        f"{len(report.unchanged)} already registered, {len(report.skipped)} skipped",
        quiet=state.quiet,
    )
    if report.unavailable:
        loadable = len(records) - len(report.unavailable)
        then = (
            f"`tlreg registry list --available` lists the {loadable} that can be loaded now"
            if loadable
            else "`tlreg registry import bundled` registers models that work offline"
        )
        note(
            f"{len(report.unavailable)} of the {len(records)} cannot be downloaded now ({offline_reason()}) "
            f"and are not in a local cache: recommend leaves them out until they are; {then}.",
            quiet=state.quiet,
        )
    marks = {u.ref: u.reason for u in report.unavailable} if config.hf_offline() else None
    stdout().print(table(None, _columns(marks), _rows(records, marks)))


@registry.command(name="list")
@click.argument("pattern", required=False)
@click.option("--modality", type=click.Choice(["image", "text"]))
@click.option("--source", help="Only models of this source (timm, hf, local, bundled).")
@click.option("--tag", "tags", multiple=True, help="Only models with this tag (repeatable: all of them).")
@click.option("--max-params", type=float, help="Only models with at most this many parameters (e.g. 3e7).")
@click.option(
    "--available", is_flag=True, help="Only models that can be loaded now (offline: those in a local cache)."
)
@click.option("--tree", is_flag=True, help="Draw the lineage: fine-tuned models under their parents.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_(
    state: State,
    pattern: str | None,
    modality: str | None,
    source: str | None,
    tags: tuple[str, ...],
    max_params: float | None,
    available: bool,
    tree: bool,
    as_json: bool,
) -> None:
    """List registered models, optionally matching a glob (e.g. 'convnext*')."""
    filters = {
        "pattern": pattern,
        "modality": modality,
        "source": source,
        "tags": tags,
        "max_params": int(max_params) if max_params else None,
        "available": True if available else None,
    }
    if tree:
        forest = state.registry.tree(**filters)
        if as_json:
            emit_json(forest)
        else:
            stdout().print(lineage_tree(forest))
        return
    records = state.read(lambda fast: fast.models(**filters), lambda registry: registry.list(**filters))
    if as_json:
        emit_json(records)
        return
    marks = _offline_marks(records)
    stdout().print(table(None, _columns(marks), _rows(records, marks)))
    note(f"{len(records)} models", quiet=state.quiet)


@registry.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def show(state: State, ref: str, as_json: bool) -> None:
    """Everything the registry knows about one model: its fields, aliases and family."""
    record, family, aliases = state.read(
        lambda fast: fast.show(ref), lambda registry: _described(registry, ref)
    )
    names = [f"@{name}" for name in aliases]
    if as_json:
        emit_json({**record.model_dump(mode="json"), "aliases": names, "family": family})
        return
    rows = [[k, v] for k, v in record.model_dump(mode="json").items() if v not in (None, {}, [])]
    if names:
        rows.append(["aliases", ", ".join(names)])
    rows += [[k, v] for k, v in family_lines(family)]
    stdout().print(table(record.ref, ["field", "value"], rows))


def _described(registry: Registry, ref: str) -> tuple[ModelRecord, dict[str, Any], list[str]]:
    """(the entry, its family, the names of the aliases pointing at it)."""
    record = registry.get(ref)
    return record, registry.family(record.ref), [a.name for a in registry.aliases() if a.ref == record.ref]


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
    """The registry's own history: every add, remove, tag, revision, parent and alias change, who and when."""
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
    if action in ("alias", "unalias"):
        new = detail.get("new") or {}
        return f"@{detail.get('alias')} -> {new.get('ref') or '(removed)'}"
    if action == "parent":
        return f"parent {detail.get('old') or '-'} -> {detail.get('new')}"
    return str(detail.get("revision") or "")[:12]
