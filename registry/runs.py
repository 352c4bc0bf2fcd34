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
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Engine
from sqlmodel import Field, Session, col, select

from . import config
from .db import write_session
from .errors import UnknownModelError
from .models import TlregModel, utcnow

STATUSES = ("running", "done", "failed")


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
    params: int | None = None
    feature_dim: int | None = None
    seconds: float | None = None
    samples_per_s: float | None = None
    from_cache: bool = False
    status: str = "ok"
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Append-only access to run records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, run: Run) -> Run:
        run.user, run.host, run.pid = config.user(), config.host(), os.getpid()
        with write_session(self.engine) as session:
            session.add(run)
        return run

    def add(self, *rows: RunCandidate | RunScore) -> None:
        with write_session(self.engine) as session:
            session.add_all(rows)

    def finish(self, result: RunResult) -> None:
        with write_session(self.engine) as session:
            session.add(result)
            self._set_status(session, result.run_id, "done", None)

    def fail(self, run_id: str, reason: str) -> None:
        with write_session(self.engine) as session:
            self._set_status(session, run_id, "failed", reason)

    @staticmethod
    def _set_status(session: Session, run_id: str, status: str, failure: str | None) -> None:
        run = session.get(Run, run_id)
        if run is None:
            raise UnknownModelError(run_id, what="a run id")
        if run.status != "running":
            return  # a finished record is never rewritten
        run.status, run.failure, run.finished_at = status, failure, utcnow()
        session.add(run)

    def mark_abandoned(self) -> list[str]:
        """Runs left ``running`` by a process of this host that no longer exists: marked failed."""
        with write_session(self.engine) as session:
            stale = [
                r
                for r in session.exec(select(Run).where(Run.status == "running", Run.host == config.host()))
                if r.pid != os.getpid() and not _pid_alive(r.pid)
            ]
            for run in stale:
                self._set_status(
                    session, run.id, "failed", f"the process (pid {run.pid}) ended without finishing"
                )
            return [r.id for r in stale]

    def get(self, run_id: str) -> tuple[Run, list[RunCandidate], list[RunScore], RunResult | None]:
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is None:
                matches = session.exec(select(Run).where(col(Run.id).startswith(run_id))).all()
                if len(matches) != 1:
                    known = session.exec(select(Run.id).order_by(col(Run.created_at).desc()).limit(50)).all()
                    raise UnknownModelError(run_id, known=known, what="a run id")
                run = matches[0]
            candidates = session.exec(
                select(RunCandidate).where(RunCandidate.run_id == run.id).order_by(RunCandidate.id)
            ).all()
            scores = session.exec(
                select(RunScore).where(RunScore.run_id == run.id).order_by(RunScore.id)
            ).all()
            return run, list(candidates), list(scores), session.get(RunResult, run.id)

    def list(self, *, since: datetime | None = None) -> list[Run]:
        with Session(self.engine) as session:
            query = select(Run).order_by(col(Run.created_at).desc())
            if since:
                query = query.where(Run.created_at >= since)
            return list(session.exec(query).all())
