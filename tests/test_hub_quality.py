"""bench/hub_quality.py's evaluation: realism, heuristics, verdicts and the tie rule, on synthetic results
and on the committed ones. Nothing here builds the benchmark."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import hub_claims as hc  # noqa: E402
import hub_eval as he  # noqa: E402
import hub_quality as hq  # noqa: E402
from hub_results import TARGETS, synthetic  # noqa: E402
from tlreg.advisor import rank  # noqa: E402

DEFAULT = list(rank.DEFAULT_ESTIMATORS["classification"])


def test_realism_counts_distinct_winners_and_the_largest_model() -> None:
    results = synthetic()
    real = he.realism(results, he.hub_table(results))
    assert real["winners"]["digits"] == "lite1-digits" and real["winners"]["outlines"] == "lite1-shapes"
    assert real["distinct_winners"] == 3 and real["largest_model"] == "lite1-imagenet"
    assert real["largest_wins_share"] == pytest.approx(1 / 3)
    assert real["seed_noise"]["repeats"] == 1 and real["seed_noise_pp"] > 0


def test_heuristics_most_params_imagenet_and_the_name_match() -> None:
    results = synthetic()
    table = he.hub_table(results)
    assert he.heuristic_values(results, table, "digits", "most_params")["lite1-imagenet"] == 2500.0
    top1 = he.heuristic_values(results, table, "digits", "imagenet_top1")
    assert top1["lite1-imagenet"] == 76.0 and top1["lite0-digits"] == 0.0
    match = he.heuristic_values(results, table, "digits", "name_match")
    assert max(match, key=match.__getitem__) == "lite1-digits"  # the matching source, best backbone first
    assert all(math.isnan(v) for v in he.heuristic_values(results, table, "counting", "name_match").values())


def test_random_pick_is_the_expected_value() -> None:
    results = synthetic()
    table = he.hub_table(results)
    got = he.judge_random(table, "digits", noise_pp=0.0)
    accs = table.accuracy["digits"]
    assert got["regret"] == pytest.approx(100 * np.mean([max(accs.values()) - a for a in accs.values()]))
    assert got["tau_w"] == 0.0


def test_evaluation_document_and_report() -> None:
    doc = he.evaluate(synthetic())
    for key in ("realism", "mean_tau_w", "mean_regret", "worst_regret", "heuristics", "loto_combined"):
        assert key in doc
    for name in (*he.HEURISTICS, *he.ORACLES, "combined", "logme"):
        assert name in doc["mean_tau_w"] and name in doc["mean_regret"] and name in doc["worst_regret"]
    assert doc["per_target"]["name_match"].keys() == {"digits", "outlines"}  # counting matches no source
    assert doc["mean_regret"]["logme"] <= doc["mean_regret"]["most_params"]
    probe = he.judge_all(synthetic(), he.hub_table(synthetic()), 0.0)["linear_probe"]
    assert probe["digits"]["pick"] == "lite1-digits"  # the synthetic probe follows the accuracies
    assert doc["oracles"] == ["linear_probe"] and "(linear_probe)" in he.report(doc)
    assert set(doc["negative_transfer"]) >= {"precision", "recall", "false_alarm_rate"}
    assert set(doc["frozen_features"]) >= {"precision", "recall"}
    text = he.report(doc)
    assert "Realism check" in text and "[most_params]" in text and "Verdicts" in text


def test_the_old_guard_flagged_a_split_vote_the_verdict_calls_a_tie() -> None:
    """The demo digits' case: LogME prefers the random init, the shrinkage H-score the candidate."""
    from tlreg.advisor.verdicts import vote

    names = ["logme", "hscore_shrinkage"]
    split = ({"logme": -0.087, "hscore_shrinkage": 8.6}, {"logme": -0.077, "hscore_shrinkage": 8.4})
    assert hc.old_guard(*split, names) is True
    assert vote(*split, names) == "tie"


