"""The registry's record types, in SQLModel's Base / table / Create / Public split.

``ModelSpec`` is what a source says about a model (and what ``tlreg registry add`` stores);
``ModelEntry`` is its table row; ``ModelRecord`` is what listings and ``--json`` show. Tags live
in their own table so that they can be queried and changed one at a time, and ``Event`` is the
append-only log of every change to the registry (who did what, when).

The tables use tlreg's own SQLAlchemy registry, so their metadata never mixes with another
SQLModel application's in the same process.
"""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import field_validator
from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlalchemy.orm import registry as sa_registry
from sqlmodel import Field, SQLModel

Modality = Literal["image", "text"]
MODALITIES: tuple[str, ...] = ("image", "text")

mapper_registry = sa_registry()
metadata = mapper_registry.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


class TlregModel(SQLModel, registry=mapper_registry):
    """Base class binding every tlreg table to ``metadata``."""

    def model_dump(self, **options: Any) -> dict[str, Any]:
        """The fields in their declared order. A row SQLAlchemy loaded lists them in the order it set
        them, which changes from process to process (string hashing), and ``--json`` or an export
        would too."""
        dumped = super().model_dump(**options)
        return {**{k: dumped[k] for k in type(self).model_fields if k in dumped}, **dumped}


class ModelBase(TlregModel):
    ref: str = Field(index=True, unique=True, description="canonical reference, e.g. timm:resnet50.a1_in1k")
    source: str = Field(index=True, description="the source that loads it: timm, hf, local, bundled")
    architecture: str
    revision: str | None = Field(default=None, description="commit sha or content hash; None until pinned")
    modality: str = Field(index=True, description="image or text")
    task: str | None = Field(default=None, description="what the source head does, e.g. image-classification")
    num_classes: int | None = Field(default=None, description="classes of the source head; None if no head")
    params: int | None = Field(default=None, sa_type=BigInteger, description="parameters (can exceed 2**31)")
    feature_dim: int | None = None
    preprocessing: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    license: str | None = None
    pretrain_dataset: str | None = None
    imagenet_top1: float | None = Field(default=None, description="published ImageNet-1k top-1, percent")
    origin: str | None = Field(default=None, description="how it came in: add, import timm, catalog, ...")
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    parent_ref: str | None = Field(default=None, index=True, description="the model it was fine-tuned from")
    parent_revision: str | None = Field(default=None, description="the parent's revision it was trained from")
    finetune_run_id: str | None = Field(default=None, description="the recommendation run it came from")
    finetune_outcome_id: int | None = Field(default=None, description="the fine-tune outcome that made it")


class ModelEntry(ModelBase, table=True):
    __tablename__ = "model"

    id: int | None = Field(default=None, primary_key=True)
    added_at: datetime = Field(default_factory=utcnow)
    added_by: str = ""


class ModelSpec(ModelBase):
    """What a source describes: a model entry before it is stored, with its initial tags."""

    tags: list[str] = Field(default_factory=list)


class ModelRecord(ModelBase):
    """A stored entry as users see it (listings, ``show``, ``--json``).

    ``available`` is worked out when asked (``list(available=...)``, offline listings): whether the
    model can be loaded now. It is never stored, as it changes when the network or a cache does.
    """

    id: int
    added_at: datetime
    added_by: str
    tags: list[str] = Field(default_factory=list)
    available: bool | None = None

    @field_validator("added_at")
    @classmethod
    def _in_utc(cls, when: datetime) -> datetime:
        """Stored in UTC; a SQLModel older than its ``UTCDateTime`` hands SQLite's back without the zone.
        Aware either way, listings print the same (and the CLI's fast reader prints what they print)."""
        return when if when.tzinfo else when.replace(tzinfo=UTC)


class ModelTag(TlregModel, table=True):
    __tablename__ = "model_tag"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True, ondelete="CASCADE")
    name: str = Field(index=True)


class Event(TlregModel, table=True):
    """One change to the registry. Rows are only ever inserted."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    user: str
    host: str
    action: str = Field(index=True, description="add, remove, tag, untag, revision, parent, alias, unalias")
    ref: str = Field(index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Alias(TlregModel, table=True):
    """Where a name (``@champion``) points now: one entry at one revision. Every move is also an
    ``alias`` event (and a removal an ``unalias`` event), so the log keeps where it pointed when."""

    __tablename__ = "alias"

    name: str = Field(primary_key=True)
    ref: str = Field(index=True)
    revision: str | None = None
    set_at: datetime = Field(default_factory=utcnow)
    set_by: str = ""
