"""The registry: model entries, their tags, and the append-only log of every change.

One :class:`Registry` wraps one database. Every write is one transaction that also appends an
:class:`Event` (who, where, when, what), so ``tlreg registry history`` can always tell how the
registry came to be as it is. Adding a ref that is already there changes nothing, unless its
pinned revision moved, which is recorded as a ``revision`` event; offline, a Hub ref that is
already registered is not even looked at again (the local cache may hold an older revision).

Wherever a ref is taken, ``@name`` is an alias (:mod:`.aliases`); entries carry their lineage
(:mod:`.lineage`), and whether each can be loaded now is worked out on demand (:mod:`.availability`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, or_
from sqlmodel import Session, col, select

from . import aliases, availability, config, lineage
from .aliases import AliasMove
from .db import open_engine, open_read_only, write_session
from .errors import BadInputError, InvalidRefError, UnknownModelError, UnsupportedModalityError
from .models import MODALITIES, Alias, Event, ModelEntry, ModelRecord, ModelSpec, ModelTag
from .refs import WEIGHT_SUFFIXES, Ref
from .sources import parse_ref
from .sqlite_read import matches

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
    #: offline only: the imported entries that cannot be loaded now (not in the local cache)
    unavailable: list[availability.Unavailable] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        refs = lambda rows: [r.ref for r in rows]  # noqa: E731
        return {
            "added": refs(self.added),
            "updated": refs(self.updated),
            "unchanged": refs(self.unchanged),
            "skipped": [{"ref": s.name, "reason": s.reason} for s in self.skipped],
            "unavailable": [u.to_dict() for u in self.unavailable],
        }


class Registry:
    """The registry database at ``url`` (default: ``TLREG_DB`` or SQLite under ``TLREG_HOME``);
    ``read_only``: an existing one, through a connection that refuses writes (:func:`.db.open_read_only`)."""

    def __init__(
        self, url: str | None = None, *, engine: Engine | None = None, read_only: bool = False
    ) -> None:
        url = url or config.db_url()
        self.read_only = read_only
        self.engine = engine or (open_read_only(url) if read_only else open_engine(url))

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
        if aliases.is_alias(ref):
            return aliases.resolve(session, ref)
        entry = session.exec(select(ModelEntry).where(ModelEntry.ref == ref)).first()
        if entry is None and ref.startswith("hf:") and "@" in ref:
            entry = session.exec(select(ModelEntry).where(ModelEntry.ref == ref.split("@")[0])).first()
        if entry is None and ":" not in ref:
            matches = session.exec(select(ModelEntry).where(col(ModelEntry.ref).endswith(f":{ref}"))).all()
            entry = matches[0] if len(matches) == 1 else None
        if entry is None:
            known = session.exec(select(ModelEntry.ref)).all()
            raise UnknownModelError(ref, known=known, removed=aliases.removal(session, ref))
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
        available: bool | None = None,
    ) -> list[ModelRecord]:
        """Entries matching every filter; ``pattern`` is a glob on the ref, with or without its scheme.

        ``available=True`` keeps the entries that can be loaded now, ``False`` those that cannot
        (each record's ``available`` is then set; see :mod:`.availability`).
        """
        with Session(self.engine) as session:
            query = select(ModelEntry).order_by(ModelEntry.ref)
            if modality:
                query = query.where(ModelEntry.modality == modality)
            if source:
                query = query.where(ModelEntry.source == source)
            records = self._records(session, session.exec(query).all())
        tags = tuple(tags)
        records = [r for r in records if matches(r, pattern=pattern, tags=tags, max_params=max_params)]
        if available is None:
            return records
        for record in records:
            record.available = availability.unavailable(record) is None
        return [r for r in records if available is None or r.available == available]

    def split_available(
        self, records: Sequence[ModelRecord]
    ) -> tuple[list[ModelRecord], list[availability.Unavailable]]:
        """(the records that can be loaded now, the others with the reason): what ``recommend``
        considers, and what it says in one line it left out."""
        return availability.split(records)

    def _exists(self, ref: str) -> bool:
        with Session(self.engine) as session:
            return session.exec(select(ModelEntry.id).where(ModelEntry.ref == ref)).first() is not None

    def events(self, ref: str | None = None) -> list[Event]:
        """The event log, oldest first; for one ref (with or without its scheme, or ``@alias``)."""
        with Session(self.engine) as session:
            query = select(Event).order_by(Event.id)
            if ref and aliases.is_alias(ref):
                ref = aliases.lookup(session, ref).ref
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
            if spec.parent_ref:
                lineage.check_cycle(session, spec.ref, spec.parent_ref)
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
            elif spec.parent_ref and spec.parent_ref != existing.parent_ref:
                old = existing.parent_ref
                for key, value in lineage.lineage_fields(spec).items():
                    setattr(existing, key, value)
                session.add(existing)
                self._event(session, "parent", spec.ref, {"old": old, "new": spec.parent_ref})
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
        self, text: str, *, arch: str | None = None, tags: Iterable[str] = (), parent: str | None = None
    ) -> tuple[ModelRecord, str]:
        """Describe ``text`` with its source and store it (the Python twin of ``tlreg registry add``).

        A ``tlreg finetune`` output folder comes in with its lineage; ``parent`` (a ref or ``@alias``
        of a registered model) names the model this one was fine-tuned from, for any other.
        """
        from . import hub
        from .sources import source_for_scheme

        ref = to_ref(self.get(text).ref if aliases.is_alias(text) else text, arch=arch)
        if ref.scheme == "local-dir" and (Path(ref.name) / "model" / lineage.INFO_FILE).is_file():
            ref = parse_ref(f"local-dir:{Path(ref.name) / 'model'}")  # a fine-tune's OUT: its model
        hub_ref = ref.scheme in availability.HUB_SCHEMES and ref.revision is None  # none asked for
        if parent is not None and self._exists(str(ref)):
            return self.set_parent(str(ref), parent)
        if hub_ref and self._exists(str(ref)) and not hub.online():
            return self.get(str(ref)), "unchanged"  # offline: the cache's revision says nothing new
        info = lineage.finetune_info(Path(ref.name)) if ref.scheme == "local-dir" else None
        if info is not None:
            spec = lineage.describe_finetuned(self, ref, info)
        else:
            spec = source_for_scheme(ref.scheme).describe(ref)
        update: dict[str, Any] = {"tags": sorted({*spec.tags, *tags}), "origin": spec.origin or "add"}
        if parent is not None:
            base = self.get(parent)
            update.update(parent_ref=base.ref, parent_revision=base.revision)
        return self.add(spec.model_copy(update=update))

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
        from . import hub

        imported = report.added + report.updated + report.unchanged
        if any(r.source in availability.HUB_SCHEMES for r in imported) and not hub.online():
            report.unavailable = self.split_available(imported)[1]
        return report

    def load(self, ref: str, *, pretrained: bool = True, trust_remote_code: bool = False) -> FeatureExtractor:
        """The entry as a feature extractor; pins its revision if the load resolved it (unless read-only)."""
        record = self.get(ref)
        extractor = lineage.load_entry(record, pretrained=pretrained, trust_remote_code=trust_remote_code)
        moved = pretrained and extractor.revision and extractor.revision != record.revision
        if moved and not self.read_only:
            self.set_revision(record.ref, extractor.revision)
        return extractor

    # -- aliases and lineage ----------------------------------------------------------------------

    def set_alias(self, name: str, ref: str) -> tuple[Alias, str]:
        """Point ``@name`` at ``ref`` (a ref or another ``@alias``) at its current revision; returns
        the alias and ``set``, ``moved`` or ``unchanged`` (``tlreg registry alias set NAME REF``)."""
        with write_session(self.engine) as session:
            return aliases.set_alias(session, name, self._find(session, ref), self._event)

    def remove_alias(self, name: str) -> Alias:
        """Remove ``@name`` (its history stays): ``tlreg registry alias remove NAME``."""
        with write_session(self.engine) as session:
            return aliases.remove_alias(session, name, self._event)

    def aliases(self, *, at: datetime | None = None) -> list[Alias]:
        """The aliases now, or where they pointed at ``at`` (replayed from the event log)."""
        with Session(self.engine) as session:
            if at is None:
                return list(session.exec(select(Alias).order_by(Alias.name)).all())
            return [
                Alias(name=n, ref=t["ref"], revision=t["revision"], set_at=t["since"], set_by=t["by"])
                for n, t in aliases.aliases_at(session, at).items()
            ]

    def alias_history(self, name: str | None = None) -> list[AliasMove]:
        """Every move of ``@name`` (of all aliases when None), oldest first: who, when, from, to."""
        with Session(self.engine) as session:
            return aliases.history(session, name)

    def set_parent(self, ref: str, parent: str) -> tuple[ModelRecord, str]:
        """Record that ``ref`` was fine-tuned from ``parent`` (both registered; refs or ``@aliases``);
        a parent that would make it its own ancestor is refused. ``updated`` or ``unchanged``."""
        with write_session(self.engine) as session:
            entry, base = self._find(session, ref), self._find(session, parent)
            if entry.parent_ref == base.ref:
                return self._records(session, [entry])[0], "unchanged"
            lineage.check_cycle(session, entry.ref, base.ref)
            self._event(session, "parent", entry.ref, {"old": entry.parent_ref, "new": base.ref})
            entry.parent_ref, entry.parent_revision = base.ref, base.revision
            session.add(entry)
            session.flush()
            return self._records(session, [entry])[0], "updated"

    def family(self, ref: str) -> dict[str, Any]:
        """``{parent, outcome, children}`` of the entry: where it came from, what came from it."""
        with Session(self.engine) as session:
            return lineage.family(session, self._find(session, ref))

    def tree(self, **filters: Any) -> list[dict[str, Any]]:
        """The entries matching ``filters`` (those of :meth:`list`) as a lineage forest."""
        records = self.list(**filters)
        with Session(self.engine) as session:
            return lineage.tree(session, records)
