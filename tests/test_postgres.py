"""The registry and the run records on a real PostgreSQL server, as a team would share them.

Needs ``TLREG_TEST_PG_URL`` (an SQLAlchemy URL of a server and a role that may create databases;
``.ci/run`` starts one on loopback and sets it); without it every test here is skipped and says why.
Each test gets a database of its own, created from that URL and dropped afterwards, and
``TLREG_DB`` points at it, so code that opens the default registry (the CLI) uses it too.

The store and run-record tests of ``test_store.py`` and ``test_runs.py`` run here a second time,
unchanged, on PostgreSQL: this module's ``registry`` fixture replaces conftest's SQLite one.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
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
from test_aliases import (  # two: the aliases' fixture, here on this module's PostgreSQL registry
    concurrent_moves,
    test_an_alias_on_a_removed_entry_says_so,
    test_an_alias_points_at_one_entry_and_every_move_is_in_its_history,
    test_where_aliases_pointed_at_any_moment_is_replayed_from_the_log,
    two,  # noqa: F401
)
from test_lineage import test_a_cycle_in_lineage_is_refused_in_one_line
from test_runs import (
    test_a_closed_record_is_never_rewritten,
    test_a_real_run_records_everything,
    test_cli_list_and_show,
    test_list_is_newest_first_and_filters_by_date,
    test_registry_history_says_who_did_what_when,
    test_run_ids_resolve_by_unique_prefix,
)
from test_store import (
    test_a_moved_revision_updates_the_entry_and_is_an_event,
    test_adding_the_same_ref_twice_is_idempotent,
    test_list_filters,
    test_models_with_billions_of_parameters_fit,
    test_pinning_an_unpinned_entry_on_first_load,
    test_remove_keeps_the_history,
    test_short_names_and_pinned_hf_refs_find_their_entry,
    test_tags_are_added_and_removed_with_events,
    test_unknown_ref_suggests_close_matches,
    test_unsupported_modality_is_refused_by_name,
)
from tlreg.registry import ModelSpec, Registry, RunStore
from tlreg.registry.db import _alembic_config, open_engine, schema_heads
from tlreg.registry.errors import DatabaseError, DatabaseVersionError
from tlreg.registry.outcomes import DatasetSignature, FinetuneOutcome, OutcomeStore
from tlreg.registry.runs import Run, RunResult, RunScore

REUSED = (  # collected here too, so they run against PostgreSQL through the fixtures below
    test_adding_the_same_ref_twice_is_idempotent,
    test_a_moved_revision_updates_the_entry_and_is_an_event,
    test_pinning_an_unpinned_entry_on_first_load,
    test_tags_are_added_and_removed_with_events,
    test_remove_keeps_the_history,
    test_unknown_ref_suggests_close_matches,
    test_short_names_and_pinned_hf_refs_find_their_entry,
    test_list_filters,
    test_models_with_billions_of_parameters_fit,
    test_unsupported_modality_is_refused_by_name,
    test_a_closed_record_is_never_rewritten,
    test_run_ids_resolve_by_unique_prefix,
    test_list_is_newest_first_and_filters_by_date,
    test_a_real_run_records_everything,
    test_cli_list_and_show,
    test_registry_history_says_who_did_what_when,
    test_an_alias_points_at_one_entry_and_every_move_is_in_its_history,
    test_where_aliases_pointed_at_any_moment_is_replayed_from_the_log,
    test_an_alias_on_a_removed_entry_says_so,
    test_a_cycle_in_lineage_is_refused_in_one_line,
)
TABLES = {"model", "model_tag", "event", "run", "run_candidate", "run_score", "run_result"}
TABLES |= {"finetune_outcome", "dataset_signature", "alembic_version", "alias"}
WRITERS = 8


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server URL from ``TLREG_TEST_PG_URL``; skip (saying why) when unset, fail when unreachable."""
    url = os.environ.get("TLREG_TEST_PG_URL")
    if not url:
        pytest.skip(
            "PostgreSQL tests skipped: TLREG_TEST_PG_URL is not set (.ci/run starts a server and sets it; "
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
def registry(pg_url: str) -> Registry:
    """Overrides conftest's SQLite registry for every test in this module (the reused ones too)."""
    return Registry(pg_url)


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
    from tlreg.advisor import recommend

    result = recommend(image_folder, registry=registry, workers=0, bootstrap=5)
    run, candidates, scores, final = RunStore(registry.engine).get(result.run_id)
    assert run.status == "done" and run.finished_at > run.created_at
    assert {c.ref for c in candidates} >= set(tiny_image_models)
    scored = {(r.ref, e) for r in result.ranking + result.baselines for e in r.scores if e != "history"}
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
