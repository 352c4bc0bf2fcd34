"""Lineage: a fine-tuned model comes back into the registry as a candidate, with its parent.

``tlreg finetune ... --register`` and ``tlreg registry add OUT/model`` read the fine-tune's
``tlreg_finetune.json`` (format, mode, classes, the starting model's ref and revision) and find the
outcome it recorded (by its output folder; else ``OUT/metrics.json``), so the entry records its
``parent_ref``, ``parent_revision``, ``finetune_run_id`` and ``finetune_outcome_id``. Any entry can
also be given a parent by hand (``registry add REF --parent PARENT``): a model fine-tuned elsewhere.

What each fine-tune format is as a candidate:

- ``timm``, ``transformers``: a saved model folder like any other (``local-dir:``), its own new
  classifier as the source head.
- ``backbone+head``: the backbone folder; its features are the backbone's, and ``head.safetensors``
  gives the source-class probabilities (the fine-tune's classes) that LEEP- and NCE-like estimators read.
- ``linear``: only a head was trained, on the parent's frozen penultimate features. As a candidate
  its features **are its parent's** (loaded through the parent's entry) and its head adds the
  class probabilities. Feature-only estimators (LogME, kNN, H-score, ...) therefore score it
  exactly as its parent; only estimators that read the source head can tell them apart.

A parent that would make a model its own ancestor is refused (:func:`check_cycle`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session, col, select

from .errors import BadInputError, LineageCycleError
from .family import member_fields, parent_fields
from .models import ModelBase, ModelEntry, ModelRecord, ModelSpec
from .outcomes import FinetuneOutcome
from .refs import Ref
from .sources import parse_ref

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from torch import nn

    from .feature_extractor import FeatureExtractor


class Registry(Protocol):
    """What lineage needs of :class:`tlreg.registry.Registry` (the store imports this module)."""

    engine: Engine

    def get(self, ref: str) -> ModelRecord: ...


#: written by ``tlreg finetune`` into ``OUT/model`` (see tlreg.advisor.handoff.saved_model)
INFO_FILE = "tlreg_finetune.json"
METRICS_FILE = "metrics.json"
HEADED = ("linear", "backbone+head")
_LINEAGE = ("parent_ref", "parent_revision", "finetune_run_id", "finetune_outcome_id")


class ParentRevisionWarning(UserWarning):
    """A linear-mode head's parent now has another revision than the head was trained on."""


def finetune_info(folder: Path) -> dict[str, Any] | None:
    """The fine-tune description in ``folder`` (a ``tlreg finetune`` output's ``model/``), or None."""
    path = folder / INFO_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{path}: cannot be read ({exc}).", hint="tlreg finetune writes it.") from exc
    if not isinstance(info, dict) or "format" not in info or "base_ref" not in info:
        raise BadInputError(f"{path}: not a tlreg fine-tune description (no format or base_ref).")
    return info


def _provenance(session: Session, folder: Path, parent_ref: str) -> tuple[int | None, str | None]:
    """(outcome id, run id) of the fine-tune that wrote ``folder``: the newest outcome recorded for its
    output folder, else what ``OUT/metrics.json`` says (a folder copied from another registry)."""
    out = str(folder.parent.resolve())
    query = (
        select(FinetuneOutcome)
        .where(FinetuneOutcome.output_dir == out, FinetuneOutcome.ref == parent_ref)
        .order_by(col(FinetuneOutcome.id).desc())
    )
    outcome = session.exec(query).first()
    if outcome is not None:
        return outcome.id, outcome.run_id
    metrics = folder.parent / METRICS_FILE
    try:
        stored = json.loads(metrics.read_text()) if metrics.is_file() else {}
    except (OSError, ValueError):
        stored = {}
    outcome_id = stored.get("outcome_id")
    if outcome_id is not None and session.get(FinetuneOutcome, outcome_id) is None:
        outcome_id = None  # an id of another registry's table names nothing here
    return outcome_id, stored.get("run_id")


