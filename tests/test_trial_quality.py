"""bench/trial_quality.py's evaluation: the pick among the estimators' top k by trial accuracy, judged
against the truth, per seed and over the seeds; the re-ordered ranking's τw; k chosen
leave-one-target-out over both benchmarks; on synthetic results and on the committed trials. Nothing
here trains."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import transfer_eval as ev  # noqa: E402
import trial_quality as tq  # noqa: E402
from hub_results import synthetic  # noqa: E402


def _trials(results: dict, val: dict[tuple[str, str], float], seed: int = 0) -> list[dict]:
    return [
        {"model": m, "target": t, "val_acc": val[m, t], "seconds": 10.0, "recipe": tq.recipe(seed)}
        for t in results["targets"]
        for m in results["candidates"]
    ]


def _truth(results: dict) -> dict[tuple[str, str], float]:
    return {(p["model"], p["target"]): p["finetune_acc"] for p in results["pairs"]}


def test_trials_that_agree_with_the_truth_pick_the_best_of_the_top_k() -> None:
    results = synthetic()
    truth = _truth(results)
    doc = tq.evaluate(results, _trials(results, truth))
    ranked = tq.orders(results)
    rows = doc["per_seed"][0]["per_k"]
    assert doc["seeds"] == [0] and doc["per_k"][len(results["candidates"])]["mean_regret"] == pytest.approx(
        0.0
    )
    for t in doc["targets"]:
        top2 = ranked[t][:2]
        assert rows[2]["per_target"][t]["pick"] == max(top2, key=lambda m: truth[m, t])
        assert rows[1]["per_target"][t]["pick"] == ranked[t][0]  # one trial: the estimators' pick
    assert doc["per_k"][3]["trial_seconds"] == pytest.approx(30.0)
    assert all(v == pytest.approx(1.0) for v in doc["per_seed"][0]["tau_w_trial_vs_truth_in_top"].values())


def test_the_reordered_ranking_is_the_top_k_by_trial_then_the_estimators_order() -> None:
    order = ["a", "b", "c", "d"]
    values = tq.reordered(order, {"a": 0.5, "b": 0.9, "c": 0.5}, 3)
    assert sorted(values, key=values.get, reverse=True) == ["b", "a", "c", "d"]  # a, c tie: a first
    results = synthetic()
    table = tq.table_of(results)
    ranked = tq.orders(results)
    t = next(iter(results["targets"]))
    val = {m: 1.0 - table.accuracy[t][m] for m in results["candidates"]}  # trials that invert the truth
    by = {(m, t): {"val_acc": val[m], "seconds": 1.0} for m in results["candidates"]}
    seed = tq.evaluate_seed(table, ranked, by)  # only t has trials: the other targets are left out
    assert seed["targets"] == [t]
    for k, row in seed["per_k"].items():
        want = tq.reordered(ranked[t], val, k)
        assert row["per_target"][t]["tau_w"] == pytest.approx(ev.tau_w(want, table.accuracy[t]))
        assert row["per_target"][t]["pick"] == max(ranked[t][:k], key=lambda m: val[m])
    assert seed["tau_w_trial_vs_truth_in_top"][t] == pytest.approx(-1.0)


def test_uninformative_trials_keep_the_estimators_order() -> None:
    """Equal trial accuracies tie: the pick is the estimators' first, whatever k."""
    results = synthetic()
    flat = {(m, t): 0.5 for t in results["targets"] for m in results["candidates"]}
    doc = tq.evaluate(results, _trials(results, flat))
    ranked = tq.orders(results)
    for row in doc["per_seed"][0]["per_k"].values():
        assert all(row["per_target"][t]["pick"] == ranked[t][0] for t in doc["targets"])
        assert row["mean_tau_w"] == pytest.approx(doc["per_seed"][0]["per_k"][1]["mean_tau_w"])


