"""Judging tlreg's advice on the Hub-like benchmark: rankings against the obvious choices, and the verdicts.

Rankers, each judged per target by weighted Kendall τ against the fine-tuned accuracies and by the
regret of its pick (``transfer_eval``, shared with the first benchmark), over the 21 candidates
(descendants and originals; the random inits are baselines, not candidates):

- every estimator, and ``combined``: tlreg's default combination (``rank.DEFAULT_ESTIMATORS``);
- heuristics a user would reach for without tlreg: ``most_params`` (the biggest model),
  ``imagenet_top1`` (the best published ImageNet accuracy; descendants publish none),
  ``name_match`` (a checkpoint whose source task matches the target by name — the Hub search — the
  best-backbone one first; judged only on targets where some source matches) and ``random`` (the
  expected value of a random pick).

A pick is *within noise* when its accuracy is at most the build's seed noise below the best one.

The verdicts are judged against the truth the build measured: ``negative_transfer`` (tlreg's rule,
:func:`tlreg.advisor.verdicts.negative_transfer`) against "the fine-tuned candidate is no better
than the same architecture fine-tuned from random init"; ``frozen_features`` (``beaten_by``) against
"a linear probe on the candidate's frozen features is worse than on the baseline's" (random init or
raw pixels). The resampling rounds the build stored make these exactly what ``recommend`` computes.

The certainty ``recommend`` prints is judged too (:func:`separability`): "separable" against the
pick fine-tuning at least as well as the runner-up, "not separable" against the two being within the
seed noise, and the pick's P(best) against how often it is the best model.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import transfer_eval as ev
from tlreg.advisor import rank
from tlreg.advisor.confidence import Confidence, from_rounds, tied_with_best
from tlreg.advisor.verdicts import beaten_by, negative_transfer, verdict_names

HEURISTICS = ("most_params", "imagenet_top1", "name_match", "random")
#: Not a ranker anyone has before fine-tuning: the test accuracy of a linear probe on each candidate's
#: frozen features (trained on the whole training split, tested on the test split). A reference for
#: what the frozen features' own quality, measured directly, says about which model fine-tunes best.
ORACLES = ("linear_probe",)
COMBINED = ev.COMBINED


# --- the table ---------------------------------------------------------------------------------


def hub_table(results: Mapping[str, Any], *, models: Sequence[str] | None = None) -> ev.Table:
    """The candidates' ground truth as ``transfer_eval`` judges it (random inits left out)."""
    chosen = list(models or results["candidates"])
    pairs = [p for p in results["pairs"] if p["model"] in chosen]
    sub = {**results, "models": {m: results["models"][m] for m in chosen}, "pairs": pairs}
    return ev.table_from_results(sub)


def _pair(results: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["model"], p["target"]): p for p in results["pairs"]}


def backbone(results: Mapping[str, Any], model: str) -> str:
    return results["models"][model]["backbone"]


# --- realism -----------------------------------------------------------------------------------


def seed_noise(results: Mapping[str, Any]) -> dict[str, Any]:
    """Points between the first fine-tune and the repeats with other seeds: mean, max, per target."""
    pairs = _pair(results)
    diffs: dict[str, list[float]] = {}
    for r in results.get("repeats", []):
        first = pairs[r["model"], r["target"]]["finetune_acc"]
        diffs.setdefault(r["target"], []).append(100.0 * abs(r["accuracy"] - first))
    flat = [d for v in diffs.values() for d in v]
    return {
        "mean_pp": float(np.mean(flat)) if flat else math.nan,
        "max_pp": float(np.max(flat)) if flat else math.nan,
        "per_target_pp": {t: float(np.mean(v)) for t, v in diffs.items()},
        "repeats": len(flat),
    }


