"""The shape of a model's family as tlreg shows it (``registry show``, ``--tree``, the UI), built from
plain rows so that the ORM path (:mod:`.lineage`) and the ORM-free reader (:mod:`.sqlite_read`) show
the same fields from one place. Imports nothing heavy: the reader must not load SQLAlchemy."""

from __future__ import annotations

from typing import Any


def outcome_fields(outcome: Any | None) -> dict[str, Any] | None:
    """A fine-tune outcome's fields a family shows; None without one."""
    if outcome is None:
        return None
    return {k: getattr(outcome, k) for k in ("id", "run_id", "mode", "val_accuracy", "dataset")}


def member_fields(entry: Any, outcome: Any | None) -> dict[str, Any]:
    """One model of a family: its ref and revision, and how it was made (mode, outcome, run); the
    accuracy is the recorded outcome's, else the one its fine-tune folder noted."""
    detail = (entry.extra or {}).get("finetune") or {}
    return {
        "ref": entry.ref,
        "revision": entry.revision,
        "mode": detail.get("mode"),
        "val_accuracy": outcome.val_accuracy if outcome else detail.get("val_acc"),
        "run_id": entry.finetune_run_id,
        "outcome": outcome_fields(outcome),
    }


def parent_fields(entry: Any, *, registered: bool, removed: str | None) -> dict[str, Any]:
    """Where ``entry`` (which has a parent) came from: whether that parent is in the registry, and if
    not, who removed it when (``removed``, looked up by the caller only then)."""
    return {
        "ref": entry.parent_ref,
        "revision": entry.parent_revision,
        "registered": registered,
        "removed": removed,
    }