def test_seeds_are_judged_apart_and_summarised() -> None:
    """Seed 0's trials agree with the truth, seed 1's are flat: the summary is their mean regret and
    the worst of either."""
    results = synthetic()
    truth = _truth(results)
    flat = {k: 0.5 for k in truth}
    doc = tq.evaluate(results, _trials(results, truth, 0) + _trials(results, flat, 1))
    assert doc["seeds"] == [0, 1]
    for k, row in doc["per_k"].items():
        a, b = (doc["per_seed"][s]["per_k"][k] for s in (0, 1))
        assert row["mean_regret"] == pytest.approx((a["mean_regret"] + b["mean_regret"]) / 2)
        assert row["worst_regret"] == max(a["worst_regret"], b["worst_regret"])
    top = len(results["candidates"])
    assert doc["per_seed"][0]["per_k"][top]["mean_regret"] == pytest.approx(0.0)  # every trial right
    flat_rows = doc["per_seed"][1]["per_k"]
    assert all(flat_rows[k]["per_target"] == flat_rows[1]["per_target"] for k in flat_rows)  # no news


def test_repeats_rank_by_the_mean_of_the_seeds_trials() -> None:
    """--trial-repeats as the benchmark measures it: each candidate ranked by the mean of its seeds'
    trials. Seed 1 alone would pick against the truth; averaged with seed 0 (the truth, scaled) it
    cannot, and the view is the single-seed evaluation of the mean, derived here by hand."""
    results = synthetic()
    truth = _truth(results)
    reverse = {k: 1.0 - v for k, v in truth.items()}
    doc = tq.evaluate(
        results, _trials(results, {k: 2 * v for k, v in truth.items()}, 0) + _trials(results, reverse, 1)
    )
    top = len(results["candidates"])
    rep = doc["repeats"]
    assert rep["n"] == 2 and rep["per_k"][top]["mean_regret"] == pytest.approx(0.0)
    assert doc["per_seed"][1]["per_k"][top]["mean_regret"] > 0
    mean = tq.evaluate(results, _trials(results, {k: (2 * v + 1.0 - v) / 2 for k, v in truth.items()}))
    by_hand = mean["per_seed"][0]["per_k"]  # the same values; each pair's cost is both seeds' trials
    assert rep["per_k"] == {k: {**v, "trial_seconds": 2 * v["trial_seconds"]} for k, v in by_hand.items()}
    assert tq.evaluate(results, _trials(results, truth))["repeats"] == {}  # one seed: nothing to average


def test_a_target_without_every_trial_is_left_out() -> None:
    results = synthetic()
    trials = [
        d
        for d in _trials(results, _truth(results))
        if not (d["target"] == "counting" and d["model"] == "lite0-shapes")
    ]
    assert "counting" not in tq.evaluate(results, trials)["targets"]


def test_k_chosen_leave_one_target_out_matches_a_direct_re_derivation() -> None:
    """Two benchmarks of regrets per (target, k): each held-out target gets the k with the lowest mean
    regret on the other targets (ties to the smaller k), counted here one fold at a time."""
    regret = {
        ("hub", "t1"): [5.0, 1.0, 0.0],
        ("hub", "t2"): [4.0, 0.0, 2.0],
        ("first", "t3"): [0.0, 3.0, 0.0],
        ("first", "t4"): [1.0, 1.0, 1.0],
    }

    def doc(bench: str) -> dict:
        rows = {
            k: {"per_target": {t: {"regret": r[k - 1]} for (b, t), r in regret.items() if b == bench}}
            for k in (1, 2, 3)
        }
        return {"seeds": [0], "per_seed": {"0": {"per_k": {str(k): v for k, v in rows.items()}}}}

    views = tq.choose_k({"hub": doc("hub"), "first": doc("first")})
    assert list(views) == ["0"]  # no repeats in either document: no mean view
    chosen = views["0"]
    for (bench, t), r in regret.items():
        others = [v for key, v in regret.items() if key != (bench, t)]
        means = [statistics.mean(o[k] for o in others) for k in range(3)]
        k = means.index(min(means)) + 1  # index() finds the first: ties to the smaller k
        assert chosen["folds"][f"{bench}/{t}"] == {"k": k, "regret": r[k - 1]}
    held = {
        b: [f["regret"] for key, f in chosen["folds"].items() if key.startswith(b)] for b in ("hub", "first")
    }
    assert chosen["hub"]["mean_regret"] == pytest.approx(statistics.mean(held["hub"]))
    assert chosen["first"]["worst_regret"] == max(held["first"])


