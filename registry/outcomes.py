"""What happened after a recommendation: fine-tune outcomes and dataset signatures.

Fine-tune outcomes (from ``tlreg finetune`` or imported from a CSV) say how well a model really
did on a dataset; dataset signatures (a fixed probe model's feature statistics, one vector per
data fingerprint) say which datasets resemble each other. Together they let the registry learn
from its own history: for a new dataset, the nearest past datasets and how each model did on them
become one more signal for the ranking. Rows are only added, except when a user removes an
outcome or a dataset (``tlreg history remove``: a wrong import, a dataset that must be forgotten),
which is recorded as a ``forget`` event with who, when and what the row said.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Engine
from sqlmodel import Field, Session, col, select

from . import config
from .db import write_session
from .errors import BadInputError
from .models import Event, TlregModel, utcnow

MODES = ("linear", "partial", "full", "imported")


class FinetuneOutcome(TlregModel, table=True):
    __tablename__ = "finetune_outcome"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    run_id: str | None = Field(default=None, foreign_key="run.id", index=True)
    ref: str = Field(index=True)
    revision: str | None = None
    fingerprint: str = Field(index=True, description="data fingerprint of the fine-tuning data")
    dataset: str | None = Field(default=None, description="a name or path, for people reading the history")
    mode: str = "full"
    budget: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    val_accuracy: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = Field(default="finetune", description="finetune (tlreg finetune) or import (a CSV)")
    output_dir: str | None = None
    user: str = ""
    host: str = ""


class DatasetSignature(TlregModel, table=True):
    __tablename__ = "dataset_signature"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(index=True)
    probe: str = Field(description="the probe model's ref@revision the signature was computed with")
    created_at: datetime = Field(default_factory=utcnow)
    modality: str = ""
    n_samples: int = 0
    data_path: str = ""
    vector: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class OutcomeStore:
    """Append-only access to fine-tune outcomes and dataset signatures."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, outcome: FinetuneOutcome) -> FinetuneOutcome:
        outcome.user, outcome.host = outcome.user or config.user(), outcome.host or config.host()
        with write_session(self.engine) as session:
            session.add(outcome)
        return outcome

    def outcomes(
        self, *, fingerprint: str | None = None, run_id: str | None = None, ref: str | None = None
    ) -> list[FinetuneOutcome]:
        with Session(self.engine) as session:
            query = select(FinetuneOutcome).order_by(col(FinetuneOutcome.id))
            if fingerprint:
                query = query.where(FinetuneOutcome.fingerprint == fingerprint)
            if run_id:
                query = query.where(FinetuneOutcome.run_id == run_id)
            if ref:
                query = query.where(FinetuneOutcome.ref == ref)
            return list(session.exec(query).all())

    def outcomes_for_dataset(self, fingerprint: str) -> list[FinetuneOutcome]:
        """Outcomes on the dataset a signature describes: recorded with that data fingerprint, or
        linked to a run that sampled it (a fine-tune trains on the whole data, whose fingerprint
        differs from the run's sample's when the run capped the sample)."""
        from .runs import Run

        with Session(self.engine) as session:
            run_ids = select(Run.id).where(Run.fingerprint == fingerprint)
            query = select(FinetuneOutcome).where(
                (FinetuneOutcome.fingerprint == fingerprint) | col(FinetuneOutcome.run_id).in_(run_ids)
            )
            return list(session.exec(query.order_by(col(FinetuneOutcome.id))).all())

    def add_signature(self, signature: DatasetSignature) -> DatasetSignature:
        """Store a signature unless this fingerprint already has one from the same probe."""
        with write_session(self.engine) as session:
            existing = session.exec(
                select(DatasetSignature).where(
                    DatasetSignature.fingerprint == signature.fingerprint,
                    DatasetSignature.probe == signature.probe,
                )
            ).first()
            if existing is not None:
                return existing
            session.add(signature)
        return signature

    def resolve_fingerprint(self, prefix: str) -> str:
        """The one data fingerprint of an outcome or signature that starts with ``prefix`` (8+ characters)."""
        prefix = prefix.strip().lower()
        if len(prefix) < 8:
            raise BadInputError(
                f"--dataset {prefix!r} is too short to name one dataset.",
                hint="Give at least 8 characters of the fingerprint (tlreg history list shows 12).",
            )
        with Session(self.engine) as session:
            found = set(
                session.exec(
                    select(FinetuneOutcome.fingerprint).where(
                        col(FinetuneOutcome.fingerprint).startswith(prefix)
                    )
                ).all()
            )
            found |= set(
                session.exec(
                    select(DatasetSignature.fingerprint).where(
                        col(DatasetSignature.fingerprint).startswith(prefix)
                    )
                ).all()
            )
        if len(found) != 1:
            what = "No recorded dataset has" if not found else f"{len(found)} datasets have"
            raise BadInputError(
                f"{what} a fingerprint starting with {prefix}.",
                hint="tlreg history list shows the datasets (the data column); give more characters.",
            )
        return found.pop()

    def remove(
        self, *, ids: Sequence[int] = (), fingerprint: str | None = None
    ) -> tuple[list[FinetuneOutcome], list[DatasetSignature]]:
        """Forget outcomes ``ids``, and with ``fingerprint`` every outcome and signature of that
        dataset, in one transaction that also records a ``forget`` event per row removed. An id
        that does not exist is refused before anything is removed."""
        with write_session(self.engine) as session:
            query = select(FinetuneOutcome).where(col(FinetuneOutcome.id).in_(list(ids)))
            if fingerprint:
                query = select(FinetuneOutcome).where(
                    col(FinetuneOutcome.id).in_(list(ids)) | (FinetuneOutcome.fingerprint == fingerprint)
                )
            outcomes = list(session.exec(query.order_by(col(FinetuneOutcome.id))).all())
            missing = sorted(set(ids) - {o.id for o in outcomes})
            if missing:
                raise BadInputError(
                    f"No fine-tune outcome with id {', '.join(map(str, missing))}; nothing was removed.",
                    hint="tlreg history list shows the ids.",
                )
            signatures = []
            if fingerprint:
                signatures = list(
                    session.exec(
                        select(DatasetSignature).where(DatasetSignature.fingerprint == fingerprint)
                    ).all()
                )
            who = {"user": config.user(), "host": config.host(), "action": "forget"}
            for o in outcomes:
                detail = {"outcome_id": o.id, "fingerprint": o.fingerprint, "mode": o.mode}
                detail |= {"val_accuracy": o.val_accuracy, "run_id": o.run_id, "source": o.source}
                session.add(Event(**who, ref=o.ref, detail=detail))
                session.delete(o)
            for sig in signatures:
                detail = {"signature_of": sig.fingerprint, "probe": sig.probe, "data_path": sig.data_path}
                session.add(Event(**who, ref=f"data:{sig.fingerprint}", detail=detail))
                session.delete(sig)
        return outcomes, signatures

    def signatures(self, *, probe: str | None = None) -> list[DatasetSignature]:
        with Session(self.engine) as session:
            query = select(DatasetSignature).order_by(col(DatasetSignature.id))
            if probe:
                query = query.where(DatasetSignature.probe == probe)
            return list(session.exec(query).all())
