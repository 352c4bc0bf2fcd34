"""What a reviewer browses (``tlreg ui``): runs filtered and sorted, a model's whole story, the
registry at a glance, and "would we pick it again?" without writing anything.

Each function takes a :class:`~tlreg.registry.Registry` (the web page opens it read-only) and
returns plain data for a page to lay out; nothing here knows about HTML. The filters come in as
the strings of a URL's query, are checked here once (a bad date is one clear error, as on the
command line), and go back out as the same strings, so every page has a stable URL to paste into a
review.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tlreg.registry import OutcomeStore, Registry, RunStore
from tlreg.registry.errors import BadInputError, UnknownModelError
from tlreg.registry.models import Alias, Event, ModelRecord
from tlreg.registry.outcomes import FinetuneOutcome
from tlreg.registry.run_search import SORTS, RunFilter, RunRow, appearances, search, users
from tlreg.registry.runs import STATUSES

from ..cache import FeatureCache, OverlayCache
from .records import RunRecord, load_run, parse_since
from .verify import VerifyResult, verify_run

#: runs on one page of the list
PAGE_SIZE = 200
#: other runs offered for a side-by-side comparison on a run's page
COMPARE_CHOICES = 30


@dataclass(frozen=True)
class RunQuery:
    """The runs list's filters, sort and page, as the URL's query gives them (all strings)."""

    user: str = ""
    since: str = ""
    until: str = ""
    fingerprint: str = ""
    pick: str = ""
    status: str = ""
    sort: str = "when"
    order: str = "desc"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> RunQuery:
        """From a URL's query; unknown keys are ignored, bad values are one :class:`BadInputError`."""
        text = {k: str(params.get(k, "")).strip() for k in ("user", "since", "until", "fingerprint", "pick")}
        status, sort = params.get("status", "").strip(), params.get("sort", "").strip() or "when"
        order = params.get("order", "").strip() or default_order(sort)
        if status and status not in STATUSES:
            raise BadInputError(f"Unknown status {status!r}.", hint=f"Use one of: {', '.join(STATUSES)}.")
        if sort not in SORTS:
            raise BadInputError(f"Cannot sort by {sort!r}.", hint=f"Sort by one of: {', '.join(SORTS)}.")
        if order not in ("asc", "desc"):
            raise BadInputError(f"Unknown order {order!r}.", hint="Use asc or desc.")
        page = params.get("page", "").strip() or "1"
        if not page.isdigit() or int(page) < 1:
            raise BadInputError(f"Page {page!r} is not a page number.", hint="Pages count from 1.")
        query = cls(**text, status=status, sort=sort, order=order, page=int(page))
        query.where()  # the dates are checked now, whatever page shows them
        return query

    def where(self) -> RunFilter:
        return RunFilter(
            user=self.user or None,
            since=parse_since(self.since) if self.since else None,
            until=_until(self.until) if self.until else None,
            fingerprint=self.fingerprint or None,
            pick=self.pick or None,
            status=self.status or None,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string's items (defaults left out) with ``changes`` applied: for links."""
        values = asdict(replace(self, **changes))
        default = {**asdict(RunQuery()), "order": default_order(values["sort"])}
        return {k: str(v) for k, v in values.items() if v != default[k]}

    @property
    def filtered(self) -> bool:
        return any((self.user, self.since, self.until, self.fingerprint, self.pick, self.status))


def default_order(sort: str) -> str:
    """Newest and largest first; names and words in alphabetical order."""
    return "desc" if sort in ("when", "samples") else "asc"


def _until(text: str) -> datetime:
    """``until`` includes the day it names: ``2026-11-30`` means before 2026-12-01 00:00 UTC."""
    when = parse_since(text)
    if len(text) == len("2026-11-30"):
        when += timedelta(days=1)
    return when


@dataclass
class RunPage:
    """One page of the runs list."""

    query: RunQuery
    rows: list[RunRow]
    total: int
    pages: int
    users: list[str]
    statuses: tuple[str, ...] = STATUSES


def find_runs(registry: Registry, query: RunQuery, *, page_size: int = PAGE_SIZE) -> RunPage:
    rows, total = search(
        registry.engine,
        query.where(),
        sort=query.sort,
        descending=query.order == "desc",
        limit=page_size,
        offset=(query.page - 1) * page_size,
    )
    pages = max(1, math.ceil(total / page_size))
    return RunPage(query, rows, total, pages, users(registry.engine))


@dataclass
class RunView:
    """One run, as its page shows it: the record, the throughputs its report needs, and the runs
    it can be compared with (same data first, then the most recent)."""

    record: RunRecord
    throughput: dict[str, tuple[float, str]]
    compare: list[RunRow]


def view_run(registry: Registry, run_id: str) -> RunView:
    record = load_run(run_id, registry=registry)
    throughput = RunStore(registry.engine).measured_throughput(c.cache_key for c in record.candidates)
    same, _ = search(registry.engine, RunFilter(fingerprint=record.run.fingerprint), limit=COMPARE_CHOICES)
    recent, _ = search(registry.engine, limit=COMPARE_CHOICES)
    choices = list({r.id: r for r in [*same, *recent] if r.id != record.id}.values())
    return RunView(record, throughput, choices[:COMPARE_CHOICES])


@dataclass
class ModelRun:
    """A run a model was a candidate of, and how it did there."""

    run: RunRow
    status: str
    reason: str | None
    rank: int | None
    of: int
    combined: float | None
    p_best: float | None
    negative_transfer: bool | None
    picked: bool


@dataclass
class ModelView:
    """A model's page: its entry (None once removed), how it came to be and what came of it."""

    ref: str
    record: ModelRecord | None
    missing: str | None
    family: dict[str, Any]
    aliases: list[Alias]
    events: list[Event]
    runs: list[ModelRun]
    outcomes: list[FinetuneOutcome]


def view_model(registry: Registry, ref: str) -> ModelView:
    """The model ``ref`` (or ``@alias``); one that was removed still shows its runs and its history.
    Raises :class:`UnknownModelError` (with close matches) for a ref tlreg never saw."""
    try:
        record, missing = registry.get(ref), None
    except UnknownModelError as exc:
        if ref.startswith("@") or not (registry.events(ref) or appearances(registry.engine, ref)):
            raise
        record, missing = None, str(exc)
    name = record.ref if record else ref
    runs = []
    for row, cand, ranking in appearances(registry.engine, name):
        mine = next((r for r in ranking if r.get("ref") == name and r.get("baseline_of") is None), {})
        ranked = [r for r in ranking if r.get("baseline_of") is None]
        runs.append(
            ModelRun(
                run=row,
                status=cand.status,
                reason=cand.reason,
                rank=mine.get("rank"),
                of=len(ranked),
                combined=mine.get("combined"),
                p_best=mine.get("p_best"),
                negative_transfer=mine.get("negative_transfer"),
                picked=row.pick == name,
            )
        )
    return ModelView(
        ref=name,
        record=record,
        missing=missing,
        family=registry.family(name) if record else {},
        aliases=[a for a in registry.aliases() if a.ref == name],
        events=registry.events(name) if record or missing else [],
        runs=runs,
        outcomes=OutcomeStore(registry.engine).outcomes(ref=name),
    )


@dataclass
class RegistryView:
    """The registry at a glance: its entries (those with ``tag`` only, when given), every tag with
    how many entries carry it, the aliases now and every move they made, and the lineage forest."""

    tag: str
    entries: list[ModelRecord]
    tags: list[tuple[str, int]]
    aliases: list[Alias]
    moves: list[Any]
    forest: list[dict[str, Any]] = field(default_factory=list)


def view_registry(registry: Registry, *, tag: str = "") -> RegistryView:
    everything = registry.list()
    counts = Counter(t for r in everything for t in r.tags)
    entries = [r for r in everything if tag in r.tags] if tag else everything
    return RegistryView(
        tag=tag,
        entries=entries,
        tags=sorted(counts.items()),
        aliases=registry.aliases(),
        moves=list(reversed(registry.alias_history())),
        forest=[n for n in registry.tree() if n["children"] or n.get("parent_ref")],
    )


def verify_without_writing(registry: Registry, run_id: str) -> VerifyResult:
    """``tlreg runs verify RUN`` that writes nothing anywhere: the registry is read-only, features
    come from the shared cache when there, and what must be embedded again goes to a temporary
    folder dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="tlreg-ui-verify-") as tmp:
        return verify_run(run_id, registry=registry, cache=OverlayCache(tmp, shared=FeatureCache()))