def describe_finetuned(registry: Registry, ref: Ref, info: dict[str, Any]) -> ModelSpec:
    """The registry entry of a ``tlreg finetune`` output folder, with its lineage."""
    from .sources import get_source
    from .sources.local import folder_revision

    folder, fmt = Path(ref.name), info["format"]
    parent_ref = info["base_ref"]
    classes = list(info.get("classes") or [])
    if fmt == "linear":
        parent = registry.get(parent_ref)  # a head alone loads only on its registered parent
        keep = ("architecture", "modality", "feature_dim", "preprocessing", "license", "pretrain_dataset")
        head_params = (parent.feature_dim or 0) * len(classes) + len(classes)
        spec = ModelSpec(
            ref=str(ref),
            source="local",
            revision=folder_revision(folder),
            params=(parent.params or 0) + head_params if parent.params else None,
            extra={"path": str(folder), "library": parent.extra.get("library")},
            tags=["local"],
            **{k: getattr(parent, k) for k in keep},
        )
    else:
        spec = get_source("local").describe(ref)
    with Session(registry.engine) as session:
        outcome_id, run_id = _provenance(session, folder, parent_ref)
    detail = {k: info.get(k) for k in ("format", "mode", "classes", "val_acc", "epoch", "library")}
    if fmt == "linear":
        detail["parent"] = parent.model_dump(mode="json", include=set(ModelSpec.model_fields) - {"tags"})
    update: dict[str, Any] = {
        "parent_ref": parent_ref,
        "parent_revision": info.get("base_revision"),
        "finetune_run_id": run_id,
        "finetune_outcome_id": outcome_id,
        "origin": "finetune",
        "extra": {**spec.extra, "finetune": detail},
        "tags": sorted({*spec.tags, "finetuned"}),
    }
    if fmt in HEADED and classes:
        update.update(num_classes=len(classes), task=f"{spec.modality}-classification")
    return spec.model_copy(update=update)


def check_cycle(session: Session, ref: str, parent_ref: str) -> None:
    """Refuse ``parent_ref`` as the parent of ``ref`` when ``ref`` is among its ancestors."""
    chain, current = [ref], parent_ref
    while current is not None and current not in chain[1:]:
        chain.append(current)
        if current == ref:
            raise LineageCycleError(
                f"Lineage cycle: {parent_ref} cannot be the parent of {ref}, which would become its own "
                f"ancestor ({' <- '.join(chain)}).",
                hint="A parent is the model this one was fine-tuned from; check --parent or the "
                f"folder's {INFO_FILE}.",
            )
        current = session.exec(select(ModelEntry.parent_ref).where(ModelEntry.ref == current)).first()


def lineage_fields(spec: ModelSpec) -> dict[str, Any]:
    return {k: getattr(spec, k) for k in _LINEAGE}


# -- reading the family ------------------------------------------------------------------------------


def member(session: Session, entry: ModelEntry | ModelRecord) -> dict[str, Any]:
    """One model of a family: its ref and revision, and how it was made (mode, outcome, run)."""
    outcome = session.get(FinetuneOutcome, entry.finetune_outcome_id) if entry.finetune_outcome_id else None
    return member_fields(entry, outcome)


def family(session: Session, entry: ModelEntry) -> dict[str, Any]:
    """``{parent, outcome, children}``: where ``entry`` came from and what was fine-tuned from it."""
    from .aliases import removal

    parent = None
    if entry.parent_ref:
        found = session.exec(select(ModelEntry).where(ModelEntry.ref == entry.parent_ref)).first() is not None
        parent = parent_fields(
            entry, registered=found, removed=None if found else removal(session, entry.parent_ref)
        )
    children = session.exec(
        select(ModelEntry).where(ModelEntry.parent_ref == entry.ref).order_by(col(ModelEntry.ref))
    ).all()
    own = member(session, entry)
    return {"parent": parent, "outcome": own["outcome"], "children": [member(session, c) for c in children]}


def tree(session: Session, records: list[ModelRecord]) -> list[dict[str, Any]]:
    """``records`` as a forest: each node is :func:`member` plus its ``children``; a record whose
    parent is not among ``records`` is a root (with ``parent_ref`` saying whose child it is)."""
    by_parent: dict[str | None, list[ModelRecord]] = {}
    refs = {r.ref for r in records}
    for r in records:
        by_parent.setdefault(r.parent_ref if r.parent_ref in refs else None, []).append(r)
    seen: set[str] = set()

    def node(record: ModelRecord) -> dict[str, Any]:
        seen.add(record.ref)
        kids = [node(c) for c in by_parent.get(record.ref, []) if c.ref not in seen]
        return {**member(session, record), "parent_ref": record.parent_ref, "children": kids}

    return [node(r) for r in by_parent.get(None, []) if r.ref not in seen]


