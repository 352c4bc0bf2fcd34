"""Run records: complete, append-only, found by id prefix, listed; abandoned runs marked failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import save_tiny_timm
from tlreg.advisor import recommend
from tlreg.advisor.audit.records import list_runs, load_run, parse_since
from tlreg.advisor.rank import DEFAULT_ESTIMATORS
from tlreg.advisor.verdicts import VERDICT_ESTIMATORS
from tlreg.cli.main import TlregGroup
from tlreg.cli.runs_cmd import report, runs
from tlreg.cli.state import State
from tlreg.registry import ModelSpec, OutcomeStore, Registry, RunStore
from tlreg.registry.errors import BadInputError, DatabaseError, UnknownRunError
from tlreg.registry.outcomes import FinetuneOutcome
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore

pytestmark = pytest.mark.databases("sqlite", "postgresql")  # the store on both: see conftest.py


DEFAULT = list(DEFAULT_ESTIMATORS["classification"])


def tlreg_cli() -> click.Group:
    """The two commands wired into a group as ``cli/main.py`` wires them (errors -> one line, exit code)."""

    @click.group(cls=TlregGroup)
    @click.pass_context
    def group(ctx: click.Context) -> None:
        ctx.obj = State()

    group.add_command(runs)
    group.add_command(report)
    return group


def invoke(*args: str):
    return CliRunner().invoke(tlreg_cli(), list(args))


def open_run(store: RunStore, run_id: str, **fields) -> Run:
    return store.start(Run(id=run_id, data_path="/data", fingerprint="f" * 64, n_samples=4, **fields))


def snapshot(store: RunStore, run_id: str) -> str:
    run, candidates, scores, result = store.get(run_id)
    rows = [run, *candidates, *scores, *([result] if result else [])]
    return json.dumps([r.model_dump(mode="json") for r in rows], sort_keys=True)


def test_a_closed_record_is_never_rewritten(registry: Registry) -> None:
    store = RunStore(registry.engine)
    open_run(store, "r-done")
    store.add(RunCandidate(run_id="r-done", ref="timm:a", revision="1" * 40, cache_key="k"))
    store.add(RunScore(run_id="r-done", ref="timm:a", estimator="logme", value=1.5, seconds=0.1))
    assert store.finish(RunResult(run_id="r-done", best_ref="timm:a", reason="only one"))
    before = snapshot(store, "r-done")

    assert store.finish(RunResult(run_id="r-done", best_ref="timm:b", reason="rewritten")) is False
    assert store.fail("r-done", "too late") is False
    with pytest.raises(DatabaseError, match="r-done is done"):
        store.add(RunScore(run_id="r-done", ref="timm:b", estimator="knn", value=0.5))
    assert snapshot(store, "r-done") == before

    open_run(store, "r-failed")
    assert store.fail("r-failed", "boom")
    before = snapshot(store, "r-failed")
    assert store.finish(RunResult(run_id="r-failed", best_ref="timm:a")) is False
    assert store.fail("r-failed", "another reason") is False
    assert snapshot(store, "r-failed") == before
    run, _, _, result = store.get("r-failed")
    assert run.status == "failed" and run.failure == "boom" and result is None


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.databases("sqlite")  # SQLite SQL; test_postgres.py has its own
def test_abandoned_runs_are_marked_failed_and_live_ones_left_alone(registry: Registry) -> None:
    store = RunStore(registry.engine)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for run_id in ("dead", "zombie", "reused", "alive", "elsewhere", "mine"):
            open_run(store, run_id)
        with registry.engine.begin() as conn:  # what other processes would have written
            an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
            for run_id, pid, host, created in (
                ("dead", _dead_pid(), None, None),
                ("zombie", zombie.pid, None, None),
                ("reused", sleeper.pid, None, an_hour_ago),  # its pid now names a younger process
                ("alive", sleeper.pid, None, None),
                ("elsewhere", _dead_pid(), "another-host", None),
            ):
                conn.exec_driver_sql(
                    "UPDATE run SET pid = ?, host = COALESCE(?, host), created_at = COALESCE(?, created_at) "
                    "WHERE id = ?",
                    (pid, host, created and created.replace(tzinfo=None).isoformat(sep=" "), run_id),
                )
        zombie.send_signal(signal.SIGKILL)  # not reaped yet: a zombie still answers kill(pid, 0)
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)

        assert sorted(store.mark_abandoned()) == ["dead", "reused", "zombie"]
        status = {r.id: (r.status, r.failure) for r in store.list()}
        assert status["dead"][0] == "failed" and "ended without finishing" in status["dead"][1]
        assert {status[k][0] for k in ("alive", "elsewhere", "mine")} == {"running"}
        assert store.mark_abandoned() == []  # nothing left to mark, nothing rewritten
    finally:
        for proc in (sleeper, zombie):
            proc.kill()
            proc.wait()


def test_run_ids_resolve_by_unique_prefix(registry: Registry) -> None:
    store = RunStore(registry.engine)
    for run_id in ("20261101-100000-aaaaaa", "20261101-100000-aaaabb", "20261102-090000-cccccc"):
        open_run(store, run_id)
    assert store.resolve("20261102") == "20261102-090000-cccccc"
    assert store.get("20261101-100000-aaaab")[0].id == "20261101-100000-aaaabb"
    with pytest.raises(UnknownRunError, match="matches several runs") as info:
        store.get("20261101")
    assert info.value.exit_code == 2
    with pytest.raises(UnknownRunError, match="No run with id 'nope'"):
        store.resolve("nope")
    with pytest.raises(UnknownRunError, match="Did you mean: 20261102-090000-cccccc"):
        store.resolve("20261102-090000-cccccd")


def test_list_is_newest_first_and_filters_by_date(registry: Registry) -> None:
    store = RunStore(registry.engine)
    now = datetime.now(UTC)
    for days, run_id in ((10, "old"), (3, "mid"), (0, "new")):
        open_run(store, run_id, created_at=now - timedelta(days=days))
    store.finish(RunResult(run_id="mid", best_ref="timm:x"))
    assert [s.id for s in list_runs(registry=registry)] == ["new", "mid", "old"]
    assert [s.id for s in list_runs(since="5d", registry=registry)] == ["new", "mid"]
    since = (now - timedelta(days=4)).date().isoformat()
    assert [s.id for s in list_runs(since=since, registry=registry)] == ["new", "mid"]
    assert [(s.pick, s.status) for s in list_runs(registry=registry)][1] == ("timm:x", "done")
    assert parse_since("2026-11-01T14:00+01:00") == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert parse_since("12h", now=now) == now - timedelta(hours=12)
    with pytest.raises(BadInputError, match="--since 'last tuesday'"):
        parse_since("last tuesday")


def test_a_real_run_records_everything(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    registry.add(  # a model that cannot load offline: skipped, with its reason in the record
        ModelSpec(
            ref="timm:test_efficientnet.r160_in1k",
            source="timm",
            architecture="test_efficientnet",
            modality="image",
            num_classes=1000,
            extra={"hf_hub_id": "timm/test_efficientnet.r160_in1k"},
        )
    )
    result = recommend(image_folder, registry=registry, workers=0, bootstrap=20)
    OutcomeStore(registry.engine).record(
        FinetuneOutcome(run_id=result.run_id, ref=result.best.ref, fingerprint="f", val_accuracy=0.9)
    )
    record = load_run(result.run_id[:18], registry=registry)
    doc = record.to_dict()
    assert doc["status"] == "done" and doc["finished_at"] and doc["user"] and doc["host"] and doc["pid"]
    assert {"tlreg", "torch", "timm", "transformers", "device", "python"} <= set(doc["environment"])
    assert doc["options"]["workers"] == 0 and doc["options"]["bootstrap"] == 20
    assert doc["data"]["fingerprint"] == result.data["fingerprint"] and len(doc["data"]["sample_ids"]) == 18

    by_ref = {c["ref"]: c for c in doc["candidates"]}
    for ref in tiny_image_models:
        cand = by_ref[ref]
        assert cand["status"] == "ok" and len(cand["revision"]) == 64 and len(cand["cache_key"]) == 64
        assert {s["estimator"] for s in cand["scores"]} == {*DEFAULT, *VERDICT_ESTIMATORS["classification"]}
        assert all(s["seconds"] >= 0 and s["value"] is not None for s in cand["scores"])
        assert by_ref[f"{ref} (random init)"]["baseline_of"] == ref
    skipped = by_ref["timm:test_efficientnet.r160_in1k"]
    assert skipped["status"] == "skipped" and "HF_HUB_OFFLINE" in skipped["reason"]

    final = doc["result"]
    assert final["pick"] == result.best.ref and final["reason"] == result.reason
    assert [r["ref"] for r in final["ranking"]] == [r.ref for r in result.ranking]
    for row in final["ranking"]:
        assert {"combined", "p_best", "rank_interval", "negative_transfer", "scores", "revision"} <= set(row)
        assert row["p_best"] is not None and len(row["rank_interval"]) == 2
    assert final["skipped"] == [{"ref": "timm:test_efficientnet.r160_in1k", "reason": skipped["reason"]}]
    assert final["warnings"] == result.warnings and final["estimators"][: len(DEFAULT)] == DEFAULT
    assert [f["val_accuracy"] for f in doc["finetunes"]] == [0.9]


def test_cli_list_and_show(registry: Registry, image_folder: Path, tmp_path: Path) -> None:
    ref = registry.add_ref(str(save_tiny_timm(tmp_path / "m", arch="test_vit", num_classes=3)))[0].ref
    result = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)

    listed = invoke("runs", "list")
    assert listed.exit_code == 0, listed.output
    assert result.run_id in listed.stdout and "done" in listed.stdout and str(image_folder) in listed.stdout
    [row] = json.loads(invoke("runs", "list", "--json").stdout)
    assert row["id"] == result.run_id and row["pick"] == ref and row["samples"] == 18
    assert json.loads(invoke("runs", "list", "--since", "2000-01-01", "--json").stdout) == [row]
    assert json.loads(invoke("runs", "list", "--since", "2999-01-01", "--json").stdout) == []

    shown = invoke("runs", "show", result.run_id[:17])
    assert shown.exit_code == 0, shown.output
    assert f"Pick: {ref}" in shown.stdout and result.data["fingerprint"] in shown.stdout
    doc = json.loads(invoke("runs", "show", result.run_id, "--json").stdout)
    assert doc == json.loads(json.dumps(load_run(result.run_id, registry=registry).to_dict(), default=str))

    bad = invoke("runs", "show", "nope")
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["Error: No run with id 'nope'. See `tlreg runs list`."]
    bad_since = invoke("runs", "list", "--since", "yesterday-ish")
    assert bad_since.exit_code == 2 and "--since 'yesterday-ish'" in bad_since.stderr


@pytest.mark.databases("sqlite")  # SQLite SQL; test_postgres.py has its own
def test_listing_marks_abandoned_runs(registry: Registry) -> None:
    store = RunStore(registry.engine)
    open_run(store, "killed")
    with registry.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE run SET pid = ? WHERE id = 'killed'", (_dead_pid(),))
    [row] = json.loads(invoke("runs", "list", "--json").stdout)
    assert row["status"] == "failed" and "ended without finishing" in row["failure"]


def test_registry_history_says_who_did_what_when(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = save_tiny_timm(tmp_path / "m")
    monkeypatch.setenv("TLREG_USER", "alice")
    ref = registry.add_ref(str(folder))[0].ref
    registry.tag(ref, add=["prod"])
    monkeypatch.setenv("TLREG_USER", "bob")
    registry.tag(ref, remove=["prod"])
    save_tiny_timm(folder, seed=7)  # new weights: the entry's revision moves when it is next loaded
    registry.load(ref)
    registry.remove(ref)
    events = registry.events(ref)
    assert [(e.action, e.user) for e in events] == [
        ("add", "alice"),
        ("tag", "alice"),
        ("untag", "bob"),
        ("revision", "bob"),
        ("remove", "bob"),
    ]
    assert events[3].detail["old"] != events[3].detail["new"]
    assert all(e.host for e in events) and [e.at for e in events] == sorted(e.at for e in events)
