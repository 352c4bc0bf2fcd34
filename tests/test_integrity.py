"""The audit trail under stress: concurrent writers on one SQLite file, and a run killed mid-way."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import write_image_folder
from tlreg.advisor.audit.records import list_runs, load_run
from tlreg.advisor.rank import DEFAULT_ESTIMATORS
from tlreg.advisor.verdicts import VERDICT_ESTIMATORS
from tlreg.registry import Registry, RunStore

RECOMMEND = (
    "import sys\n"
    "from tlreg.advisor import recommend\n"
    "r = recommend(sys.argv[1], workers=0, baselines=False, bootstrap=0)\n"
    "print(r.run_id)\n"
)

DEFAULT = list(DEFAULT_ESTIMATORS["classification"])
SCORED = [*DEFAULT, *VERDICT_ESTIMATORS["classification"]]  # ranked by, and judged by


@pytest.mark.slow
def test_eight_concurrent_runs_all_land_complete_records(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RECOMMEND, str(image_folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},  # 8 processes on a few cores: no oversubscription
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err[-2000:] for _, err in outputs]
    run_ids = sorted(out.strip() for out, _ in outputs)
    assert len(set(run_ids)) == 8

    store = RunStore(registry.engine)
    assert sorted(r.id for r in store.list()) == run_ids
    picks = set()
    for run_id in run_ids:
        run, candidates, scores, result = store.get(run_id)
        assert run.status == "done" and run.finished_at and run.failure is None
        assert run.pid in {p.pid for p in procs} and run.n_samples == 18
        assert sorted(c.ref for c in candidates) == sorted(tiny_image_models)
        assert all(c.status == "ok" and c.revision and c.cache_key for c in candidates)
        assert sorted((s.ref, s.estimator) for s in scores) == sorted(
            (ref, est) for ref in tiny_image_models for est in SCORED
        )
        assert result is not None and result.ranking[0]["ref"] == result.best_ref
        picks.add(result.best_ref)
    assert len(picks) == 1  # the same data and models: the same decision, whoever wrote first


@pytest.mark.slow
def test_a_run_killed_mid_way_is_marked_failed_on_the_next_start(
    registry: Registry, tiny_image_models: list[str], tmp_path: Path
) -> None:
    exe = shutil.which("tlreg")
    assert exe, "the tlreg console script is not installed in this environment"
    data = write_image_folder(tmp_path / "big", classes=3, per_class=40, size=48)
    proc = subprocess.Popen(
        [exe, "--quiet", "recommend", str(data), "--workers", "0", "--batch-size", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    store = RunStore(registry.engine)
    deadline = time.monotonic() + 180
    try:
        while not store.list():  # poll the database until the run's record exists
            assert proc.poll() is None, f"tlreg recommend ended early: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no run record appeared within 180 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    [run] = store.list()
    assert run.status == "running" and run.pid == proc.pid  # nothing could close it: the process just died

    [row] = list_runs(registry=registry)  # the next start of a tlreg entry point
    assert (
        row.status == "failed"
        and f"pid {proc.pid}" in row.failure
        and "ended without finishing" in row.failure
    )
    record = load_run(run.id, registry=registry)
    assert record.run.finished_at is not None and record.result is None and record.pick is None