# -- loading a fine-tune whose head is a file of its own -----------------------------------------------


class _Headed:
    """Mixed in front of an extractor's own class: its features, and the fine-tune's head on them as
    the source-class probabilities. Being a subclass of that class, the result still is a
    TimmExtractor (or ...), so fine-tuning it further finds its blocks and its library as before."""

    head: nn.Linear

    def to(self, device: Any) -> Any:
        super().to(device)  # type: ignore[misc]
        self.head.to(self.device)  # type: ignore[attr-defined]
        return self

    def _features_and_logits(self, batch: Any) -> Any:
        feats, _ = super()._features_and_logits(batch)  # type: ignore[misc]
        return feats, self.head(feats.to(self.head.weight.dtype))


_HEADED_TYPES: dict[type, type] = {}


def with_head(inner: FeatureExtractor, head: nn.Linear, *, revision: str | None) -> FeatureExtractor:
    cls = type(inner)
    headed = _HEADED_TYPES.setdefault(cls, type(f"Headed{cls.__name__}", (_Headed, cls), {}))
    extractor = object.__new__(headed)
    extractor.__dict__.update(inner.__dict__)
    extractor.head = head.eval().to(inner.device)
    extractor.num_classes = head.out_features
    extractor.revision = revision
    return extractor


def read_head(path: Path) -> nn.Linear:
    import safetensors.torch
    from torch import nn

    from .errors import WeightsError

    try:
        tensors = safetensors.torch.load_file(str(path))
        weight, bias = tensors["weight"], tensors["bias"]
    except Exception as exc:  # a missing, truncated or foreign file: named, with the cause
        raise WeightsError(str(path), f"is not a fine-tune head ({type(exc).__name__}: {exc}).") from exc
    head = nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": bias})
    return head


def headed(entry: ModelBase) -> bool:
    return ((entry.extra or {}).get("finetune") or {}).get("format") in HEADED


def parent_entry(entry: ModelBase) -> ModelSpec | None:
    """The parent a linear-mode head runs on, as it was when the head was registered (its ref, source,
    pinned revision and loading details travel with the child, so that a Ray actor, which has no
    registry, loads the very backbone the head was trained on)."""
    snapshot = ((entry.extra or {}).get("finetune") or {}).get("parent")
    return ModelSpec(**snapshot) if snapshot else None


def load_entry(
    entry: ModelBase, *, pretrained: bool = True, trust_remote_code: bool = False
) -> FeatureExtractor:
    """Any entry as a feature extractor: through its source, and for a ``linear`` or ``backbone+head``
    fine-tune with its head on top (see the module's notes). Registry.load and the Ray actors call this."""
    from .sources import get_source
    from .sources.local import folder_revision

    if not headed(entry):
        return get_source(entry.source).load(
            entry, pretrained=pretrained, trust_remote_code=trust_remote_code
        )
    folder = Path(parse_ref(entry.ref).name)
    if entry.extra["finetune"]["format"] == "linear":
        parent = parent_entry(entry)
        if parent is None:
            raise BadInputError(
                f"{entry.ref}: a linear-mode head without its parent model to run on.",
                hint="Register it again: tlreg registry add FOLDER.",
            )
        inner = load_entry(parent, pretrained=pretrained, trust_remote_code=trust_remote_code)
        if pretrained and parent.revision and inner.revision != parent.revision:
            warnings.warn(
                f"{parent.ref} is now at revision {str(inner.revision)[:12]}, but the head of "
                f"{entry.ref} was trained on {parent.revision[:12]}; its probabilities may be off.",
                ParentRevisionWarning,
                stacklevel=2,
            )
    else:
        inner = get_source(entry.source).load(
            entry, pretrained=pretrained, trust_remote_code=trust_remote_code
        )
    if not pretrained:
        return inner  # the random-init baseline is the architecture's; a trained head means nothing on it
    return with_head(inner, read_head(folder / "head.safetensors"), revision=folder_revision(folder))
