"""An ORM-free reader of a SQLite registry, so that the commands people type to look around start fast.

``tlreg registry list`` spent about 0.3 s importing SQLAlchemy, SQLModel and pydantic, and 0.03 s
reading and printing. When the registry is a SQLite file that exists and records this tlreg's schema
head, ``registry list``, ``registry show``, ``runs list`` and ``runs show`` read it here with the
standard library's ``sqlite3``: a connection that refuses writes (``PRAGMA query_only``), the engine's
busy timeout, and each command's queries in one read transaction, so they see one snapshot while
another process writes.

What this reader cannot answer exactly as the ORM path would, it does not answer: its methods return
None and the caller asks :class:`tlreg.registry.Registry`, which then does what it always did. That is
the case for a URL that is not a plain ``sqlite:///PATH`` (PostgreSQL, in memory, a URI), a missing file
(the registry creates it), a schema not at :data:`SCHEMA_HEAD` (it migrates it), any SQLite error (it
turns a damaged or unreadable file into its one-line error), a ref or run id that does not name exactly
one row (its error, with close matches), an alias whose entry has moved revision (its warning), and a
run recorded as running on this host by another process (it closes the run if that process is gone).
``TLREG_FAST_READ=0`` turns the reader off.

How it stays in step with the ORM models: rows are read with ``SELECT *`` and decoded by their
declared SQL types (JSON, DATETIME, BOOLEAN), so a column a migration adds comes through with no change
here; a row's fields keep the table's column order, which is its model's (for a model entry, see
:func:`_record`). The queries are those of :mod:`.store`, :mod:`.lineage`, :mod:`.aliases` and
:mod:`.runs`, written in SQL; tests/test_sqlite_read.py runs each command both ways on one registry
and fails if the two ever differ, and checks the tables' columns against the models'.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from . import config
from .family import member_fields, parent_fields
from .migrations import SCHEMA_HEAD, VERSION_TABLE

T = TypeVar("T")
#: the URLs read here: a plain SQLite file (a query, or a '%' that SQLAlchemy would decode, go to the ORM)
_FILE_URL = re.compile(r"sqlite(\+pysqlite)?:///(?P<path>[^?%]+)")
#: a model entry's own bookkeeping, which :class:`.models.ModelRecord` lists after the entry's fields
_BOOKKEEPING = ("id", "added_at", "added_by")
#: SQLAlchemy's storage format of a SQLite DATETIME
_STORED = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


def matches(
    record: Any, *, pattern: str | None = None, tags: Iterable[str] = (), max_params: int | None = None
) -> bool:
    """Whether a record passes ``Registry.list``'s filters: ``pattern``, a glob on the ref with or
    without its scheme; every one of ``tags``; at most ``max_params`` parameters (known)."""
    return (
        (not pattern or fnmatch(record.ref, pattern) or fnmatch(record.ref.partition(":")[2], pattern))
        and set(tags) <= set(record.tags)
        and (max_params is None or (record.params is not None and record.params <= max_params))
    )


def aware(when: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; tlreg stores UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Row:
    """One row as the ORM path's objects show it: its fields as attributes, and the part of pydantic's
    ``model_dump`` that the CLI and the run records call."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)

    def model_dump(
        self, *, mode: str = "python", include: set[str] | None = None, exclude: set[str] | None = None
    ) -> dict[str, Any]:
        fields = {
            k: v
            for k, v in vars(self).items()
            if (include is None or k in include) and (exclude is None or k not in exclude)
        }
        if mode == "json":  # pydantic's form of a datetime; JSON columns hold JSON already
            return {
                k: v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v
                for k, v in fields.items()
            }
        return fields


def _decoder(declared: str) -> Callable[[Any], Any] | None:
    kind = declared.upper()
    if kind == "JSON":
        return json.loads
    if kind == "DATETIME":  # as SQLModel's UTCDateTime hands it back: stored in UTC, returned aware
        return lambda text: aware(datetime.fromisoformat(text)).astimezone(UTC)
    if kind == "BOOLEAN":
        return bool
    return None


