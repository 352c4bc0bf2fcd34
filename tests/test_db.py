"""The registry database: migrations on open, SQLite tuning, newer schemas refused, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, text
from tlreg.registry import ModelSpec, Registry
from tlreg.registry.db import SCHEMA_HEAD, make_engine, open_engine, schema_heads
from tlreg.registry.errors import (
    DatabaseCorruptError,
    DatabaseError,
    DatabaseReadOnlyError,
    DatabaseVersionError,
)


def test_migrates_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'reg.db'}"
    engine = open_engine(url)
    assert {"model", "model_tag", "event", "alembic_version"} <= set(inspect(engine).get_table_names())
    current, heads = schema_heads(engine)
    assert current == heads and heads


def test_the_known_schema_head_is_alembics_head(tmp_path: Path) -> None:
    # SCHEMA_HEAD lets a registry at the head open without importing Alembic: a new migration must move it
    engine = open_engine(f"sqlite:///{tmp_path / 'reg.db'}")
    assert schema_heads(engine) == ({SCHEMA_HEAD}, {SCHEMA_HEAD})


def test_a_registry_from_before_aliases_and_lineage_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    from alembic import command
    from tlreg.registry.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'reg.db'}"
    with make_engine(url).begin() as conn:
        command.upgrade(_alembic_config(conn), "0004")
    old = Registry(engine=make_engine(url))  # as the previous tlreg wrote it: not migrated further
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO model (ref, source, architecture, modality, preprocessing, extra, added_at, "
                "added_by) VALUES ('timm:old', 'timm', 'r18', 'image', '{}', '{}', '2026-11-01', 'alice')"
            )
        )
    reg = Registry(url)
    assert [(r.ref, r.parent_ref) for r in reg.list()] == [("timm:old", None)]
    reg.set_alias("champion", "timm:old")
    assert reg.get("@champion").ref == "timm:old"
    assert {"alias"} <= set(inspect(reg.engine).get_table_names())
    with reg.engine.begin() as conn:  # and back: the downgrade drops what the upgrade added
        command.downgrade(_alembic_config(conn), "0004")
    tables = inspect(make_engine(url))
    assert "alias" not in tables.get_table_names()
    assert "parent_ref" not in {c["name"] for c in tables.get_columns("model")}


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'reg.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 10_000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_a_database_from_a_newer_tlreg_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(DatabaseVersionError, match=r"newer tlreg.*Upgrade tlreg"):
        open_engine(url)


def test_an_unusable_url_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="Cannot parse the database URL"):
        make_engine("not a url")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatabaseError, match="Cannot open the registry database"):
        open_engine(f"sqlite:///{tmp_path / 'file' / 'reg.db'}")


def _real_database(path: Path) -> str:
    """A registry database with one model in it, closed (its -wal and -shm files gone)."""
    url = f"sqlite:///{path}"
    reg = Registry(url)
    reg.add(_spec(0, 0))
    reg.engine.dispose()
    return url


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    noise = tmp_path / "noise.db"
    noise.write_bytes(np.random.default_rng(0).bytes(20_000))
    truncated = tmp_path / "truncated.db"
    _real_database(truncated)
    truncated.write_bytes(truncated.read_bytes()[:3000])
    for path, cause in ((noise, "not a SQLite database"), (truncated, "damaged")):
        before = path.read_bytes()
        with pytest.raises(DatabaseCorruptError, match=rf"{re.escape(str(path))}.* {cause}") as info:
            Registry(f"sqlite:///{path}")
        message = str(info.value)
        assert "restore it from a backup or point TLREG_DB" in message and "\n" not in message
        assert info.value.exit_code == 1 and path.read_bytes() == before


@pytest.fixture(params=["sqlite read-only open", "immutable file", "chmod 0444 in a 0555 folder"])
def read_only_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real registry database that really cannot be written, three ways; (URL to open it, its file)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "reg.db"
    url = _real_database(path)
    if request.param == "sqlite read-only open":
        yield f"sqlite:///file:{path}?mode=ro&uri=true", path
    elif request.param == "immutable file":
        chattr = shutil.which("chattr")
        done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True) if chattr else None
        if not done or done.returncode:
            pytest.skip(f"cannot make a file immutable here: {done.stderr.strip() if done else 'no chattr'}")
        try:
            yield url, path
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits; the read-only open and the immutable file cover root")
        path.chmod(0o444)
        folder.chmod(0o555)
        try:
            yield url, path
        finally:
            folder.chmod(0o755)
            path.chmod(0o644)


def test_writing_a_read_only_database_is_one_clear_error(
    read_only_db: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, path = read_only_db
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        DatabaseReadOnlyError, match=rf"{re.escape(str(path))} is read-only.*permissions"
    ) as info:
        Registry(url).add(_spec(1, 1))
    message = str(info.value)
    assert "INSERT" not in message and "timm:fake_1_1" not in message and "\n" not in message
    assert info.value.exit_code == 1
    assert not (tmp_path / "file:").exists(), "a sqlite URI made a folder named 'file:'"


def test_in_memory_registry_for_tests_and_notebooks() -> None:
    reg = Registry("sqlite://")
    reg.add(_spec(0, 0))
    assert [r.ref for r in reg.list()] == ["timm:fake_0_0"]


def _spec(worker: int, i: int) -> ModelSpec:
    return ModelSpec(
        ref=f"timm:fake_{worker}_{i}",
        source="timm",
        architecture="resnet18",
        modality="image",
        revision=f"{worker:02d}{i:038d}",
        tags=[f"w{worker}"],
    )


def _writer(url: str, worker: int, count: int) -> None:
    reg = Registry(url)  # each process opens (and may migrate) the database itself
    for i in range(count):
        reg.add(_spec(worker, i))
        if i % 10 == 0:
            reg.tag(f"timm:fake_{worker}_{i}", add=["tenth"])


def test_four_processes_adding_fifty_refs_each_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    reg = Registry(url)
    assert len(reg.list()) == 200
    assert len(reg.list(tags=["tenth"])) == 20
    assert len([e for e in reg.events() if e.action == "add"]) == 200


# -- opened read-only (tlreg ui) --------------------------------------------------------------------


def test_a_read_only_registry_reads_and_every_write_fails_at_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "odd # name%.db"  # characters a SQLite URI would read as a fragment or an escape
    url = _real_database(path)
    before = path.read_bytes()
    reg = Registry(url, read_only=True)
    assert [r.ref for r in reg.list()] == ["timm:fake_0_0"] and reg.read_only
    with pytest.raises(DatabaseReadOnlyError, match=rf"{re.escape(str(path))} was opened read-only"):
        reg.add(_spec(0, 1))
    with pytest.raises(DatabaseReadOnlyError), reg.engine.begin() as conn:  # below the store, too
        conn.execute(text("DELETE FROM model"))
    reg.engine.dispose()
    assert path.read_bytes() == before
    assert [r.ref for r in Registry(url).list()] == ["timm:fake_0_0"]


def test_a_read_only_open_creates_nothing_and_migrates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "reg.db"
    with pytest.raises(DatabaseError, match=rf"{re.escape(str(missing))} does not exist.*doctor"):
        Registry(f"sqlite:///{missing}", read_only=True)
    assert not (tmp_path / "no").exists()

    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(DatabaseError, match="not a tlreg registry database"):
        Registry(f"sqlite:///{empty}", read_only=True)
    assert empty.read_bytes() == b""

    from alembic import command
    from tlreg.registry.db import _alembic_config

    old = tmp_path / "old.db"
    with make_engine(f"sqlite:///{old}").begin() as conn:
        command.upgrade(_alembic_config(conn), "0004")
    with pytest.raises(DatabaseVersionError, match=r"older than this tlreg.*registry list") as info:
        Registry(f"sqlite:///{old}", read_only=True)
    assert "\n" not in str(info.value)
    assert schema_heads(make_engine(f"sqlite:///{old}"))[0] == {"0004"}


def test_a_read_only_open_refuses_a_newer_schema(tmp_path: Path) -> None:
    url = _real_database(tmp_path / "reg.db")
    with open_engine(url).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(DatabaseVersionError, match=r"newer tlreg.*Upgrade tlreg"):
        Registry(url, read_only=True)
