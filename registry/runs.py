"""Recommendation runs: the audit record of every decision, in the registry database.

A run is written as it happens: the :class:`Run` row first (inputs, environment, status
``running``), then one :class:`RunCandidate` per model tried, one :class:`RunScore` per
estimator score, and finally one :class:`RunResult` (ranking, pick, warnings) as the status
becomes ``done``. Nothing is ever rewritten except the status (and its time and reason), so a
record can be trusted months later. A run whose process died (SIGKILL, power loss) stays
``running`` until the next tlreg start on that host finds its process gone and marks it failed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Engine
from sqlmodel import Field, Session, col, select

from . import config
from .db import write_session
from .errors import DatabaseError, UnknownRunError, close_matches
from .models import TlregModel, utcnow

STATUSES = ("running", "done", "failed")
#: a process that started this long after its run was opened cannot be the run's (its pid was reused)
PID_START_SLACK = timedelta(seconds=2)


def new_run_id() -> str:
    """Sortable by time, unique without coordination: ``20261125-024100-3f9a2c``."""
    return utcnow().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class Run(TlregModel, table=True):
    __tablename__ = "run"

    id: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
    status: str = Field(default="running", index=True)
    failure: str | None = None
    user: str = ""
    host: str = ""
    pid: int = 0
    command: str = ""
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    environment: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    data_path: str = ""
    fingerprint: str = Field(default="", index=True)
    modality: str = ""
    task: str = ""
    n_samples: int = 0
    classes: list[str] | None = Field(default=None, sa_column=Column(JSON))
    sample_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class RunCandidate(TlregModel, table=True):
    __tablename__ = "run_candidate"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    ref: str
    revision: str | None = None
    baseline_of: str | None = Field(
        default=None, description="for a baseline row: the candidate it is the baseline of"
    )
    cache_key: str | None = None
    params: int | None = Field(default=None, sa_type=BigInteger)
    feature_dim: int | None = None
    seconds: float | None = None
    samples_per_s: float | None = None
    from_cache: bool = False
    status: str = "ok"  # ok | skipped (could not be embedded) | dropped (by successive halving)
    reason: str | None = None


class RunScore(TlregModel, table=True):
    __tablename__ = "run_score"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    ref: str
    estimator: str
    value: float | None = None
    seconds: float = 0.0
    error: str | None = None


class RunResult(TlregModel, table=True):
    __tablename__ = "run_result"

    run_id: str = Field(foreign_key="run.id", primary_key=True)
    best_ref: str | None = None
    reason: str = ""
    ranking: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    skipped: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def _aware(when: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; tlreg stores UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _process_started(pid: int) -> datetime | None:
    """When process ``pid`` started (Linux ``/proc``); None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line[:6] == "btime "
        )
        return datetime.fromtimestamp(boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _process_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def _run_process_alive(run: Run) -> bool:
    """Is the process that opened ``run`` (same host) still alive?

    ``kill(pid, 0)`` alone is not enough: a killed process stays a zombie until its parent reaps
    it, and its pid can be reused by an unrelated process later. Where ``/proc`` says when the
    process with that pid started, one that started after the run was opened is not the run's.
    """
    if run.pid <= 0:
        return False
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    if _process_state(run.pid) in ("Z", "X"):
        return False
    started = _process_started(run.pid)
    return started is None or started <= _aware(run.created_at) + PID_START_SLACK


class RunStore:
    """Append-only access to run records.

    A record is written while its run is ``running``; once the run is ``done`` or ``failed``
    nothing in it changes: :meth:`finish` and :meth:`fail` on a closed run are no-ops (they
    return False), and :meth:`add` refuses rows for it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, run: Run) -> Run:
        run.user, run.host, run.pid = config.user(), config.host(), os.getpid()
        with write_session(self.engine) as session:
            session.add(run)
        return run

    def add(self, *rows: RunCandidate | RunScore) -> None:
        with write_session(self.engine) as session:
            for run_id in {r.run_id for r in rows}:
                run = session.get(Run, run_id)
                if run is None or run.status != "running":
                    raise DatabaseError(
                        f"Run {run_id} is {run.status if run else 'unknown'}: its record is closed "
                        "and cannot be added to.",
                        hint="Run records are append-only while the run is running.",
                    )
            session.add_all(rows)

    def finish(self, result: RunResult) -> bool:
        """Close a running run with its result; False (and nothing written) if it was already closed."""
        with write_session(self.engine) as session:
            if not self._set_status(session, result.run_id, "done", None):
                return False
            session.add(result)
            return True

    def fail(self, run_id: str, reason: str) -> bool:
        """Mark a running run failed; False (and nothing written) if it was already closed."""
        with write_session(self.engine) as session:
            return self._set_status(session, run_id, "failed", reason)

    @staticmethod
    def _set_status(session: Session, run_id: str, status: str, failure: str | None) -> bool:
        run = session.get(Run, run_id)
        if run is None:
            raise UnknownRunError(f"No run {run_id!r}.", hint="See `tlreg runs list`.")
        if run.status != "running":
            return False  # a finished record is never rewritten
        run.status, run.failure, run.finished_at = status, failure, utcnow()
        session.add(run)
        return True

    def mark_abandoned(self) -> list[str]:
        """Runs left ``running`` by a process of this host that no longer exists: marked failed.

        Called by every entry point that opens or reads runs, so a run killed mid-way (SIGKILL,
        power loss) is found on the next start and never looks as if it were still going, or done.
        Reads first and takes the write lock only when there is something to mark.
        """
        with Session(self.engine) as session:
            running = session.exec(
                select(Run).where(Run.status == "running", Run.host == config.host())
            ).all()
            stale = [r for r in running if r.pid != os.getpid() and not _run_process_alive(r)]
        if not stale:
            return []
        marked = []
        with write_session(self.engine) as session:
            for run in stale:
                reason = f"abandoned: the process (pid {run.pid} on {run.host}) ended without finishing"
                if self._set_status(session, run.id, "failed", reason):
                    marked.append(run.id)
        return marked

    def resolve(self, run_id: str) -> str:
        """The full id of the run named by ``run_id`` or by a unique prefix of it."""
        with Session(self.engine) as session:
            return self._resolve(session, run_id)

    @staticmethod
    def _resolve(session: Session, run_id: str) -> str:
        if run_id and session.get(Run, run_id) is not None:
            return run_id
        matches = (
            session.exec(select(Run.id).where(col(Run.id).startswith(run_id)).limit(6)).all()
            if run_id
            else []
        )
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise UnknownRunError(
                f"Run id prefix {run_id!r} matches several runs ({shown}).",
                hint="Give more characters.",
                close=matches[:5],
            )
        recent = session.exec(select(Run.id).order_by(col(Run.created_at).desc()).limit(50)).all()
        close = close_matches(run_id, recent)
        raise UnknownRunError(
            f"No run with id {run_id!r}.",
            hint=f"Did you mean: {', '.join(close)}?" if close else "See `tlreg runs list`.",
            close=close,
        )

    def get(self, run_id: str) -> tuple[Run, list[RunCandidate], list[RunScore], RunResult | None]:
        """A run's whole record; ``run_id`` may be a unique prefix."""
        with Session(self.engine) as session:
            run = session.get(Run, self._resolve(session, run_id))
            candidates = session.exec(
                select(RunCandidate).where(RunCandidate.run_id == run.id).order_by(RunCandidate.id)
            ).all()
            scores = session.exec(
                select(RunScore).where(RunScore.run_id == run.id).order_by(RunScore.id)
            ).all()
            return run, list(candidates), list(scores), session.get(RunResult, run.id)

    def list(self, *, since: datetime | None = None, limit: int | None = None) -> list[Run]:
        """Runs, newest first; those created at or after ``since`` (UTC when it has no zone)."""
        return [run for run, _ in self.summaries(since=since, limit=limit)]

    def summaries(
        self, *, since: datetime | None = None, limit: int | None = None
    ) -> list[tuple[Run, str | None]]:
        """(run, its pick or None), newest first: what ``tlreg runs list`` shows, in one query."""
        with Session(self.engine) as session:
            query = (
                select(Run, RunResult.best_ref)
                .join(RunResult, col(RunResult.run_id) == col(Run.id), isouter=True)
                .order_by(col(Run.created_at).desc(), col(Run.id).desc())
            )
            if since:
                query = query.where(col(Run.created_at) >= _aware(since).astimezone(UTC))
            if limit:
                query = query.limit(limit)
            return [(run, best) for run, best in session.exec(query).all()]

    def measured_throughput(self, cache_keys: Iterable[str]) -> dict[str, tuple[float, str]]:
        """For feature-cache keys: the most recent measured samples/s and the run that measured it.

        A candidate read from the cache has no throughput of its own; the run that embedded the same
        entry measured it (same model, revision, preprocessing and data sample).
        """
        keys = [k for k in set(cache_keys) if k]
        if not keys:
            return {}
        with Session(self.engine) as session:
            rows = session.exec(
                select(RunCandidate.cache_key, RunCandidate.samples_per_s, RunCandidate.run_id)
                .where(col(RunCandidate.cache_key).in_(keys), col(RunCandidate.samples_per_s).is_not(None))
                .order_by(col(RunCandidate.id))
            ).all()
        return {key: (speed, run_id) for key, speed, run_id in rows}