def realism(results: Mapping[str, Any], table: ev.Table) -> dict[str, Any]:
    """Does the best model move? Distinct winners, how often the largest model wins, the seed noise."""
    winners = {t: max(table.accuracy[t], key=table.accuracy[t].__getitem__) for t in table.targets}
    largest = max(table.models, key=lambda m: (table.params[m], m))
    noise = seed_noise(results)
    return {
        "winners": winners,
        "distinct_winners": len(set(winners.values())),
        "largest_model": largest,
        "largest_wins_share": sum(w == largest for w in winners.values()) / len(winners),
        "seed_noise_pp": noise["mean_pp"],
        "seed_noise": noise,
        "checks": {
            "at_least_4_distinct_winners": len(set(winners.values())) >= 4,
            "largest_best_on_at_most_a_third": sum(w == largest for w in winners.values())
            <= len(winners) / 3,
        },
    }


# --- heuristics --------------------------------------------------------------------------------


def matching(results: Mapping[str, Any], target: str) -> list[str]:
    """Candidates whose source task matches ``target`` by name (the target's ``related_to``)."""
    related = set(results["targets"][target].get("related_to", []))
    return [m for m in results["candidates"] if results["models"][m].get("source") in related]


def heuristic_values(results: Mapping[str, Any], table: ev.Table, target: str, name: str) -> dict[str, float]:
    """What a heuristic ranks by (higher first); NaN for ``name_match`` on a target no source matches."""
    if name == "most_params":
        return dict(table.params)
    if name == "imagenet_top1":
        return ev.values_of(table, target, "imagenet_top1")
    if name == "name_match":
        hits = set(matching(results, target))
        if not hits:
            return {m: math.nan for m in table.models}
        top1 = {
            b: results["models"][f"{b}-imagenet"].get("imagenet_top1") or 0.0 for b in _backbones(results)
        }
        return {m: float(m in hits) + 1e-3 * top1[backbone(results, m)] for m in table.models}
    raise ValueError(f"unknown heuristic {name!r}")


def _backbones(results: Mapping[str, Any]) -> list[str]:
    return sorted({backbone(results, m) for m in results["candidates"]})


# --- judging -----------------------------------------------------------------------------------


def judge_values(
    table: ev.Table, target: str, values: Mapping[str, float], noise_pp: float
) -> dict[str, float | str]:
    truth = table.accuracy[target]
    chosen = ev.pick({m: values.get(m, math.nan) for m in truth}, table.params)
    reg = 100.0 * (max(truth.values()) - truth[chosen])
    return {
        "tau_w": ev.tau_w(values, truth),
        "regret": reg,
        "pick": chosen,
        "within_noise": float(reg <= noise_pp),
    }


def judge_random(table: ev.Table, target: str, noise_pp: float) -> dict[str, float | str]:
    """The expected value of a uniformly random pick (and a random order: τw 0)."""
    truth = table.accuracy[target]
    best = max(truth.values())
    regrets = [100.0 * (best - a) for a in truth.values()]
    return {
        "tau_w": 0.0,
        "regret": float(np.mean(regrets)),
        "pick": "(random)",
        "within_noise": float(np.mean([r <= noise_pp for r in regrets])),
    }


def rankers(table: ev.Table) -> list[str]:
    return [*ev.estimator_names(table), COMBINED, *HEURISTICS, *ORACLES]


def judge_all(results: Mapping[str, Any], table: ev.Table, noise_pp: float) -> dict[str, dict[str, dict]]:
    """{ranker: {target: {tau_w, regret, pick, within_noise}}} (``name_match``: only matching targets)."""
    out: dict[str, dict[str, dict]] = {}
    for name in rankers(table):
        per: dict[str, dict] = {}
        for t in table.targets:
            if name == "random":
                per[t] = judge_random(table, t, noise_pp)
                continue
            if name in HEURISTICS:
                values = heuristic_values(results, table, t, name)
                if all(not math.isfinite(v) for v in values.values()):
                    continue
            elif name == "linear_probe":
                values = dict(table.probe[t])
            else:
                values = ev.values_of(table, t, name)
            per[t] = judge_values(table, t, values, noise_pp)
        out[name] = per
    return out


