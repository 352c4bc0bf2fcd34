"""Resampling the Hub-like truth's test set (bench/truth_resample.py): the seeds it re-runs, the paired
bootstrap against a direct re-derivation, degenerate inputs, and the committed predictions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import hub_noise  # noqa: E402
import truth_resample as tr  # noqa: E402
from helpers import bench_report  # noqa: E402


def synthetic(seed: int = 0) -> dict:
    """Three models x 2 seeds on 60 images: 'a' right on ~80 %, 'b' ~70 %, 'c' ~50 %."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 60)

    def runs(p: float) -> list[list[int]]:
        return [[int(y) if rng.random() < p else int((y + 1) % 4) for y in labels] for _ in range(2)]

    models = {m: {"seeds": [1, 2], "predictions": runs(p)} for m, p in (("a", 0.8), ("b", 0.7), ("c", 0.5))}
    for entry in models.values():
        entry["recorded"] = [float((np.asarray(p) == labels).mean()) for p in entry["predictions"]]
    return {"target": "t", "labels": [int(v) for v in labels], "models": models}


def naive_regret(doc: dict, pick: str, rounds: int, seed: int) -> list[float]:
    """Each round: draw the images with replacement, every model's mean accuracy over its seeds on
    them, best minus the pick's - written as loops."""
    rng = np.random.default_rng(seed)
    labels = doc["labels"]
    n = len(labels)
    out = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        acc = {}
        for m, entry in doc["models"].items():
            per_seed = [sum(p[i] == labels[i] for i in idx) / n for p in entry["predictions"]]
            acc[m] = sum(per_seed) / len(per_seed)
        out.append(100.0 * (max(acc.values()) - acc[pick]))
    return out


def test_bootstrap_matches_a_direct_re_derivation() -> None:
    doc = synthetic()
    got = tr.evaluate(doc, {"r": "b"}, rounds=50, seed=3)
    naive = naive_regret(doc, "b", 50, 3)
    assert got["regret"]["r"]["mean"] == pytest.approx(float(np.mean(naive)), rel=1e-9)
    assert got["regret"]["r"]["interval"][0] == pytest.approx(float(np.quantile(naive, 0.05)), rel=1e-9)
    assert got["reproduced"] == "6 of 6" and got["best"] == "a"
    full = {m: np.mean(e["recorded"]) for m, e in doc["models"].items()}
    assert got["regret"]["r"]["regret"] == pytest.approx(100 * (full["a"] - full["b"]))
    assert sum(got["p_best"].values()) == pytest.approx(1.0)


def test_image_order_and_class_names_do_not_change_the_truth() -> None:
    doc = synthetic()
    perm = np.random.default_rng(1).permutation(60)
    rename = np.array([2, 3, 0, 1])
    moved = {
        "target": "t",
        "labels": [int(rename[doc["labels"][i]]) for i in perm],
        "models": {
            m: {**e, "predictions": [[int(rename[p[i]]) for i in perm] for p in e["predictions"]]}
            for m, e in doc["models"].items()
        },
    }
    a, b = tr.evaluate(doc, {"r": "c"}, rounds=20), tr.evaluate(moved, {"r": "c"}, rounds=20)
    assert a["regret"]["r"]["regret"] == pytest.approx(b["regret"]["r"]["regret"])
    assert a["lead_pp"]["full"] == pytest.approx(b["lead_pp"]["full"]) and a["best"] == b["best"]


def test_identical_models_tie_and_a_wrong_recording_is_reported() -> None:
    doc = synthetic()
    doc["models"]["b"] = json.loads(json.dumps(doc["models"]["a"]))
    got = tr.evaluate(doc, {"r": "b"}, rounds=20)
    assert got["lead_pp"]["full"] == 0.0 and got["regret"]["r"]["regret"] == 0.0
    assert got["regret"]["r"]["interval"] == [0.0, 0.0]
    doc["models"]["c"]["recorded"][1] += 0.01
    assert tr.evaluate(doc, {}, rounds=5)["reproduced"] == "5 of 6"


def test_the_seeds_are_the_builds_in_order() -> None:
    results = json.loads(tr.HUB_RESULTS.read_text())
    runs = tr.runs_of(results, "efficientnet_lite0-digits", "photos")
    seeds, accs = [s for s, _ in runs], [a for _, a in runs]
    assert len(seeds) == len(set(seeds)) == len(accs) == hub_noise.seeds_per_target(results)["photos"] >= 4
    truth = hub_noise.truth(results)[("efficientnet_lite0-digits", "photos")]
    assert float(np.mean(accs)) == pytest.approx(truth)  # the mean the benchmark judges by


made_for_this_build = pytest.mark.skipif(
    not tr.PREDICTIONS.is_file(),
    reason="not yet made again for the rebuilt Hub-like benchmark (see the README)",
)


@made_for_this_build
def test_committed_predictions_reproduce_the_build_and_its_truth() -> None:
    results = json.loads(tr.HUB_RESULTS.read_text())
    doc = json.loads(tr.PREDICTIONS.read_text())
    assert set(doc["models"]) == set(results["candidates"])
    got = tr.evaluate(doc, tr.picks_of(doc["target"]), rounds=100)
    total = sum(len(e["seeds"]) for e in doc["models"].values())
    assert got["reproduced"] == f"{total} of {total}"
    truth = hub_noise.truth(results)
    best = max(results["candidates"], key=lambda m: truth[(m, doc["target"])])
    assert got["best"] == best
    hub = json.loads(tr.HUB_EVALUATION.read_text())
    assert got["regret"]["combined"]["regret"] == pytest.approx(
        hub["per_target"]["combined"][doc["target"]]["regret"]
    )


@made_for_this_build
def test_report_runs_from_the_committed_predictions() -> None:
    out = bench_report("truth_resample.py")
    assert "combined" in out and "how often each model is best" in out


def test_report_without_the_document_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tr, "PREDICTIONS", tr.ROOT / "data" / "bench" / "absent.json")
    monkeypatch.setattr(sys, "argv", ["truth_resample.py", "--report"])
    with pytest.raises(
        SystemExit, match=r"absent.json is not committed .*run: python bench/truth_resample.py"
    ):
        tr.main()