class _Snapshot:
    """One read transaction: rows decoded by their tables' declared types."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._decoders: dict[str, dict[str, Callable[[Any], Any]]] = {}

    def _types(self, table: str) -> dict[str, Callable[[Any], Any]]:
        if table not in self._decoders:
            columns = self.conn.execute(f"PRAGMA table_info({table})")
            self._decoders[table] = {n: f for _, n, declared, *_ in columns if (f := _decoder(declared))}
        return self._decoders[table]

    def rows(self, tables: tuple[str, ...], sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """``sql``'s rows, each column decoded by its declared type in ``tables`` (a join reads no two
        columns of one name)."""
        decoders = {n: f for table in tables for n, f in self._types(table).items()}
        cursor = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        decode = [decoders.get(n) for n in names]
        return [
            Row(
                {
                    n: v if f is None or v is None else f(v)
                    for n, f, v in zip(names, decode, values, strict=True)
                }
            )
            for values in cursor
        ]

    def one(self, table: str, where: str, *params: Any) -> Row | None:
        found = self.rows((table,), f"SELECT * FROM {table} WHERE {where}", params)
        return found[0] if found else None


#: a run's record: (run, candidates, scores, result or None, fine-tune outcomes, aliases when it started)
RunRows = tuple["Row", list["Row"], list["Row"], "Row | None", list["Row"], dict[str, Any]]


class SqliteReader:
    """Reads the registry's SQLite file at ``path`` without the ORM; each method returns None where
    :class:`tlreg.registry.Registry` must answer instead (see the module's notes)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_url(cls, url: str | None = None) -> SqliteReader | None:
        """A reader of the registry at ``url`` (default: :func:`config.db_url`) when it is a SQLite file
        that exists and the reader is on; else None."""
        match = _FILE_URL.fullmatch(url or config.db_url())
        if match is None or match["path"] == ":memory:" or not config.fast_read():
            return None
        path = Path(match["path"]).expanduser()
        return cls(path) if path.is_file() else None

    def _read(self, work: Callable[[_Snapshot], T | None]) -> T | None:
        """``work`` in one read transaction on a connection that refuses writes (``query_only``). Opened
        as the engine opens it (``mode=rw``: never created), not ``mode=ro``: a read-only connection
        cannot clear the write-ahead log's ``-wal`` and ``-shm`` files away as it closes, and every
        listing would leave them beside the database."""
        uri = f"file:{quote(str(self.path.resolve()))}?mode=rw"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=config.BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("BEGIN")
            if {r[0] for r in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")} != {SCHEMA_HEAD}:
                return None  # the registry migrates it
            return work(_Snapshot(conn))
        except sqlite3.Error:
            return None  # the registry names what is wrong with the file, in one line
        finally:
            conn.close()

    # -- models -------------------------------------------------------------------------------

    def models(
        self,
        *,
        pattern: str | None = None,
        modality: str | None = None,
        source: str | None = None,
        tags: Iterable[str] = (),
        max_params: int | None = None,
        available: bool | None = None,
    ) -> list[Row] | None:
        """``Registry.list``'s records; None with ``available`` (which the registry works out)."""
        if available is not None:
            return None
        where = [(c, v) for c, v in (("modality", modality), ("source", source)) if v]
        sql = "SELECT * FROM model" + (
            " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else ""
        )

        def work(db: _Snapshot) -> list[Row]:
            records = _records(db, db.rows(("model",), sql + " ORDER BY ref", [v for _, v in where]))
            return [r for r in records if matches(r, pattern=pattern, tags=tags, max_params=max_params)]

        return self._read(work)

    def show(self, ref: str) -> tuple[Row, dict[str, Any], list[str]] | None:
        """(``Registry.get(ref)``, its ``family``, the names of the aliases pointing at it)."""

        def work(db: _Snapshot) -> tuple[Row, dict[str, Any], list[str]] | None:
            entry = _find(db, ref)
            if entry is None:
                return None
            names = [
                r[0]
                for r in db.conn.execute("SELECT name FROM alias WHERE ref = ? ORDER BY name", (entry.ref,))
            ]
            return _records(db, [entry])[0], _family(db, entry), names

        return self._read(work)

    # -- runs ---------------------------------------------------------------------------------

    def run_summaries(
        self, *, since: datetime | None = None, limit: int | None = None
    ) -> list[tuple[Row, str | None]] | None:
        """``RunStore.summaries``: (run, its pick), newest first."""
        sql = "SELECT run.*, run_result.best_ref FROM run "
        sql += "LEFT OUTER JOIN run_result ON run_result.run_id = run.id"
        params: list[Any] = []
        if since:
            sql += " WHERE run.created_at >= ?"
            params.append(_stored(since))
        sql += " ORDER BY run.created_at DESC, run.id DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)

        def work(db: _Snapshot) -> list[tuple[Row, str | None]] | None:
            if _others_running(db):
                return None
            rows = db.rows(("run", "run_result"), sql, params)
            return [(_without(r, "best_ref"), r.best_ref) for r in rows]

        return self._read(work)

    def run(self, run_id: str) -> RunRows | None:
        """``RunStore.get(run_id)`` (a unique prefix too), the run's fine-tune outcomes, and where every
        alias pointed when it started (``aliases_at``)."""

        def work(db: _Snapshot) -> RunRows | None:
            if _others_running(db):
                return None
            run = db.one("run", "id = ?", run_id) if run_id else None
            if run is None and run_id:
                found = db.rows(("run",), "SELECT * FROM run WHERE id LIKE ? || '%' LIMIT 6", (run_id,))
                run = found[0] if len(found) == 1 else None
            if run is None:
                return None  # no such run, or several: the store's error says which
            return (
                run,
                _of_run(db, "run_candidate", run.id),
                _of_run(db, "run_score", run.id),
                db.one("run_result", "run_id = ?", run.id),
                _of_run(db, "finetune_outcome", run.id),
                _aliases_at(db, aware(run.created_at)),
            )

        return self._read(work)


# -- the ORM's reads, in SQL ----------------------------------------------------------------------


def _record(entry: Row, tags: list[str]) -> Row:
    """A model entry as :class:`.models.ModelRecord`: the entry's fields (``ModelBase``) in the table's
    order, then its bookkeeping (``ModelEntry``'s own), then ``tags`` and ``available``. The lineage
    columns came last in the table (a later migration) but belong to ``ModelBase``: hence the reorder."""
    fields = vars(entry)
    own = {k: v for k, v in fields.items() if k not in _BOOKKEEPING}
    return Row({**own, **{k: fields[k] for k in _BOOKKEEPING}, "tags": tags, "available": None})


def _records(db: _Snapshot, entries: list[Row]) -> list[Row]:
    """``Registry._records``: each entry with its tags, sorted."""
    tags: dict[int, list[str]] = {}
    if entries:
        for model_id, name in db.conn.execute("SELECT model_id, name FROM model_tag ORDER BY name"):
            tags.setdefault(model_id, []).append(name)
    return [_record(e, tags.get(e.id, [])) for e in entries]


def _find(db: _Snapshot, ref: str) -> Row | None:
    """``Registry._find``, where it finds exactly one entry without an error or a warning."""
    if ref.startswith("@"):
        alias = db.one("alias", "name = ?", ref[1:])
        entry = db.one("model", "ref = ?", alias.ref) if alias else None
        moved = entry is not None and alias.revision and entry.revision and entry.revision != alias.revision
        return None if moved else entry
    entry = db.one("model", "ref = ?", ref)
    if entry is None and ref.startswith("hf:") and "@" in ref:
        entry = db.one("model", "ref = ?", ref.split("@")[0])
    if entry is None and ":" not in ref:
        found = db.rows(("model",), "SELECT * FROM model WHERE ref LIKE '%' || ?", (f":{ref}",))
        entry = found[0] if len(found) == 1 else None
    return entry


def _removal(db: _Snapshot, ref: str) -> str | None:
    """``aliases.removal``."""
    last = db.rows(("event",), "SELECT * FROM event WHERE ref = ? ORDER BY id DESC LIMIT 1", (ref,))
    if not last or last[0].action != "remove":
        return None
    return f"by {last[0].user} at {aware(last[0].at):%Y-%m-%d %H:%M} UTC"


def _member(db: _Snapshot, entry: Row) -> dict[str, Any]:
    """``lineage.member``."""
    outcome = (
        db.one("finetune_outcome", "id = ?", entry.finetune_outcome_id) if entry.finetune_outcome_id else None
    )
    return member_fields(entry, outcome)


def _family(db: _Snapshot, entry: Row) -> dict[str, Any]:
    """``lineage.family``."""
    parent = None
    if entry.parent_ref:
        found = db.one("model", "ref = ?", entry.parent_ref) is not None
        parent = parent_fields(
            entry, registered=found, removed=None if found else _removal(db, entry.parent_ref)
        )
    children = db.rows(("model",), "SELECT * FROM model WHERE parent_ref = ? ORDER BY ref", (entry.ref,))
    own = _member(db, entry)
    return {"parent": parent, "outcome": own["outcome"], "children": [_member(db, c) for c in children]}


def _aliases_at(db: _Snapshot, when: datetime) -> dict[str, dict[str, Any]]:
    """``aliases.aliases_at``: the alias events replayed up to ``when``."""
    state: dict[str, dict[str, Any]] = {}
    sql = "SELECT * FROM event WHERE action IN ('alias', 'unalias') ORDER BY id"
    for event in db.rows(("event",), sql):
        if aware(event.at) > when:
            continue
        name, new = event.detail["alias"], event.detail.get("new") or {}
        if event.action == "unalias":
            state.pop(name, None)
        else:
            state[name] = {
                "ref": new.get("ref"),
                "revision": new.get("revision"),
                "since": aware(event.at),
                "by": event.user,
            }
    return dict(sorted(state.items()))


def _of_run(db: _Snapshot, table: str, run_id: str) -> list[Row]:
    return db.rows((table,), f"SELECT * FROM {table} WHERE run_id = ? ORDER BY id", (run_id,))


def _others_running(db: _Snapshot) -> bool:
    """A run this host records as running, opened by another process: ``RunStore.mark_abandoned`` checks
    whether that process is still alive, and closes its record if not."""
    sql = "SELECT pid FROM run WHERE status = 'running' AND host = ?"
    return any(pid != os.getpid() for (pid,) in db.conn.execute(sql, (config.host(),)))


def _stored(when: datetime) -> str:
    """A time as SQLAlchemy binds it to a SQLite DATETIME (UTC, no zone), to compare with stored ones."""
    w = aware(when).astimezone(UTC)
    return _STORED % {
        k: getattr(w, k) for k in ("year", "month", "day", "hour", "minute", "second", "microsecond")
    }


def _without(row: Row, name: str) -> Row:
    return Row({k: v for k, v in vars(row).items() if k != name})