#: Resamples of the targets for the paired comparison's interval, and its coverage.
PAIRED_RESAMPLES = 10_000
PAIRED_INTERVAL = (5.0, 95.0)


def paired(per: Mapping[str, Mapping[str, Mapping[str, Any]]], a: str, b: str) -> dict[str, Any]:
    """``a`` minus ``b`` on the targets both are judged on: the mean difference in τw and in regret,
    each with a 90 % interval from resampling the targets (a percentile bootstrap, fixed seed). With
    eight targets a difference whose interval spans 0 is not one the benchmark can tell."""
    targets = [t for t in per[a] if t in per[b]]
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(targets), size=(PAIRED_RESAMPLES, len(targets)))
    out: dict[str, Any] = {"targets": len(targets)}
    for key in ("tau_w", "regret"):
        diff = np.array([float(per[a][t][key]) - float(per[b][t][key]) for t in targets])
        lo, hi = np.percentile(diff[draws].mean(axis=1), PAIRED_INTERVAL)
        out[key] = {"mean": float(diff.mean()), "interval": [float(lo), float(hi)]}
    return out


def summarise(per: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    regrets = [float(v["regret"]) for v in per.values()]
    return {
        "mean_tau_w": float(np.mean([float(v["tau_w"]) for v in per.values()])),
        "mean_regret": float(np.mean(regrets)),
        "worst_regret": float(np.max(regrets)),
        "within_noise": float(np.mean([float(v["within_noise"]) for v in per.values()])),
        "targets": len(per),
    }


# --- verdicts ----------------------------------------------------------------------------------


def _rates(pairs: Sequence[tuple[bool, bool]]) -> dict[str, float | int | None]:
    """Precision, recall and false-alarm rate of (predicted, true) flags; None where undefined."""
    tp = sum(p and t for p, t in pairs)
    fp = sum(p and not t for p, t in pairs)
    fn = sum(t and not p for p, t in pairs)
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "false_alarm_rate": fp / len(pairs) if pairs else None,
        "flagged": tp + fp,
        "true": tp + fn,
        "pairs": len(pairs),
    }


def _scores_and_rounds(results: Mapping[str, Any], target: str, names: Sequence[str]) -> tuple[dict, list]:
    pairs = _pair(results)
    scores = {m: pairs[m, target]["scores"] for m in [*results["candidates"], *results["baselines"]]}
    scores = {m: {k: (math.nan if v is None else v) for k, v in s.items()} for m, s in scores.items()}
    scores["raw"] = {k: (math.nan if v is None else v) for k, v in results["raw"][target]["scores"].items()}
    resampled = results.get("resamples", {}).get(target, {})
    rounds = resampled.get("rounds", []) if set(names) <= set(resampled.get("estimators", [])) else []
    return scores, rounds


def old_guard(candidate: Mapping[str, float], baseline: Mapping[str, float], names: Sequence[str]) -> bool:
    """The guard tlreg shipped before this benchmark: flagged unless the candidate won a strict majority
    (a split vote, or a score at its ceiling for both, counted against it)."""
    won = total = 0.0
    for n in names:
        a, b = candidate.get(n, math.nan), baseline.get(n, math.nan)
        if math.isfinite(a) and math.isfinite(b):
            total += 1
            won += (a > b) + 0.5 * (a == b)
    return total > 0 and not won > total / 2