def test_trials_of_every_candidate_are_evaluated_up_to_every_k() -> None:
    """Trying all of a space's candidates (``--top 21`` on the Hub-like benchmark: the brute-force
    bound) is judged for every k, not cut at the default ``--top``."""
    results = synthetic()
    for m in list(results["candidates"]):  # a second copy of every candidate: more than TOP of them
        backbone, source = m.split("-")
        twin = f"{backbone}x-{source}"
        results["models"][twin] = {**results["models"][m], "backbone": backbone + "x"}
        results["pairs"] += [{**p, "model": twin} for p in results["pairs"] if p["model"] == m]
        results["candidates"].append(twin)
    assert len(results["candidates"]) > tq.TOP
    doc = tq.evaluate(results, _trials(results, _truth(results)))
    assert doc["top"] == len(results["candidates"])
    assert sorted(doc["per_k"]) == list(range(1, len(results["candidates"]) + 1))
    assert doc["per_k"][len(results["candidates"])]["mean_regret"] == pytest.approx(0.0)


def test_k_is_chosen_over_the_ks_both_benchmarks_cover() -> None:
    """One benchmark's trials cover more candidates than the other's: k is chosen among the ks that
    every held-out target has."""

    def doc(regrets: dict[str, list[float]]) -> dict:
        ks = range(1, len(next(iter(regrets.values()))) + 1)
        rows = {str(k): {"per_target": {t: {"regret": r[k - 1]} for t, r in regrets.items()}} for k in ks}
        return {"seeds": [0], "per_seed": {"0": {"per_k": rows}}}

    views = tq.choose_k(
        {"hub": doc({"t1": [3.0, 2.0, 0.0], "t2": [3.0, 2.0, 0.0]}), "first": doc({"t3": [1.0, 0.0]})}
    )
    assert {f["k"] for f in views["0"]["folds"].values()} == {2}  # k = 3 is not covered on t3
    assert views["0"]["first"]["mean_regret"] == 0.0


@pytest.mark.parametrize("epochs", [1, 3])
@pytest.mark.parametrize("bench", tq.BENCHES)
def test_the_report_reproduces_the_committed_trials(bench: str, epochs: int, capsys) -> None:
    path = tq.out_path(bench, epochs)
    if not path.is_file():
        pytest.skip(f"no committed {epochs}-epoch trials for the {bench} benchmark yet")
    committed = json.loads(path.read_text())
    assert tq.main(["--report", "--epochs", str(epochs)]) == 0
    printed = capsys.readouterr().out
    assert f"Short fine-tunes of the estimators' top k ({tq.TITLE[bench]}" in printed
    doc = tq.evaluate(json.loads(tq.RESULTS[bench].read_text()), committed["trials"], bench=bench)
    assert json.loads(json.dumps(doc)) == committed


