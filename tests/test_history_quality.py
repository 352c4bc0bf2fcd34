"""The history benchmark (bench/history_quality.py): leave-one-target-out, from committed data."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import history_quality as hq  # noqa: E402
from helpers import bench_report  # noqa: E402


def committed() -> tuple[dict, dict]:
    return json.loads(hq.RESULTS.read_text()), json.loads(hq.SIGNATURES.read_text())


def test_the_held_out_target_never_reaches_its_own_history() -> None:
    results, signatures = committed()
    target = "counting"
    models = list(results["models"])
    before = hq.held_out_history(results, signatures, target, models).scores
    scrambled = copy.deepcopy(results)
    for pair in scrambled["pairs"]:
        if pair["target"] == target:
            pair["finetune_acc"] = 1.0 - pair["finetune_acc"]  # the answer key, reversed
    assert hq.held_out_history(scrambled, signatures, target, models).scores == before
    other = next(p for p in scrambled["pairs"] if p["target"] != target and p["model"] == models[0])
    other["finetune_acc"] = 0.0  # but the other targets are the history
    assert hq.held_out_history(scrambled, signatures, target, models).scores != before


def test_report_runs_from_the_committed_signatures() -> None:
    out = bench_report("history_quality.py")
    assert "combined + history" in out and "adding the history changes mean τw by" in out
    doc = hq.evaluate(*committed())
    assert set(doc["mean_tau_w"]) == {"combined (default)", "history alone", "combined + history"}
    assert all(-1.0 <= v <= 1.0 for v in doc["mean_tau_w"].values())


def test_the_hub_like_benchmark_ranks_its_candidates_only_from_committed_signatures() -> None:
    """``--hub``: the Hub-like table (21 candidates; its random inits are baselines, never history)."""
    results = json.loads(hq.HUB_RESULTS.read_text())
    signatures = json.loads(hq.HUB_SIGNATURES.read_text())
    assert set(signatures) == set(results["config"]["targets"])
    table = hq.table_of(results)
    assert sorted(table.models) == sorted(results["candidates"])
    target = table.targets[0]
    before = hq.held_out_history(results, signatures, target, table.models).scores
    scrambled = copy.deepcopy(results)
    for pair in scrambled["pairs"]:
        if pair["model"] not in table.models:  # a baseline's outcome is no candidate's history
            pair["finetune_acc"] = 0.0
    assert hq.held_out_history(scrambled, signatures, target, table.models).scores == before
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "history_quality.py"), "--hub", "--report"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT / "bench",
    )
    assert done.returncode == 0, done.stderr
    assert f"over {len(table.targets)} targets" in done.stdout and "history alone" in done.stdout
    assert "combined + history - name_match" in done.stdout  # the heuristics, paired on shared targets
    per = {
        "history alone": {t: {"tau_w": 0.5, "regret": 1.0} for t in ("a", "b")},
        "combined + history": {t: {"tau_w": 0.2, "regret": 3.0} for t in ("a", "b")},
    }
    heuristics = {"name_match": {"a": {"tau_w": 0.1, "regret": 0.0}}, "most_params": per["history alone"]}
    got = hq.against_heuristics({"per_target": per}, heuristics)
    assert got["combined + history - name_match"]["targets"] == 1
    assert got["combined + history - name_match"]["regret"]["mean"] == 3.0
    assert got["history alone - most_params"]["tau_w"] == {"mean": 0.0, "interval": [0.0, 0.0]}
