"""Shared fixtures: every test gets its own tlreg home and Hugging Face cache, and no network; tiny
models and data (made by ``helpers.py``); and the ``registry`` on SQLite or PostgreSQL.

``registry`` is a fresh SQLite registry unless a test module asks for more databases with
``pytestmark = pytest.mark.databases("sqlite", "postgresql")``: its tests then run once per database.
PostgreSQL needs ``TLREG_TEST_PG_URL`` (an SQLAlchemy URL of a server and a role that may create
databases; ``.ci/test-env`` starts one on loopback and sets it); without it those runs are skipped and
say why. Each such test gets a database of its own, created from that URL and dropped afterwards,
and ``TLREG_DB`` points at it, so code that opens the default registry (the CLI) uses it too.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import save_tiny_bert, save_tiny_timm, save_tiny_vit, write_image_folder

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class NetworkBlockedError(RuntimeError):
    """Raised by the socket guard: a test tried to leave the machine."""


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a non-local socket: tests never reach the network."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or host in LOOPBACK:
            return real_connect(self, address)
        raise NetworkBlockedError(f"test tried to reach the network: {address!r}")

    real_create = socket.create_connection

    def guarded_create(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        if address[0] in LOOPBACK:
            return real_create(address, *args, **kwargs)
        raise NetworkBlockedError(f"test tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", guarded_create)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op torch thread: the tests' models are tiny, and on a small shared machine two threads
    contending over tiny operations are far slower than one (measured ~100x on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A fresh TLREG_HOME and Hugging Face cache per test, offline, whatever the developer's environment.
    COLUMNS and LINES go too: a piped table is as wide as COLUMNS says, and pytest-xdist's workers (or a
    CI shell) set COLUMNS=80, which folds the cells that tests read; a test that needs a width sets one."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    monkeypatch.setenv("TLREG_HOME", str(home / "tlreg"))
    monkeypatch.delenv("TLREG_DB", raising=False)
    monkeypatch.delenv("TLREG_CACHE", raising=False)
    monkeypatch.delenv("TLREG_DEBUG", raising=False)
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    return home


# --- tiny models and data (built by tests/helpers.py) ------------------------------------------


@pytest.fixture
def hf_cache(isolated_home: Path) -> Path:
    cache = isolated_home / "hf" / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture
def tiny_timm_dir(tmp_path: Path) -> Path:
    return save_tiny_timm(tmp_path / "tiny-timm")


@pytest.fixture
def tiny_vit_dir(tmp_path: Path) -> Path:
    return save_tiny_vit(tmp_path / "tiny-vit")


@pytest.fixture
def tiny_bert_dir(tmp_path: Path) -> Path:
    return save_tiny_bert(tmp_path / "tiny-bert")


# --- the registry, on every database a module asks for -------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of a module (or a test) marked ``databases(...)`` run once per database named there."""
    marker = metafunc.definition.get_closest_marker("databases")
    if marker is not None and "database" in metafunc.fixturenames:
        metafunc.parametrize("database", marker.args, indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """The database the ``registry`` fixture opens: SQLite unless the test is parametrised."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server URL from ``TLREG_TEST_PG_URL``; skip (saying why) when unset, fail when unreachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    url = os.environ.get("TLREG_TEST_PG_URL")
    if not url:
        pytest.skip(
            "PostgreSQL tests skipped: TLREG_TEST_PG_URL is not set (.ci/test-env starts a server, sets it; "
            "e.g. TLREG_TEST_PG_URL=postgresql+psycopg://USER@127.0.0.1:5432/postgres)"
        )
    pytest.importorskip("psycopg", reason='PostgreSQL tests skipped: pip install "tlreg[postgres]"')
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:  # unreachable or wrong credentials: fail here, loudly
        conn.execute(text("SELECT 1"))
    engine.dispose()
    return url


@pytest.fixture
def pg_url(pg_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty database for this test (also in ``TLREG_DB``); dropped afterwards."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"tlreg_test_{secrets.token_hex(6)}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("TLREG_DB", url)
    yield url
    with admin.connect() as conn:  # FORCE: engines the test left open still hold connections
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def registry(database: str, isolated_home: Path, request: pytest.FixtureRequest):
    """A registry on a fresh database: a SQLite file under the test's TLREG_HOME, or a PostgreSQL
    database of its own (see the module doc)."""
    from tlreg.registry import Registry

    if database == "postgresql":
        return Registry(request.getfixturevalue("pg_url"))
    if database != "sqlite":
        raise ValueError(f"no registry fixture for database {database!r}")
    return Registry()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture
def tiny_image_models(registry, tmp_path: Path) -> list[str]:
    """Two tiny timm models registered as local folders (saved by timm's save_for_hf)."""
    refs = []
    for arch, seed in (("test_resnet", 0), ("test_vit", 1)):
        folder = save_tiny_timm(tmp_path / f"m-{arch}", arch=arch, num_classes=5, seed=seed)
        refs.append(registry.add_ref(str(folder))[0].ref)
    return refs
