"""The registry and the run records on a real PostgreSQL server, as a team would share them.

Needs ``TLREG_TEST_PG_URL`` (see ``conftest.py``: each test gets a database of its own, and
``TLREG_DB`` points at it); without it every test here is skipped and says why. The store and
run-record tests of ``test_store.py`` and ``test_runs.py`` also run on PostgreSQL, through the
``registry`` fixture (their modules are marked ``databases("sqlite", "postgresql")``); here are
the tests only PostgreSQL needs: migrations, time zones, JSON columns, concurrent writers.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _pg_writer
import pytest
from _pg_writer import PER_WRITER
from alembic import command
from sqlalchemy import create_engine, inspect, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, select
from test_aliases import concurrent_moves
from tlreg.registry import ModelSpec, Registry, RunStore
from tlreg.registry.db import _alembic_config, open_engine, schema_heads
from tlreg.registry.errors import DatabaseError, DatabaseVersionError
from tlreg.registry.outcomes import DatasetSignature, FinetuneOutcome, OutcomeStore
from tlreg.registry.runs import Run, RunResult, RunScore

pytestmark = pytest.mark.databases("postgresql")  # `registry` is a PostgreSQL one here

TABLES = {"model", "model_tag", "event", "run", "run_candidate", "run_score", "run_result"}
TABLES |= {"finetune_outcome", "dataset_signature", "alembic_version", "alias"}
WRITERS = 8


def test_an_empty_database_is_migrated_to_head(pg_url: str) -> None:
    engine = open_engine(pg_url)
    assert engine.dialect.name == "postgresql"
    assert set(inspect(engine).get_table_names()) >= TABLES
    current, heads = schema_heads(engine)
    assert current == heads and len(heads) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == sorted(heads)
        kinds = dict(
            conn.execute(
                text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'run' AND column_name IN ('created_at', 'options')"
                )
            ).all()
        )
    assert kinds == {"created_at": "timestamp with time zone", "options": "json"}


def test_an_older_schema_is_upgraded_keeping_its_rows(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")  # a registry from before run records existed
        conn.execute(
            text(
                "INSERT INTO model (ref, source, architecture, modality, preprocessing, extra, added_at, "
                "added_by) VALUES ('timm:old', 'timm', 'resnet18', 'image', '{}', '{}', now(), 'alice')"
            )
        )
    reg = Registry(pg_url)
    assert [r.ref for r in reg.list()] == ["timm:old"]
    current, heads = schema_heads(reg.engine)
    assert current == heads and set(inspect(reg.engine).get_table_names()) >= TABLES


def test_a_database_from_a_newer_tlreg_is_refused(pg_url: str) -> None:
    engine = open_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(DatabaseVersionError, match=r"9999_from_the_future, written by a newer tlreg"):
        Registry(pg_url)


def test_times_come_back_aware_and_in_order(pg_url: str) -> None:
    """timestamptz stores instants: whatever the session's time zone, times read back equal what was
    written, aware, and ``--since`` compares instants."""
    with create_engine(pg_url, poolclass=NullPool).begin() as conn:
        conn.exec_driver_sql(
            f"ALTER DATABASE \"{make_url(pg_url).database}\" SET timezone = 'America/New_York'"
        )
    registry = Registry(pg_url)
    with registry.engine.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar() == "America/New_York"
    registry.add(ModelSpec(ref="timm:a", source="timm", architecture="a", modality="image"))
    store = RunStore(registry.engine)
    store.start(Run(id="r1", created_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC)))
    [event] = registry.events()
    assert event.at.tzinfo is not None and abs(event.at - datetime.now(UTC)) < timedelta(minutes=5)
    run = store.get("r1")[0]
    assert run.created_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert [r.id for r in store.list(since=datetime(2026, 11, 1, 11, 59))] == ["r1"]
    assert store.list(since=datetime(2026, 11, 1, 12, 1)) == []


def test_json_columns_keep_nested_values(registry: Registry) -> None:
    store = RunStore(registry.engine)
    options = {"models": ["timm:*"], "nested": {"a": [1, 2.5, None, True]}, "unicode": "données"}
    store.start(Run(id="r1", options=options, classes=["cat", "dog"], sample_ids=["a/1.png", "b/2.png"]))
    store.add(RunScore(run_id="r1", ref="timm:a", estimator="logme", value=None, error="one class"))
    store.finish(RunResult(run_id="r1", ranking=[{"ref": "timm:a", "scores": {"logme": None}}]))
    run, _, [score], result = store.get("r1")
    assert run.options == options and run.classes == ["cat", "dog"]
    assert score.value is None and score.error == "one class"
    assert result.ranking == [{"ref": "timm:a", "scores": {"logme": None}}]
    outcomes = OutcomeStore(registry.engine)
    outcomes.record(FinetuneOutcome(run_id="r1", ref="timm:a", fingerprint="f", metrics={"loss": [0.5]}))
    outcomes.add_signature(DatasetSignature(fingerprint="f", probe="p", vector=[0.25, -1.0]))
    assert outcomes.add_signature(DatasetSignature(fingerprint="f", probe="p", vector=[9.0])).vector == [
        0.25,
        -1.0,
    ]
    assert [o.metrics for o in outcomes.outcomes_for_dataset("f")] == [{"loss": [0.5]}]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_abandoned_runs_are_marked_failed(registry: Registry) -> None:
    store = RunStore(registry.engine)
    for run_id in ("dead", "mine"):
        store.start(Run(id=run_id))
    with Session(registry.engine) as session:  # what a process killed mid-run would have left
        session.exec(update(Run).where(Run.id == "dead").values(pid=_dead_pid()))
        session.commit()
    assert store.mark_abandoned() == ["dead"]
    status = {r.id: (r.status, r.failure) for r in store.list()}
    assert status["dead"][0] == "failed" and "ended without finishing" in status["dead"][1]
    assert status["mine"] == ("running", None)
    assert store.mark_abandoned() == []


def test_eight_writer_processes_lose_nothing(pg_url: str) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_pg_writer.write, args=(pg_url, w, barrier)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    reg = Registry(pg_url)
    n = WRITERS * PER_WRITER
    assert len(reg.list()) == n + 1
    assert len(reg.list(tags=["all"])) == n
    assert reg.get("timm:shared").tags == sorted(["everyone", *(f"w{w}" for w in range(WRITERS))])
    actions = [e.action for e in reg.events()]
    assert actions.count("add") == n + 1  # the shared ref is added once, whoever came first
    assert actions.count("tag") == n + WRITERS  # and each writer's tag on it is one event
    runs = RunStore(reg.engine).list()
    assert len(runs) == n // 5 and {r.status for r in runs} == {"done"}
    with Session(reg.engine) as session:
        assert len(session.exec(select(RunScore)).all()) == len(runs)
        assert len(session.exec(select(RunResult)).all()) == len(runs)


def test_two_processes_moving_one_alias_at_once_on_postgres(pg_url: str) -> None:
    concurrent_moves(pg_url)


def test_recommend_records_its_run_on_postgres(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    from tlreg.advisor import estimators, recommend
    from tlreg.advisor.baselines import RAW_LABELS

    result = recommend(image_folder, registry=registry, workers=0, bootstrap=5)
    run, candidates, scores, final = RunStore(registry.engine).get(result.run_id)
    assert run.status == "done" and run.finished_at > run.created_at
    assert {c.ref for c in candidates} >= set(tiny_image_models)
    # the raw-input baseline has no source head: estimators that read one (NCE, LEEP) do not apply to
    # it and are not recorded, while the result's row shows them empty
    raw = RAW_LABELS["image"]
    scored = {
        (r.ref, e)
        for r in result.ranking + result.baselines
        for e in r.scores
        if e != "history" and not (r.ref == raw and estimators.get(e).needs_source_probs)
    }
    assert sorted((s.ref, s.estimator) for s in scores) == sorted(scored) and scored
    assert final.best_ref == result.best.ref
    assert [r["ref"] for r in final.ranking][: len(result.ranking)] == [r.ref for r in result.ranking]


# --- without a server: what a user with a wrong URL or a missing driver sees --------------------


def test_an_unreachable_server_is_one_clear_line() -> None:
    pytest.importorskip("psycopg", reason='needs psycopg: pip install "tlreg[postgres]"')
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DatabaseError) as info:
        Registry(f"postgresql://team:secret@127.0.0.1:{port}/registry")  # bare scheme: psycopg 3
    message = str(info.value)
    assert "\n" not in message and "secret" not in message
    assert message.startswith(
        f"Cannot open the registry database postgresql+psycopg://team:***@127.0.0.1:{port}"
    )
    assert "server is running and reachable" in message


def test_a_missing_driver_names_it_and_the_extra() -> None:
    if importlib.util.find_spec("pg8000"):
        pytest.skip("pg8000 is installed here: no driver is missing")
    with pytest.raises(DatabaseError, match=r"needs the Python driver 'pg8000'.*tlreg\[postgres\]"):
        Registry("postgresql+pg8000://team@127.0.0.1/registry")


def test_a_read_only_registry_refuses_writes_on_the_server(pg_url: str) -> None:
    Registry(pg_url).add(ModelSpec(ref="timm:kept", source="timm", architecture="resnet18", modality="image"))
    reg = Registry(pg_url, read_only=True)
    assert [r.ref for r in reg.list()] == ["timm:kept"]
    with pytest.raises(DatabaseError, match=r"opened read-only.*read-only transaction"):
        reg.add(ModelSpec(ref="timm:new", source="timm", architecture="resnet18", modality="image"))
    with pytest.raises(DatabaseError, match="read-only transaction"), reg.engine.begin() as conn:
        conn.execute(text("DELETE FROM model"))
    reg.engine.dispose()
    assert [r.ref for r in Registry(pg_url).list()] == ["timm:kept"]
