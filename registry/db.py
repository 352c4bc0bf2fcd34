"""One place that turns a URL into a ready engine: connected, tuned, and migrated.

SQLite is the default and must be safe with several tlreg processes at once, so every file
database runs in WAL mode with a busy timeout, and units of work that write start with
``BEGIN IMMEDIATE`` (see :func:`write_session`): a deferred transaction that reads and then
writes can fail at once with "database is locked" when another writer got there first, whatever
the timeout. On PostgreSQL the same units of work take a transaction-scoped advisory lock, so
that check-then-insert (an idempotent add, a tag) cannot race there either. Migrations run on
open, under a lock (a lock file for SQLite, an advisory lock on PostgreSQL) so that two
processes opening a new database do not both create its tables. A SQLite file that is not a
database, is damaged or cannot be written becomes one :class:`DatabaseError` naming the file and
the fix, in place of SQLAlchemy's error text, which carries the SQL and its parameters.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from . import config
from .errors import DatabaseCorruptError, DatabaseError, DatabaseReadOnlyError, DatabaseVersionError

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_S = 60
_PG_LOCK_KEY = 0x746C726567  # "tlreg"
_PG_WRITE_LOCK_KEY = _PG_LOCK_KEY + 1


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default: :func:`config.db_url`), not yet migrated."""
    url = url or config.db_url()
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"Cannot parse the database URL {url!r}.",
            hint="Give an SQLAlchemy URL such as sqlite:///path.db.",
        ) from exc
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg"):
            # A bare postgresql:// means psycopg2 to SQLAlchemy 2.0; tlreg[postgres] installs psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            if parsed.drivername in ("postgresql", "postgresql+psycopg"):
                hint = 'pip install "tlreg[postgres]"'
            elif parsed.get_backend_name() == "postgresql":
                hint = 'Install it, or pip install "tlreg[postgres]" and use a postgresql:// URL.'
            else:
                hint = "Install it, or name an installed driver in the URL (dialect+driver://...)."
            raise DatabaseError(
                f"The database URL {parsed.render_as_string(hide_password=True)} needs the Python "
                f"driver {exc.name!r}, which is not installed.",
                hint=hint,
            ) from exc

    database = sqlite_file(parsed)
    in_memory = database is None
    if in_memory:
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        folder = database.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"Cannot open the registry database {url}: cannot create {folder} ({exc}).",
                hint="Check the path (--db / TLREG_DB / TLREG_HOME) and that it is writable.",
            ) from exc
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "handle_error")
    def _in_one_line(context: ExceptionContext) -> DatabaseError | None:
        # Replaces SQLAlchemy's error, whose text carries the SQL and its parameters, where the
        # fault is the database file's and the user can fix it.
        return _sqlite_fault(parsed, context.original_exception)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event own transaction start, so writes can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (``sqlite:///path`` or the URI form ``sqlite:///file:path?uri=true``);
    None for an in-memory database."""
    database = url.database or ""
    if str(url.query.get("uri", "")).lower() in ("true", "1"):
        if url.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:")
    if not database or database == ":memory:":
        return None
    return Path(database).expanduser()


def _database_name(url: URL) -> str:
    """How an error names the database: the SQLite file, or the URL with its password masked."""
    if url.get_backend_name() == "sqlite" and (path := sqlite_file(url)) is not None:
        return str(path)
    return url.render_as_string(hide_password=True)


_ELSEWHERE = "point TLREG_DB (or --db) elsewhere"


def _sqlite_fault(url: URL, exc: BaseException) -> DatabaseError | None:
    """One line for a SQLite error that is the database file's fault (not SQLite, damaged, read-only,
    cannot be opened), naming the file and the fix; None for any other error."""
    code = getattr(exc, "sqlite_errorname", "")
    if not code:
        return None
    name, cause = _database_name(url), str(exc)
    if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        what = "is not a SQLite database" if code.startswith("SQLITE_NOTADB") else "is damaged"
        return DatabaseCorruptError(
            f"The registry database {name} {what} ({cause}).",
            hint=f"tlreg left it as it is: restore it from a backup or {_ELSEWHERE}.",
        )
    path = sqlite_file(url)
    unwritable = (
        path is not None
        and path.exists()
        and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
    )
    if code.startswith("SQLITE_READONLY") or (code.startswith("SQLITE_CANTOPEN") and unwritable):
        return DatabaseReadOnlyError(
            f"The registry database {name} is read-only ({cause}).",
            hint="Check its permissions and its folder's (SQLite writes -wal and -shm files beside it), "
            f"or {_ELSEWHERE}.",
        )
    if code.startswith("SQLITE_CANTOPEN"):
        return DatabaseError(
            f"Cannot open the registry database {name} ({cause}).",
            hint=f"Check that it and its folder exist and that you may read and write them, or {_ELSEWHERE}.",
        )
    return None


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session for one unit of work that writes; committed on success, rolled back on error.

    Objects stay usable after the commit (``expire_on_commit=False``): callers return them.
    """
    with Session(engine, expire_on_commit=False) as session:
        if engine.dialect.name == "sqlite":
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        elif engine.dialect.name == "postgresql":
            # PostgreSQL's READ COMMITTED lets two writers both find a ref (or tag) absent and both
            # insert it; the loser fails on the unique index. Writes are small, so they take turns,
            # as with SQLite's BEGIN IMMEDIATE: a transaction-scoped lock, released at commit/rollback.
            session.connection().execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_WRITE_LOCK_KEY})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic_config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def schema_heads(engine: Engine) -> tuple[set[str], set[str]]:
    """(the database's current revisions, the revisions this tlreg knows as head)."""
    script = ScriptDirectory.from_config(_alembic_config())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, set(script.get_heads())


def _check_known(engine: Engine, current: set[str]) -> None:
    script = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = current - known
    if unknown:
        raise DatabaseVersionError(
            f"The registry database {engine.url.render_as_string(hide_password=True)} has schema "
            f"revision {', '.join(sorted(unknown))}, written by a newer tlreg.",
            hint="Upgrade tlreg (pip install -U tlreg), or point --db / TLREG_DB at another database.",
        )


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        database = sqlite_file(engine.url)
        if database is None:
            yield
            return
        with FileLock(f"{database}.migrate.lock", timeout=BUSY_TIMEOUT_S):
            yield
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    else:
        yield


def migrate(engine: Engine) -> None:
    """Bring the schema to this tlreg's head; refuse a database from a newer tlreg."""
    try:
        current, heads = schema_heads(engine)
        _check_known(engine, current)
        if current == heads:
            return
        with _migration_lock(engine):
            current, heads = schema_heads(engine)  # another process may have migrated meanwhile
            if current == heads:
                return
            with engine.begin() as conn:
                command.upgrade(_alembic_config(conn), "head")
    except OperationalError as exc:
        where = (
            "that it is writable"
            if engine.dialect.name == "sqlite"
            else "that the server is running and reachable, and the user and password"
        )
        cause = " ".join(str(exc.orig).split())  # one line: libpq spreads its messages over several
        raise DatabaseError(
            f"Cannot open the registry database {engine.url.render_as_string(hide_password=True)}: "
            f"{cause if cause.endswith(('.', '?')) else cause + '.'}",
            hint=f"Check the path or URL (--db / TLREG_DB) and {where}.",
        ) from exc


def open_engine(url: str | None = None) -> Engine:
    """A migrated engine, ready to use."""
    engine = make_engine(url)
    migrate(engine)
    return engine