def test_report_runs_from_the_committed_results_without_building(tmp_path: Path, capsys) -> None:
    if not hq.RESULTS.is_file():
        pytest.skip("no committed Hub-like results yet")
    out = tmp_path / "hub.json"
    assert hq.main(["--report", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Realism check" in printed and "combined" in printed
    doc = json.loads(out.read_text())
    assert doc["results_file"]["name"] == hq.RESULTS.name
    assert doc["realism"]["checks"]["at_least_4_distinct_winners"]
    assert doc["realism"]["checks"]["largest_best_on_at_most_a_third"]


def test_report_without_results_is_one_line(tmp_path: Path, capsys) -> None:
    code = hq.main(["--report", "--results", str(tmp_path / "none.json"), "--out", str(tmp_path / "o.json")])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_the_transfer_plan_report_reproduces_the_committed_figures(tmp_path: Path, capsys) -> None:
    """``bench/transfer_plan.py --report`` recomputes data/bench/transfer_plan.json from the committed
    results; the README's figures are those."""
    import transfer_plan as tp

    committed = json.loads(tp.EVALUATION.read_text())
    out = tmp_path / "plan.json"
    assert tp.main(["--report", "--out", str(out)]) == 0
    assert "tlreg" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["plan_loss_pp"] == pytest.approx(committed["plan_loss_pp"])
    assert doc["curve"]["coverage"] == pytest.approx(committed["curve"]["coverage"])
    assert doc["curve"]["coverage"] >= 0.8
    assert doc["goal"] == {"not_worse_than_best_fixed_policy": True, "at_most_1pp_behind_hindsight": True}
    assert {f["threshold"] for f in doc["linear_threshold"]["folds"].values()} == {None}  # plan.LINEAR_ENOUGH


def with_rounds(results: dict, swapped: dict[str, int], rounds: int = 10) -> dict:
    """``results`` with stored resampling rounds: each round repeats the full-sample scores, except that
    on ``swapped[target]`` of the rounds the pick's and the runner-up's scores trade places."""
    from tlreg.advisor import rank

    names = list(rank.DEFAULT_ESTIMATORS["classification"])
    table = he.hub_table(results)
    out = {}
    for t in table.targets:
        full = {m: dict(s) for m, s in table.scores[t].items()}
        pick, runner = rank.order(rank.combine(full, names), table.params)[:2]
        stored = []
        for i in range(rounds):
            r = {m: dict(s) for m, s in full.items()}
            if i < swapped.get(t, 0):
                r[pick], r[runner] = r[runner], r[pick]
            stored.append(r)
        out[t] = {"estimators": names, "rounds": stored}
    return {**results, "resamples": out}


def test_separability_claims_are_judged_against_the_truth() -> None:
    """'Separable' when the pick leads in >= 90 % of the rounds; 'not separable' is right when the two
    fine-tune within the seed noise of each other; P(best) follows the rounds."""
    results = with_rounds(synthetic(), {"outlines": 5})
    table = he.hub_table(results)
    sep = hc.separability(results, table, DEFAULT, noise_pp=50.0)
    rows = {r["target"]: r for r in sep["targets"]}
    assert rows["digits"]["separable"] and rows["digits"]["beats_runner_up"] == 1.0
    assert rows["digits"]["p_best"] == 1.0
    assert not rows["outlines"]["separable"] and rows["outlines"]["beats_runner_up"] == 0.5
    assert rows["outlines"]["p_best"] == 0.5
    assert sep["separable"]["claims"] == 2 and sep["not_separable"] == {"claims": 1, "right": 1}
    right = sum(rows[t]["pick_minus_runner_up_pp"] >= 0 for t in ("digits", "counting"))
    assert sep["separable"]["right"] == right
    strict = hc.separability(results, table, DEFAULT, noise_pp=0.0)
    assert strict["not_separable"]["right"] == (rows["outlines"]["pick_minus_runner_up_pp"] == 0)
    assert sep["mean_p_best"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert "Certainty against the truth" in he.report({**he.evaluate(results)})


def test_tie_rule_takes_the_inseparable_top_two_from_the_rounds() -> None:
    results = with_rounds(synthetic(), {"outlines": 5})
    rule = hc.tie_rule(results, he.hub_table(results), DEFAULT)
    cases = {c["target"]: c for c in rule["cases"]}
    assert cases["outlines"]["kind"] == "not separable" and cases["outlines"]["beats_runner_up"] == 0.5
    assert "digits" not in cases


def test_without_the_defaults_rounds_certainty_is_not_judged() -> None:
    results = synthetic()
    assert hc.separability(results, he.hub_table(results), DEFAULT, 1.0) is None
    assert "not judged" in he.report(he.evaluate(results))


def test_paired_comparison_is_on_shared_targets_with_an_interval() -> None:
    per = {
        "a": {
            "x": {"tau_w": 0.5, "regret": 1.0},
            "y": {"tau_w": 0.3, "regret": 3.0},
            "z": {"tau_w": 0.1, "regret": 0.0},
        },
        "b": {"x": {"tau_w": 0.4, "regret": 2.0}, "y": {"tau_w": 0.3, "regret": 0.0}},
    }
    got = he.paired(per, "a", "b")
    assert got["targets"] == 2  # z: b is not judged there
    assert got["tau_w"]["mean"] == pytest.approx(0.05) and got["regret"]["mean"] == pytest.approx(1.0)
    lo, hi = got["regret"]["interval"]
    assert -1.0 <= lo <= 1.0 <= hi <= 3.0  # the per-target differences are -1 and +3
    same = he.paired(per, "a", "a")
    assert same["regret"] == {"mean": 0.0, "interval": [0.0, 0.0]}
    doc = he.evaluate(synthetic())
    assert set(doc["combined_vs"]) == {*he.HEURISTICS, *he.ORACLES}
    assert doc["combined_vs"]["name_match"]["targets"] == 2  # counting matches no source


def _with_repeats(results: dict, target: str, moved: dict[str, float]) -> dict:
    """``results`` with one repeat per candidate in ``moved`` on ``target``: first accuracy + moved."""
    first = {(p["model"], p["target"]): p["finetune_acc"] for p in results["pairs"]}
    repeats = [r for r in results["repeats"] if r["target"] != target]
    repeats += [
        {"model": m, "target": target, "accuracy": first[m, target] + d, "extra": 1} for m, d in moved.items()
    ]
    return {**results, "repeats": repeats}


def test_a_target_is_noisy_when_its_top_repeats_moved_more_than_the_threshold() -> None:
    import hub_noise

    results = synthetic()
    pairs = hub_noise.pairs_of(results)
    top3 = sorted(results["candidates"], key=lambda m: -pairs[m, "counting"]["finetune_acc"])[:3]
    calm = _with_repeats(results, "counting", {m: 0.01 for m in top3})
    below = _with_repeats(results, "counting", {top3[0]: 0.02, top3[1]: -0.02, top3[2]: 0.0})
    # a big move of a model outside the top 3 is not the build's noise measure
    outside = _with_repeats(results, "counting", {**{m: 0.0 for m in top3}, "lite0-shuffled": 0.2})

    def noisy(doc: dict) -> list[str]:
        return hub_noise.noisy_targets(
            list(TARGETS), doc["candidates"], doc["repeats"], pairs, top=3, noisy_pp=2.0
        )

    assert noisy(calm) == [] and noisy(outside) == []
    assert noisy(below) == []  # a mean |move| of 1.3 pts over the top 3
    above = _with_repeats(results, "counting", {top3[0]: 0.03, top3[1]: -0.04, top3[2]: 0.0})
    assert noisy(above) == ["counting"]  # 2.3 pts


def test_the_truth_is_the_seed_mean_only_where_every_candidate_was_repeated() -> None:
    import hub_noise

    results = synthetic()
    first = hub_noise.truth(results, seeds="first")
    some = _with_repeats(results, "counting", {m: 0.1 for m in results["candidates"][:-1]})
    assert hub_noise.averaged_targets(some) == [] and hub_noise.truth(some) == first
    every = _with_repeats(results, "counting", {m: 0.1 for m in results["candidates"]})
    assert hub_noise.averaged_targets(every) == ["counting"]
    mean = hub_noise.truth(every)
    for m in results["candidates"]:
        assert mean[m, "counting"] == pytest.approx(first[m, "counting"] + 0.05)
        assert mean[m, "digits"] == first[m, "digits"]  # one repeat on digits: not every candidate
    for b in results["baselines"]:
        assert mean[b, "counting"] == first[b, "counting"]  # random inits are baselines, not averaged
    with pytest.raises(ValueError, match="seeds"):
        hub_noise.truth(results, seeds="best")


def test_regret_is_judged_against_the_seed_mean_and_the_first_seed_is_reported() -> None:
    """On an averaged target the first seed's lucky winner is not the best: a ranker that picks the
    seed-mean winner has no regret there, and the first seed's figures are kept for comparison."""
    results = synthetic()
    pairs = {(p["model"], p["target"]): p for p in results["pairs"]}
    lucky, steady = "lite1-imagenet", "lite0-imagenet"  # the first seed's winner on counting, and another
    assert max(results["candidates"], key=lambda m: pairs[m, "counting"]["finetune_acc"]) == lucky
    moved = {m: 0.0 for m in results["candidates"]}
    moved[lucky], moved[steady] = -0.1, +0.05
    doc = _with_repeats(results, "counting", moved)
    table = he.hub_table(doc)
    assert max(table.accuracy["counting"], key=table.accuracy["counting"].get) == steady
    judged = he.judge_values(table, "counting", {m: float(m == steady) for m in table.models}, 1.0)
    assert judged["regret"] == 0.0
    first = he.hub_table(doc, seeds="first")
    on_first = he.judge_values(first, "counting", {m: float(m == steady) for m in first.models}, 1.0)
    assert on_first["regret"] > 0
    evaluated = he.evaluate(doc)
    assert evaluated["realism"]["seed_noise"]["averaged_targets"] == ["counting"]
    assert set(evaluated["first_seed"]) >= {"combined", *he.HEURISTICS}
    assert "truth = the mean over the seeds" in he.report(evaluated)


def test_earlier_defaults_are_judged_as_the_combined_ranking_is(monkeypatch) -> None:
    """An earlier default that is today's gives exactly the combined ranking's figures; the report
    prints each earlier default beside its first-seed figures."""
    today = (tuple(DEFAULT), rank.DEFAULT_AGGREGATION)
    monkeypatch.setattr(he, "PREVIOUS_DEFAULTS", {"today": today, "by ranks": (tuple(DEFAULT), "rank")})
    results = synthetic()
    doc = he.evaluate(results)
    got = doc["previous_defaults"]["truth"]["today"]
    assert got["mean_tau_w"] == pytest.approx(doc["mean_tau_w"]["combined"])
    assert got["mean_regret"] == pytest.approx(doc["mean_regret"]["combined"])
    assert got["worst_regret"] == pytest.approx(doc["worst_regret"]["combined"])
    first = doc["previous_defaults"]["first_seed"]["today"]
    assert first["mean_regret"] == pytest.approx(doc["first_seed"]["combined"]["mean_regret"])
    text = he.report(doc)
    assert "earlier defaults" in text and "  today " in text and "  by ranks " in text
