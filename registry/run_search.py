"""Browsing run records: many runs at once, filtered, sorted and paged, for ``tlreg ui``.

A team's registry holds thousands of runs, each with its sample ids, options and ranking as JSON.
A listing needs none of that, so :func:`search` reads only the columns a row shows (and the pick,
joined from the result), filters and sorts in SQL and counts the matches in the same
transaction: a page of 1,000 runs is one query, not 1,000 record loads. :func:`appearances` is
the other way in: every run a model was a candidate of, with the ranking it needs for its rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from .runs import Run, RunCandidate, RunResult

#: sort keys of :func:`search` -> the column they sort on
SORTS = {
    "when": col(Run.created_at),
    "id": col(Run.id),
    "user": col(Run.user),
    "host": col(Run.host),
    "data": col(Run.data_path),
    "samples": col(Run.n_samples),
    "pick": col(RunResult.best_ref),
    "status": col(Run.status),
}
_COLUMNS = (Run.id, Run.created_at, Run.user, Run.host, Run.data_path, Run.fingerprint, Run.n_samples)
_COLUMNS += (Run.status, Run.failure, Run.task, RunResult.best_ref)


@dataclass(frozen=True)
class RunRow:
    """One run as a listing shows it."""

    id: str
    created_at: datetime
    user: str
    host: str
    data_path: str
    fingerprint: str
    samples: int
    status: str
    failure: str | None
    task: str
    pick: str | None

    @classmethod
    def _from(cls, row: Any) -> RunRow:
        values = list(row)
        when = values[1]
        values[1] = when if when.tzinfo else when.replace(tzinfo=UTC)  # SQLite drops the zone
        return cls(*values)


@dataclass(frozen=True)
class RunFilter:
    """Which runs: each field that is set must hold (``fingerprint`` is a prefix, ``pick`` a part of
    the pick's ref, ``until`` excluded)."""

    user: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    fingerprint: str | None = None
    pick: str | None = None
    status: str | None = None


def _utc(when: datetime) -> datetime:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _where(query: Any, where: RunFilter) -> Any:
    if where.user:
        query = query.where(col(Run.user) == where.user)
    if where.since:
        query = query.where(col(Run.created_at) >= _utc(where.since))
    if where.until:
        query = query.where(col(Run.created_at) < _utc(where.until))
    if where.fingerprint:
        query = query.where(col(Run.fingerprint).startswith(where.fingerprint, autoescape=True))
    if where.pick:
        query = query.where(col(RunResult.best_ref).contains(where.pick, autoescape=True))
    if where.status:
        query = query.where(col(Run.status) == where.status)
    return query


def search(
    engine: Engine,
    where: RunFilter = RunFilter(),  # frozen: a shared default is safe
    *,
    sort: str = "when",
    descending: bool = True,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[RunRow], int]:
    """(the runs on this page, how many runs match in all); ties sort newest first."""
    key = SORTS[sort]
    joined = lambda q: q.join(RunResult, col(RunResult.run_id) == col(Run.id), isouter=True)  # noqa: E731
    query = _where(joined(select(*_COLUMNS)), where)
    order = [key.desc() if descending else key.asc()]
    if sort != "when":
        order.append(col(Run.created_at).desc())
    query = query.order_by(*order, col(Run.id).desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with Session(engine) as session:
        rows = [RunRow._from(r) for r in session.exec(query).all()]
        total = session.exec(_where(joined(select(func.count(col(Run.id)))), where)).one()
    return rows, total


def users(engine: Engine) -> list[str]:
    """Everyone who ran a recommendation, for a filter's choices."""
    with Session(engine) as session:
        return list(session.exec(select(Run.user).distinct().order_by(col(Run.user))).all())


def appearances(engine: Engine, ref: str) -> list[tuple[RunRow, RunCandidate, list[dict[str, Any]]]]:
    """Every run ``ref`` was a candidate of (not as a baseline), newest first: (the run, its candidate
    row, the run's recorded ranking, empty when the run has no result)."""
    query = (
        select(*_COLUMNS, RunCandidate, RunResult.ranking)
        .join(RunCandidate, col(RunCandidate.run_id) == col(Run.id))
        .join(RunResult, col(RunResult.run_id) == col(Run.id), isouter=True)
        .where(col(RunCandidate.ref) == ref, col(RunCandidate.baseline_of).is_(None))
        .order_by(col(Run.created_at).desc(), col(Run.id).desc())
    )
    with Session(engine) as session:
        return [(RunRow._from(r[: len(_COLUMNS)]), r[-2], r[-1] or []) for r in session.exec(query).all()]