def verdicts(results: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Negative transfer and frozen-feature verdicts (tlreg's, by the verdict estimators, and the old
    guard's, by the ranking's ``names``) against the truth."""
    old_names, names = names, verdict_names("classification", names)
    pairs = _pair(results)
    neg, neg_old, frozen, frozen_old = [], [], [], []
    flagged: list[dict[str, Any]] = []
    for t in results["targets"]:
        scores, rounds = _scores_and_rounds(results, t, names)
        n_classes = len(results["targets"][t]["classes"])
        probes = {m: pairs[m, t]["probe_acc"] for m in [*results["candidates"], *results["baselines"]]}
        probes["raw"] = results["raw"][t]["probe_acc"]
        for m in results["candidates"]:
            random_init = f"{backbone(results, m)}-random"
            truth = pairs[m, t]["finetune_acc"] <= pairs[random_init, t]["finetune_acc"]
            said = bool(negative_transfer(m, random_init, scores, names, n_classes=n_classes, rounds=rounds))
            neg.append((said, truth))
            neg_old.append((old_guard(scores[m], scores[random_init], old_names), truth))
            beaten = set(
                beaten_by(m, scores, [random_init, "raw"], names, n_classes=n_classes, rounds=rounds)
            )
            for b in (random_init, "raw"):
                frozen.append((b in beaten, probes[m] < probes[b]))
                frozen_old.append((old_guard(scores[m], scores[b], old_names), probes[m] < probes[b]))
            if said or beaten:
                flagged.append(
                    {"model": m, "target": t, "negative_transfer": said, "beaten_by": sorted(beaten)}
                )
    return {
        "negative_transfer": _rates(neg),
        "negative_transfer_old_guard": _rates(neg_old),
        "frozen_features": _rates(frozen),
        "frozen_features_old_guard": _rates(frozen_old),
        "flagged": flagged,
        "estimators": list(names),
    }


# --- ties and separability ---------------------------------------------------------------------


def confidence(
    results: Mapping[str, Any], table: ev.Table, target: str, names: Sequence[str]
) -> Confidence | None:
    """What ``recommend``'s resampling concludes on ``target`` (P(best), the runner-up test) from the
    build's stored rounds, through tlreg's own :func:`~tlreg.advisor.confidence.from_rounds`; None
    when the rounds do not hold every estimator of ``names``."""
    _, rounds = _scores_and_rounds(results, target, names)
    if not rounds:
        return None
    ranked = rank.order(rank.combine(table.scores[target], names), table.params)
    return from_rounds([{m: r.get(m, {}) for m in ranked} for r in rounds], ranked, names, ranked)


def tie_rule(results: Mapping[str, Any], table: ev.Table, names: Sequence[str]) -> dict[str, Any]:
    """What "the cheaper model" costs or saves where the default ranking cannot separate the top.

    Per target: the candidates tied for first on the whole sample, or (with resampling rounds) the pick
    and the runner-up when ``recommend`` would call them not separable (the pick ahead in under 90 %
    of the rounds). For those targets, the regret and parameters of the tie rule's choice (the
    cheaper) against the dearer one.
    """
    rows = []
    for t in table.targets:
        combined = rank.combine(table.scores[t], names)
        ranked = rank.order(combined, table.params)
        tied = [m for m in ranked if m in tied_with_best(combined)]
        group = tied if len(tied) > 1 else []
        conf = confidence(results, table, t, names)
        share = conf.beats_runner_up if conf is not None else None
        if not group and conf is not None and conf.separable is False:
            group = ranked[:2]
        if not group:
            continue
        acc = table.accuracy[t]
        best = max(acc.values())
        cheap = min(group, key=lambda m: (table.params[m], m))
        dear = max(group, key=lambda m: (table.params[m], m))
        rows.append(
            {
                "target": t,
                "kind": "tie" if len(tied) > 1 else "not separable",
                "beats_runner_up": share,
                "group": group,
                "cheaper": cheap,
                "dearer": dear,
                "regret_cheaper": 100.0 * (best - acc[cheap]),
                "regret_dearer": 100.0 * (best - acc[dear]),
                "params_ratio": table.params[dear] / table.params[cheap],
            }
        )
    return {
        "rule": "the cheaper model (fewer parameters, then the name)",
        "cases": rows,
        "mean_regret_cheaper": float(np.mean([r["regret_cheaper"] for r in rows])) if rows else None,
        "mean_regret_dearer": float(np.mean([r["regret_dearer"] for r in rows])) if rows else None,
        "mean_params_ratio": float(np.mean([r["params_ratio"] for r in rows])) if rows else None,
    }


def separability(
    results: Mapping[str, Any], table: ev.Table, names: Sequence[str], noise_pp: float
) -> dict[str, Any] | None:
    """The claims ``recommend`` prints about its own certainty, against the truth.

    "Separable" (the pick ranks above the runner-up in at least 90 % of the rounds) is right when the
    pick fine-tunes at least as well as the runner-up; "not separable" is right when the two are
    within the seed noise of each other. P(best) is compared with how often the pick is the best
    model, and within the seed noise of it. None when the stored rounds lack the estimators.
    """
    rows = []
    for t in table.targets:
        conf = confidence(results, table, t, names)
        if conf is None:
            return None
        ranked = rank.order(rank.combine(table.scores[t], names), table.params)
        acc = table.accuracy[t]
        best = max(acc.values())
        pick, runner = ranked[0], ranked[1]
        rows.append(
            {
                "target": t,
                "pick": pick,
                "runner_up": runner,
                "p_best": conf.p_best[pick],
                "beats_runner_up": conf.beats_runner_up,
                "separable": bool(conf.separable),
                "pick_minus_runner_up_pp": 100.0 * (acc[pick] - acc[runner]),
                "pick_is_best": acc[pick] >= best,
                "pick_within_noise": 100.0 * (best - acc[pick]) <= noise_pp,
            }
        )
    sep = [r for r in rows if r["separable"]]
    insep = [r for r in rows if not r["separable"]]
    return {
        "rounds": len(_scores_and_rounds(results, table.targets[0], names)[1]),
        "noise_pp": noise_pp,
        "targets": rows,
        "separable": {"claims": len(sep), "right": sum(r["pick_minus_runner_up_pp"] >= 0 for r in sep)},
        "not_separable": {
            "claims": len(insep),
            "right": sum(abs(r["pick_minus_runner_up_pp"]) <= noise_pp for r in insep),
        },
        "mean_p_best": float(np.mean([r["p_best"] for r in rows])),
        "pick_is_best": float(np.mean([r["pick_is_best"] for r in rows])),
        "pick_within_noise": float(np.mean([r["pick_within_noise"] for r in rows])),
    }


# --- the document ------------------------------------------------------------------------------


def evaluate(results: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation document (``data/bench/hub_quality.json``) from a results document."""
    table = hub_table(results)
    real = realism(results, table)
    noise = real["seed_noise_pp"] if math.isfinite(real["seed_noise_pp"]) else 0.0
    per = judge_all(results, table, noise)
    summary = {n: summarise(p) for n, p in per.items()}
    folds = ev.leave_one_target_out(table, ev.nested_search, names=ev.combinable(table))
    names = list(rank.DEFAULT_ESTIMATORS["classification"])
    combined = summary[COMBINED]
    beaten_by_heuristic = {
        h: {
            "tau_w": combined["mean_tau_w"] > summary[h]["mean_tau_w"],
            "regret": combined["mean_regret"] < summary[h]["mean_regret"],
        }
        for h in HEURISTICS
    }
    return {
        "about": "Advice quality on a Hub-like model space: see bench/hub_quality.py and the README.",
        "ground_truth": "test accuracy after a full fine-tune (frozen features: after a linear probe)",
        "units": {"tau_w": "scipy.stats.weightedtau, defaults", "regret": "percentage points of accuracy"},
        "models": len(table.models),
        "targets": table.targets,
        "realism": real,
        "heuristics": list(HEURISTICS),
        "oracles": list(ORACLES),
        "combined_estimators": names,
        "mean_tau_w": {n: s["mean_tau_w"] for n, s in summary.items()},
        "mean_regret": {n: s["mean_regret"] for n, s in summary.items()},
        "worst_regret": {n: s["worst_regret"] for n, s in summary.items()},
        "within_noise": {n: s["within_noise"] for n, s in summary.items()},
        "tau_w_sd": {
            n: float(statistics.pstdev(float(v["tau_w"]) for v in p.values())) for n, p in per.items()
        },
        "per_target": per,
        "combined_beats": beaten_by_heuristic,
        "combined_vs": {h: paired(per, COMBINED, h) for h in (*HEURISTICS, *ORACLES)},
        "goal": {
            "beats_every_heuristic": all(v["tau_w"] and v["regret"] for v in beaten_by_heuristic.values()),
            "mean_regret_at_most_1pp": combined["mean_regret"] <= 1.0,
            "worst_regret_at_most_3pp": combined["worst_regret"] <= 3.0,
        },
        "loto_combined": ev.mean(folds, "tau_w"),
        "loto": {
            "regret": ev.mean(folds, "regret"),
            "worst_regret": max(float(f["regret"]) for f in folds.values()),
            "folds": folds,
        },
        **_verdict_fields(verdicts(results, names)),
        "tie_rule": tie_rule(results, table, names),
        "separability": separability(results, table, names, noise),
    }


