"""The registry database: migrations on open, SQLite tuning, newer schemas refused, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from tlreg.registry import ModelSpec, Registry
from tlreg.registry.db import make_engine, open_engine, schema_heads
from tlreg.registry.errors import DatabaseError, DatabaseVersionError


def test_migrates_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'reg.db'}"
    engine = open_engine(url)
    assert {"model", "model_tag", "event", "alembic_version"} <= set(inspect(engine).get_table_names())
    current, heads = schema_heads(engine)
    assert current == heads and heads


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
