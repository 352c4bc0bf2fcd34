"""bench/trial_quality.py's evaluation: the pick among the estimators' top k by trial accuracy, judged
against the Hub-like truth, on synthetic results and on the committed trials. Nothing here trains."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import trial_quality as tq  # noqa: E402
from hub_results import synthetic  # noqa: E402


def _trials(results: dict, val: dict[tuple[str, str], float]) -> list[dict]:
    return [
        {"model": m, "target": t, "val_acc": val[m, t], "seconds": 10.0, "recipe": tq.RECIPE}
        for t in results["targets"]
        for m in results["candidates"]
    ]


def test_trials_that_agree_with_the_truth_pick_the_best_of_the_top_k() -> None:
    results = synthetic()
    truth = {(p["model"], p["target"]): p["finetune_acc"] for p in results["pairs"]}
    doc = tq.evaluate(results, _trials(results, truth))
    ranked = tq.orders(results)
    last = doc["per_k"][len(results["candidates"])]
    assert last["mean_regret"] == pytest.approx(0.0)  # every candidate tried: the truth's best
    for t in doc["targets"]:
        top2 = ranked[t][:2]
        assert doc["per_k"][2]["per_target"][t]["pick"] == max(top2, key=lambda m: truth[m, t])
        assert doc["per_k"][1]["per_target"][t]["pick"] == ranked[t][0]  # one trial: the estimators' pick
    assert doc["per_k"][3]["trial_seconds"] == pytest.approx(30.0)
    assert all(v == pytest.approx(1.0) for v in doc["tau_w_trial_vs_truth_in_top"].values())


def test_uninformative_trials_keep_the_estimators_order() -> None:
    """Equal trial accuracies tie: the pick is the estimators' first, whatever k."""
    results = synthetic()
    flat = {(m, t): 0.5 for t in results["targets"] for m in results["candidates"]}
    doc = tq.evaluate(results, _trials(results, flat))
    ranked = tq.orders(results)
    for row in doc["per_k"].values():
        assert all(row["per_target"][t]["pick"] == ranked[t][0] for t in doc["targets"])


def test_a_target_without_every_trial_is_left_out() -> None:
    results = synthetic()
    truth = {(p["model"], p["target"]): p["finetune_acc"] for p in results["pairs"]}
    trials = [
        d for d in _trials(results, truth) if not (d["target"] == "counting" and d["model"] == "lite0-shapes")
    ]
    assert "counting" not in tq.evaluate(results, trials)["targets"]


def test_the_report_reproduces_the_committed_trials(tmp_path: Path, capsys) -> None:
    if not tq.OUT.is_file():
        pytest.skip("no committed trials yet")
    committed = json.loads(tq.OUT.read_text())
    assert tq.main(["--report"]) == 0
    printed = capsys.readouterr().out
    assert "Short fine-tunes" in printed
    doc = tq.evaluate(json.loads(tq.RESULTS.read_text()), committed["trials"])
    assert json.loads(json.dumps(doc)) == committed