def _verdict_fields(v: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "negative_transfer": v["negative_transfer"],
        "frozen_features": v["frozen_features"],
        "old_guard": {
            "negative_transfer": v["negative_transfer_old_guard"],
            "frozen_features": v["frozen_features_old_guard"],
        },
        "flagged": v["flagged"],
    }


# --- the report --------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:4.0f}%"


def report(doc: Mapping[str, Any]) -> str:
    """The evaluation as text: the realism check, the table of rankers, the verdicts, the tie rule."""
    real = doc["realism"]
    lines = [
        f"Hub-like benchmark: {doc['models']} candidates x {len(doc['targets'])} targets "
        "(ground truth: test accuracy after a full fine-tune).",
        "",
        "Realism check:",
        f"  distinct winners: {real['distinct_winners']} of {len(doc['targets'])} targets "
        f"({'ok' if real['checks']['at_least_4_distinct_winners'] else 'FAILS: needs at least 4'})",
        f"  the largest model ({real['largest_model']}) is best on {real['largest_wins_share']:.0%} of "
        "targets "
        f"({'ok' if real['checks']['largest_best_on_at_most_a_third'] else 'FAILS: at most a third'})",
        f"  seed noise: {real['seed_noise_pp']:.1f} pts mean, {real['seed_noise']['max_pp']:.1f} pts max "
        f"({real['seed_noise']['repeats']} repeats of each target's top fine-tunes)",
        "  winners: " + "; ".join(f"{t} {w}" for t, w in real["winners"].items()),
        "",
        f"{'ranker':<20} {'mean tau_w':>10} {'mean regret':>11} {'worst regret':>12} {'within noise':>12} "
        f"{'targets':>7}",
    ]
    order = sorted(doc["mean_tau_w"], key=lambda n: -doc["mean_tau_w"][n])
    oracles = doc.get("oracles", [])
    for name in order:
        label = f"[{name}]" if name in doc["heuristics"] else f"({name})" if name in oracles else name
        n_targets = len(doc["per_target"][name])
        lines.append(
            f"{label:<20} {doc['mean_tau_w'][name]:>10.3f} {doc['mean_regret'][name]:>11.1f} "
            f"{doc['worst_regret'][name]:>12.1f} {_pct(doc['within_noise'][name]):>12} {n_targets:>7}"
        )
    goal = doc["goal"]
    lines += [
        "",
        f"combined = {' + '.join(doc['combined_estimators'])} (rank); leave-one-target-out selection: "
        f"mean tau_w {doc['loto_combined']:.3f}, regret {doc['loto']['regret']:.1f}, "
        f"worst {doc['loto']['worst_regret']:.1f}",
        "combined beats: "
        + ", ".join(
            f"{h} ({'tau_w' if v['tau_w'] else 'NOT tau_w'}, {'regret' if v['regret'] else 'NOT regret'})"
            for h, v in doc["combined_beats"].items()
        ),
        "combined minus each, on the targets both are judged on (90 % interval over targets):",
        *(
            f"  {h:<14} tau_w {v['tau_w']['mean']:+.3f} ({v['tau_w']['interval'][0]:+.3f} to "
            f"{v['tau_w']['interval'][1]:+.3f}), regret {v['regret']['mean']:+.1f} pts "
            f"({v['regret']['interval'][0]:+.1f} to {v['regret']['interval'][1]:+.1f}), "
            f"{v['targets']} targets"
            for h, v in doc.get("combined_vs", {}).items()
        ),
        f"goal: beats every heuristic {goal['beats_every_heuristic']}; mean regret <= 1 pt "
        f"{goal['mean_regret_at_most_1pp']}; worst <= 3 pts {goal['worst_regret_at_most_3pp']}",
        "[heuristic]; (reference: linear_probe ranks by a linear probe's test accuracy on the frozen "
        "features, trained on the whole split - the frozen features' quality, measured directly)",
        "",
        "Verdicts against the truth (pairs of candidate x target; frozen: pairs x baselines).",
        "tlreg claims no negative transfer from frozen scores; the rows say what such rules would flag:",
    ]
    for label, v in (
        ("negative transfer (frozen kNN rule)", doc["negative_transfer"]),
        ("negative transfer (old guard)", doc["old_guard"]["negative_transfer"]),
        ("frozen features beaten (tlreg, kNN)", doc["frozen_features"]),
        ("frozen features beaten (old guard)", doc["old_guard"]["frozen_features"]),
    ):
        lines.append(
            f"  {label:<36} flagged {v['flagged']:>3}, true {v['true']:>3} of {v['pairs']}: precision "
            f"{_pct(v['precision'])}, recall {_pct(v['recall'])}, false alarms {_pct(v['false_alarm_rate'])}"
        )
    ties = doc["tie_rule"]
    lines += ["", f"Tie rule ({ties['rule']}):"]
    if not ties["cases"]:
        lines.append("  no target has a tied or inseparable top")
    for c in ties["cases"]:
        lines.append(
            f"  {c['target']}: {c['kind']} {' / '.join(c['group'])}: cheaper {c['cheaper']} regret "
            f"{c['regret_cheaper']:.1f} vs dearer {c['regret_dearer']:.1f} pts, "
            f"{c['params_ratio']:.2f}x the parameters"
        )
    lines += ["", *_separability_lines(doc.get("separability"))]
    return "\n".join(lines)


def _separability_lines(sep: Mapping[str, Any] | None) -> list[str]:
    if sep is None:
        return ["Certainty: the stored resampling rounds lack the default's estimators; not judged."]
    s, n = sep["separable"], sep["not_separable"]
    lines = [
        f"Certainty against the truth ({sep['rounds']} resampling rounds; seed noise "
        f"{sep['noise_pp']:.1f} pts):",
        f"  'separable' said on {s['claims']} targets, the pick fine-tunes at least as well as the "
        f"runner-up on {s['right']}",
        f"  'not separable' said on {n['claims']} targets, the two within the seed noise on {n['right']}",
        f"  P(best) of the pick: {sep['mean_p_best']:.0%} mean; the pick is the best on "
        f"{sep['pick_is_best']:.0%} of targets, within the seed noise of it on "
        f"{sep['pick_within_noise']:.0%}",
    ]
    for r in sep["targets"]:
        lines.append(
            f"    {r['target']:<12} {r['pick']} P(best) {r['p_best']:.0%}, ahead of {r['runner_up']} in "
            f"{r['beats_runner_up']:.0%} of rounds ({'separable' if r['separable'] else 'not separable'}); "
            f"truth {r['pick_minus_runner_up_pp']:+.1f} pts"
        )
    return lines
