"""The registry: model entries, their tags, and the append-only log of every change.

One :class:`Registry` wraps one database. Every write is one transaction that also appends an
:class:`Event` (who, where, when, what), so ``tlreg registry history`` can always tell how the
registry came to be as it is. Adding a ref that is already there changes nothing, unless its
pinned revision moved, which is recorded as a ``revision`` event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, or_
from sqlmodel import Session, col, select

from . import config
from .db import open_engine, write_session
from .errors import BadInputError, InvalidRefError, UnknownModelError, UnsupportedModalityError
from .models import MODALITIES, Event, ModelEntry, ModelRecord, ModelSpec, ModelTag
from .refs import WEIGHT_SUFFIXES, Ref

if TYPE_CHECKING:  # sources and feature extractors import torch and timm: loaded only when models are
    from .feature_extractor import FeatureExtractor
    from .sources import Skip


def to_ref(text: str, *, arch: str | None = None) -> Ref:
    """What the user typed as a ref: a ref string (of an installed source's scheme), a path to weights
    or a model folder, or a timm name."""
    import timm

    from .sources import parse_ref, schemes

    scheme = text.partition(":")[0]
    if scheme in schemes():
        ref = parse_ref(text if not arch or "#" in text else f"{text}#arch={arch}")
        return ref
    path = Path(text).expanduser()
    if path.is_dir():
        return parse_ref(f"local-dir:{path}")
    if path.is_file() or path.suffix in WEIGHT_SUFFIXES:
        if not arch:
            raise InvalidRefError(
                f"{text}: a weights file needs its timm architecture.",
                hint="Pass --arch, e.g. --arch resnet18.",
            )
        return parse_ref(f"file:{path}#arch={arch}")
    if timm.list_pretrained(text, exclude_filters=()) == [text] or ("." not in text and timm.is_model(text)):
        return Ref("timm", text)
    raise InvalidRefError(
        f"{text!r} is neither a model reference nor an existing file or folder.",
        hint="Use timm:NAME, hf:ORG/NAME[@REV], pkg:NAME, or a path.",
    )


@dataclass
class ImportReport:
    """What an import did: the entries it added, those it left as they were, and what it skipped."""

    added: list[ModelRecord] = field(default_factory=list)
    updated: list[ModelRecord] = field(default_factory=list)
    unchanged: list[ModelRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        refs = lambda rows: [r.ref for r in rows]  # noqa: E731
        return {
            "added": refs(self.added),
            "updated": refs(self.updated),
            "unchanged": refs(self.unchanged),
            "skipped": [{"ref": s.name, "reason": s.reason} for s in self.skipped],
        }


class Registry:
    """The registry database at ``url`` (default: ``TLREG_DB`` or SQLite under ``TLREG_HOME``)."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        self.engine = engine or open_engine(url or config.db_url())

    # -- reading ------------------------------------------------------------------------------

    def _records(self, session: Session, entries: Sequence[ModelEntry]) -> list[ModelRecord]:
        ids = [e.id for e in entries]
        tags: dict[int, list[str]] = {}
        if ids:
            for t in session.exec(
                select(ModelTag).where(col(ModelTag.model_id).in_(ids)).order_by(ModelTag.name)
            ):
                tags.setdefault(t.model_id, []).append(t.name)
        return [ModelRecord(**e.model_dump(), tags=tags.get(e.id, [])) for e in entries]

    def _find(self, session: Session, ref: str) -> ModelEntry:
        entry = session.exec(select(ModelEntry).where(ModelEntry.ref == ref)).first()
        if entry is None and ref.startswith("hf:") and "@" in ref:
            entry = session.exec(select(ModelEntry).where(ModelEntry.ref == ref.split("@")[0])).first()
        if entry is None and ":" not in ref:
            matches = session.exec(select(ModelEntry).where(col(ModelEntry.ref).endswith(f":{ref}"))).all()
            entry = matches[0] if len(matches) == 1 else None
        if entry is None:
            raise UnknownModelError(ref, known=session.exec(select(ModelEntry.ref)).all())
        return entry

    def get(self, ref: str) -> ModelRecord:
        with Session(self.engine) as session:
            return self._records(session, [self._find(session, ref)])[0]

    def list(
        self,
        *,
        pattern: str | None = None,
        modality: str | None = None,
        source: str | None = None,
        tags: Iterable[str] = (),
        max_params: int | None = None,
    ) -> list[ModelRecord]:
        """Entries matching every filter; ``pattern`` is a glob on the ref, with or without its scheme."""
        with Session(self.engine) as session:
            query = select(ModelEntry).order_by(ModelEntry.ref)
            if modality:
                query = query.where(ModelEntry.modality == modality)
            if source:
                query = query.where(ModelEntry.source == source)
            records = self._records(session, session.exec(query).all())
        wanted = set(tags)
        return [
            r
            for r in records
            if (not pattern or fnmatch(r.ref, pattern) or fnmatch(r.ref.partition(":")[2], pattern))
            and wanted <= set(r.tags)
            and (max_params is None or (r.params is not None and r.params <= max_params))
        ]

    def events(self, ref: str | None = None) -> list[Event]:
        """The event log, oldest first; for one ref (with or without its scheme) when given."""
        with Session(self.engine) as session:
            query = select(Event).order_by(Event.id)
            if ref:
                base = ref.split("@")[0] if ref.startswith("hf:") else ref
                query = query.where(or_(Event.ref == base, col(Event.ref).endswith(f":{base}")))
            return list(session.exec(query).all())

    # -- writing ------------------------------------------------------------------------------

    def _event(self, session: Session, action: str, ref: str, detail: dict[str, Any]) -> None:
        session.add(Event(user=config.user(), host=config.host(), action=action, ref=ref, detail=detail))

    def add(self, spec: ModelSpec) -> tuple[ModelRecord, str]:
        """Store ``spec``; returns the record and ``added``, ``updated`` (new revision) or ``unchanged``."""
        if spec.modality not in MODALITIES:
            raise UnsupportedModalityError(
                f"{spec.ref}: modality {spec.modality!r} is not supported.",
                hint=f"tlreg ranks {' and '.join(MODALITIES)} models.",
            )
        with write_session(self.engine) as session:
            existing = session.exec(select(ModelEntry).where(ModelEntry.ref == spec.ref)).first()
            if existing is None:
                entry = ModelEntry(**spec.model_dump(exclude={"tags"}), added_by=config.user())
                session.add(entry)
                session.flush()
                for name in sorted(set(spec.tags)):
                    session.add(ModelTag(model_id=entry.id, name=name))
                self._event(session, "add", spec.ref, spec.model_dump(mode="json"))
                status = "added"
            elif spec.revision and spec.revision != existing.revision:
                self._event(session, "revision", spec.ref, {"old": existing.revision, "new": spec.revision})
                for key, value in spec.model_dump(exclude={"tags", "ref"}).items():
                    setattr(existing, key, value)
                session.add(existing)
                entry, status = existing, "updated"
            else:
                entry, status = existing, "unchanged"
            session.flush()
            return self._records(session, [entry])[0], status

    def set_revision(self, ref: str, revision: str) -> None:
        """Pin an entry whose revision was unknown (or moved) when it was first loaded."""
        with write_session(self.engine) as session:
            entry = self._find(session, ref)
            if entry.revision != revision:
                self._event(session, "revision", entry.ref, {"old": entry.revision, "new": revision})
                entry.revision = revision
                session.add(entry)

    def remove(self, ref: str) -> ModelRecord:
        with write_session(self.engine) as session:
            entry = self._find(session, ref)
            record = self._records(session, [entry])[0]
            session.exec(delete(ModelTag).where(col(ModelTag.model_id) == entry.id))
            session.delete(entry)
            self._event(session, "remove", record.ref, record.model_dump(mode="json"))
            return record

    def tag(self, ref: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> ModelRecord:
        add, remove = sorted(set(add)), sorted(set(remove))
        if bad := [t for t in [*add, *remove] if not t or any(c.isspace() for c in t)]:
            raise BadInputError(f"Invalid tag {bad[0]!r}: tags are non-empty words without spaces.")
        with write_session(self.engine) as session:
            entry = self._find(session, ref)
            have = {t.name: t for t in session.exec(select(ModelTag).where(ModelTag.model_id == entry.id))}
            added = [t for t in add if t not in have]
            removed = [t for t in remove if t in have]
            for name in added:
                session.add(ModelTag(model_id=entry.id, name=name))
            for name in removed:
                session.delete(have[name])
            if added:
                self._event(session, "tag", entry.ref, {"tags": added})
            if removed:
                self._event(session, "untag", entry.ref, {"tags": removed})
            session.flush()
            return self._records(session, [entry])[0]

    # -- with the sources ---------------------------------------------------------------------

    def add_ref(
        self, text: str, *, arch: str | None = None, tags: Iterable[str] = ()
    ) -> tuple[ModelRecord, str]:
        """Describe ``text`` with its source and store it (the Python twin of ``tlreg registry add``)."""
        from .sources import source_for_scheme

        ref = to_ref(text, arch=arch)
        spec = source_for_scheme(ref.scheme).describe(ref)
        spec = spec.model_copy(update={"tags": sorted({*spec.tags, *tags}), "origin": spec.origin or "add"})
        return self.add(spec)

    def import_from(
        self, source: str, *, filters: Sequence[str] = (), limit: int | None = None, sort: str | None = None
    ) -> ImportReport:
        """Register what a source lists (the Python twin of ``tlreg registry import``)."""
        from .sources import Skip, get_source

        report = ImportReport()
        for item in get_source(source).list(filters=filters, limit=limit, sort=sort):
            if isinstance(item, Skip):
                report.skipped.append(item)
                continue
            origin = item.origin or f"import {source}"
            record, status = self.add(item.model_copy(update={"origin": origin}))
            getattr(report, status).append(record)
        return report

    def load(self, ref: str, *, pretrained: bool = True, trust_remote_code: bool = False) -> FeatureExtractor:
        """The entry as a feature extractor; pins its revision if the load resolved it."""
        from .sources import get_source

        record = self.get(ref)
        extractor = get_source(record.source).load(
            record, pretrained=pretrained, trust_remote_code=trust_remote_code
        )
        if pretrained and extractor.revision and extractor.revision != record.revision:
            self.set_revision(record.ref, extractor.revision)
        return extractor
