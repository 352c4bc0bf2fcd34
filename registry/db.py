"""One place that turns a URL into a ready engine: connected, tuned, and migrated.

SQLite is the default and must be safe with several tlreg processes at once, so every file
database runs in WAL mode with a busy timeout, and units of work that write start with
``BEGIN IMMEDIATE`` (see :func:`write_session`): a deferred transaction that reads and then
writes can fail at once with "database is locked" when another writer got there first, whatever
the timeout. On PostgreSQL the same units of work take a transaction-scoped advisory lock, so
that check-then-insert (an idempotent add, a tag) cannot race there either. Migrations run on
open, under a lock (a lock file for SQLite, an advisory lock on PostgreSQL) so that two
processes opening a new database do not both create its tables. Alembic itself (a tenth of a second
or more to import) loads only when the schema is not at this tlreg's head (:data:`SCHEMA_HEAD`): one
plain query of the revision the database records answers the common case. A SQLite file that is not a
database, is damaged or cannot be written becomes one :class:`DatabaseError` naming the file and
the fix, in place of SQLAlchemy's error text, which carries the SQL and its parameters.

:func:`open_read_only` is for readers that must never write (``tlreg ui``): the database must exist
and be at this tlreg's schema (it is neither created nor migrated), and the connection itself
refuses writes: SQLite opened with ``mode=ro`` and ``PRAGMA query_only``, PostgreSQL with
``default_transaction_read_only``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from . import config
from .config import BUSY_TIMEOUT_S
from .errors import DatabaseCorruptError, DatabaseError, DatabaseReadOnlyError, DatabaseVersionError
from .migrations import SCHEMA_HEAD, VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x746C726567  # "tlreg"
_PG_WRITE_LOCK_KEY = _PG_LOCK_KEY + 1


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"Cannot parse the database URL {url!r}.",
            hint="Give an SQLAlchemy URL such as sqlite:///path.db.",
        ) from exc


def make_engine(url: str | None = None, *, read_only: bool = False) -> Engine:
    """An engine for ``url`` (default: :func:`config.db_url`), not yet migrated; with ``read_only``,
    one whose connections refuse every write (see :func:`open_read_only`)."""
    url = url or config.db_url()
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg"):
            # A bare postgresql:// means psycopg2 to SQLAlchemy 2.0; tlreg[postgres] installs psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        connect_args = {}
        if read_only:
            if parsed.get_backend_name() != "postgresql":
                raise DatabaseError(
                    f"Cannot open {_database_name(parsed)} read-only: tlreg knows how to for SQLite and "
                    "PostgreSQL only.",
                    hint="Point --db at the registry's SQLite file or PostgreSQL URL.",
                )
            # libpq's startup options: every transaction of the session is read-only.
            connect_args["options"] = "-c default_transaction_read_only=on"
        try:
            engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
            event.listen(
                engine, "handle_error", lambda context: _pg_fault(parsed, context.original_exception)
            )
            return engine
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
    if in_memory and read_only:
        raise DatabaseError("An in-memory database cannot be opened read-only: it starts empty.")
    if in_memory:
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    elif read_only:
        if not database.is_file():
            raise DatabaseError(
                f"The registry database {database} does not exist.",
                hint="Check --db / TLREG_DB / TLREG_HOME (`tlreg doctor` says which database tlreg uses); "
                "a read-only reader never creates one.",
            )
        # SQLite's URI form: the path percent-encoded, so that a '?', '#' or '%' in it stays a path.
        uri = f"file:{quote(str(database.resolve()))}"
        parsed = URL.create("sqlite", database=uri, query={"mode": "ro", "uri": "true"})
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})
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
        return _sqlite_fault(parsed, context.original_exception, read_only=read_only)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event own transaction start, so writes can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if read_only:
            cursor.execute("PRAGMA query_only = ON")
        elif not in_memory:
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
        database = unquote(database.removeprefix("file:"))
    if not database or database == ":memory:":
        return None
    return Path(database).expanduser()


def _database_name(url: URL) -> str:
    """How an error names the database: the SQLite file, or the URL with its password masked."""
    if url.get_backend_name() == "sqlite" and (path := sqlite_file(url)) is not None:
        return str(path)
    return url.render_as_string(hide_password=True)


def database_name(engine: Engine) -> str:
    """The engine's database as messages and pages name it: the SQLite file, or the URL without its
    password."""
    return _database_name(engine.url)


_ELSEWHERE = "point TLREG_DB (or --db) elsewhere"


def _pg_fault(url: URL, exc: BaseException) -> DatabaseError | None:
    """One line for a write refused by a read-only PostgreSQL session (SQLSTATE 25006); None otherwise."""
    if getattr(exc, "sqlstate", None) != "25006":
        return None
    return DatabaseReadOnlyError(
        f"The registry database {_database_name(url)} was opened read-only ({' '.join(str(exc).split())}).",
        hint="This reader never writes: use a tlreg command that does.",
    )


def _sqlite_fault(url: URL, exc: BaseException, *, read_only: bool = False) -> DatabaseError | None:
    """One line for a SQLite error that is the database file's fault (not SQLite, damaged, read-only,
    cannot be opened), naming the file and the fix; None for any other error."""
    code = getattr(exc, "sqlite_errorname", "")
    if not code:
        return None
    name, cause = _database_name(url), str(exc)
    if read_only and code.startswith("SQLITE_READONLY"):
        return DatabaseReadOnlyError(
            f"The registry database {name} was opened read-only ({cause}).",
            hint="This reader never writes: use a tlreg command that does.",
        )
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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def schema_heads(engine: Engine) -> tuple[set[str], set[str]]:
    """(the database's current revisions, the revisions this tlreg knows as head)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, set(script.get_heads())


def at_head(engine: Engine) -> bool:
    """Whether the database records exactly this tlreg's schema head, asked with one plain query
    (no Alembic): the common case of every command, which then needs no migration."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        recorded = {row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}
    return recorded == {SCHEMA_HEAD}


def _check_known(engine: Engine, current: set[str]) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = current - known
    if unknown:
        raise DatabaseVersionError(
            f"The registry database {_database_name(engine.url)} has schema revision "
            f"{', '.join(sorted(unknown))}, written by a newer tlreg.",
            hint="Upgrade tlreg (pip install -U tlreg), or point --db / TLREG_DB at another database.",
        )


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        database = sqlite_file(engine.url)
        if database is None:
            yield
            return
        from filelock import FileLock  # with Alembic: only when the schema needs a migration

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


def _unreachable(engine: Engine, exc: OperationalError) -> DatabaseError:
    where = (
        "that it is writable"
        if engine.dialect.name == "sqlite"
        else "that the server is running and reachable, and the user and password"
    )
    cause = " ".join(str(exc.orig).split())  # one line: libpq spreads its messages over several
    return DatabaseError(
        f"Cannot open the registry database {_database_name(engine.url)}: "
        f"{cause if cause.endswith(('.', '?')) else cause + '.'}",
        hint=f"Check the path or URL (--db / TLREG_DB) and {where}.",
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to this tlreg's head; refuse a database from a newer tlreg."""
    try:
        if at_head(engine):
            return
        current, heads = schema_heads(engine)
        _check_known(engine, current)
        if current == heads:
            return
        with _migration_lock(engine):
            current, heads = schema_heads(engine)  # another process may have migrated meanwhile
            if current == heads:
                return
            from alembic import command

            with engine.begin() as conn:
                command.upgrade(_alembic_config(conn), "head")
    except OperationalError as exc:
        raise _unreachable(engine, exc) from exc


def open_engine(url: str | None = None) -> Engine:
    """A migrated engine, ready to use."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def open_read_only(url: str | None = None) -> Engine:
    """An engine on an existing registry database at this tlreg's schema, whose connections refuse
    every write; nothing is created or migrated, so a database that needs either is refused."""
    engine = make_engine(url, read_only=True)
    try:
        if at_head(engine):
            return engine
        current, heads = schema_heads(engine)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from exc
    _check_known(engine, current)
    name = _database_name(engine.url)
    if not current:
        raise DatabaseError(
            f"{name} is not a tlreg registry database: it has no tlreg tables.",
            hint="Point --db / TLREG_DB at the registry (`tlreg doctor` says which database tlreg uses).",
        )
    if current != heads:
        raise DatabaseVersionError(
            f"The registry database {name} has schema revision {', '.join(sorted(current))}, older than "
            f"this tlreg's ({', '.join(sorted(heads))}); a read-only reader does not upgrade it.",
            hint=f"Run any tlreg command that opens it for writing once (tlreg --db {_shell_url(engine)} "
            "registry list), then try again.",
        )
    return engine


def _shell_url(engine: Engine) -> str:
    """The database as a user would pass it to --db again (a SQLite file as sqlite:///PATH)."""
    path = sqlite_file(engine.url) if engine.dialect.name == "sqlite" else None
    return f"sqlite:///{path}" if path else engine.url.render_as_string(hide_password=True)