def test_longer_trials_of_fewer_candidates_are_evaluated_on_their_own() -> None:
    """--epochs 3 --top 2: the document covers k = 1, 2, says 3 epochs, and goes to its own file;
    trials of two recipes are not mixed into one evaluation."""
    results = synthetic()
    truth = _truth(results)
    ranked = tq.orders(results)
    trials = [
        {"model": m, "target": t, "val_acc": truth[m, t], "seconds": 30.0, "recipe": tq.recipe(0, 3)}
        for t in results["targets"]
        for m in ranked[t][:2]
    ]
    doc = tq.evaluate(results, trials)
    assert doc["top"] == 2 and sorted(doc["per_k"]) == [1, 2] and doc["recipe"]["epochs"] == 3
    assert doc["targets"] == list(results["targets"])
    assert "3 epochs" in tq.report(doc)
    assert tq.out_path("hub", 3).name == "trial_quality-e3.json" and tq.out_path("hub") == tq.OUT["hub"]
    with pytest.raises(ValueError, match="mixed"):
        tq.evaluate(results, trials + _trials(results, truth))


def _check_row(lines: list[str], label: str, per_k: dict) -> None:
    """The README table row ``label`` (under the first "trials per target (k)" header in ``lines``)
    reads ``mean / worst, τw`` of ``per_k`` in every column, and "—" where the trials did not reach k."""
    header = next(line for line in lines if line.startswith("| trials per target (k)"))
    ks = [int(c.strip().split()[0]) for c in header.strip("|").split("|")[1:]]
    row = next(line for line in lines if line.startswith(f"| {label} |"))
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")[1:]]
    for k, cell in zip(ks, cells, strict=True):
        if str(k) not in per_k:
            assert cell == "—", (label, k)
            continue
        r = per_k[str(k)]
        assert cell == f"{r['mean_regret']:.2f} / {r['worst_regret']:.1f}, {r['mean_tau_w']:.3f}", (label, k)


def test_the_readme_three_epoch_table_is_the_committed_trials() -> None:
    """Every cell of the README's three-epoch table is the committed ``-e3`` documents'."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("#### Three-epoch trials") :]
    for bench, label in (("hub", "Hub-like benchmark"), ("first", "first benchmark")):
        per_k = json.loads(tq.out_path(bench, 3).read_text())["per_seed"]["0"]["per_k"]
        _check_row(section.splitlines(), label, per_k)


def test_the_products_trial_recipe_is_the_one_measured() -> None:
    """``recommend --trials K`` trains what the three-epoch documents measured on both benchmarks'
    training splits (800 and 1,200 items), and ``--trial-epochs 1`` what the one-epoch ones did."""
    from tlreg.advisor import trials

    for n_train in (800, 1200):
        assert trials.recipe(0, n_train) == tq.recipe(0, 3)
        assert trials.recipe(1, n_train, 1) == tq.recipe(1, 1)


def test_trials_on_models_made_again_are_named_in_the_document_and_the_report() -> None:
    """Without the build's work folder the trial's model is made again; where it differs from the
    build's, the trial says so and the evaluation names the model (its figures are a sibling's)."""
    results = synthetic()
    trials = _trials(results, _truth(results))
    first = trials[0]["model"]
    for t in trials:
        if t["model"] == first:
            t["made_again"] = {"source_val_accuracy": 0.97, "build_source_val_accuracy": 0.98}
    doc = tq.evaluate(results, trials)
    assert doc["made_again"] == [first]
    assert "1 models were made again" in tq.report(doc)
    assert "made_again" not in tq.evaluate(results, _trials(results, _truth(results)))


@pytest.mark.parametrize(
    ("bench", "heading"), [("hub", "**Hub-like benchmark** (8 targets)"), ("first", "**First benchmark**")]
)
def test_the_readme_tables_are_the_committed_trials(bench: str, heading: str) -> None:
    """Every cell of the README's trial tables (mean / worst regret, τw) is the committed document's."""
    doc = json.loads(tq.OUT[bench].read_text())
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Short fine-tunes of the top k, measured") :]
    lines = section[section.index(heading) :].splitlines()
    views = {"seed 0": doc["per_seed"]["0"]["per_k"], "seed 1": doc["per_seed"]["1"]["per_k"]}
    views["both splits averaged (R = 2)"] = doc["repeats"]["per_k"]
    for label, per_k in views.items():
        _check_row(lines, label, per_k)
