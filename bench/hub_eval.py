"""Judging tlreg's advice on the Hub-like benchmark: rankings against the obvious choices.

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

What ``recommend`` claims (the verdicts, the tie rule, its certainty) is judged in ``hub_claims``;
:func:`evaluate` puts everything into the evaluation document and :func:`report` prints it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import hub_claims as hc
import hub_noise
import numpy as np
import transfer_eval as ev
from hub_claims import backbone
from tlreg.advisor import rank

HEURISTICS = ("most_params", "imagenet_top1", "name_match", "random")
#: Not a ranker anyone has before fine-tuning: the test accuracy of a linear probe on each candidate's
#: frozen features (trained on the whole training split, tested on the test split). A reference for
#: what the frozen features' own quality, measured directly, says about which model fine-tunes best.
ORACLES = ("linear_probe",)
COMBINED = ev.COMBINED
#: tlreg's earlier defaults (advisor/rank.py's history), judged against the same truth: a change of
#: defaults must show what it gains or costs here.
PREVIOUS_DEFAULTS: dict[str, tuple[tuple[str, ...], str]] = {
    "logme + hscore_shrinkage (rank)": (("logme", "hscore_shrinkage"), "rank"),
    "hscore_shrinkage + nleep (rank)": (("hscore_shrinkage", "nleep"), "rank"),
}


# --- the table ---------------------------------------------------------------------------------


def hub_table(
    results: Mapping[str, Any], *, models: Sequence[str] | None = None, seeds: str = "mean"
) -> ev.Table:
    """The candidates' ground truth as ``transfer_eval`` judges it (random inits left out); on the
    targets too noisy for one seed, the mean over the seeds (``hub_noise.truth``; ``seeds="first"``:
    the first fine-tune everywhere)."""
    chosen = list(models or results["candidates"])
    pairs = [p for p in results["pairs"] if p["model"] in chosen]
    sub = {**results, "models": {m: results["models"][m] for m in chosen}, "pairs": pairs}
    return ev.table_from_results(sub, seeds=seeds)


# --- realism -----------------------------------------------------------------------------------


def realism(results: Mapping[str, Any], table: ev.Table) -> dict[str, Any]:
    """Does the best model move? Distinct winners, how often the largest model wins, the seed noise."""
    winners = {t: max(table.accuracy[t], key=table.accuracy[t].__getitem__) for t in table.targets}
    largest = max(table.models, key=lambda m: (table.params[m], m))
    noise = hub_noise.seed_noise(results)
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


def combined_beats(summary: Mapping[str, Mapping[str, float]], heuristics: Sequence[str]) -> dict:
    """{heuristic: {tau_w, regret}}: whether the combined ranking beats it on each mean."""
    combined = summary[COMBINED]
    return {
        h: {
            "tau_w": combined["mean_tau_w"] > summary[h]["mean_tau_w"],
            "regret": combined["mean_regret"] < summary[h]["mean_regret"],
        }
        for h in heuristics
    }


def goal(combined: Mapping[str, float], beats: Mapping[str, Mapping[str, bool]]) -> dict[str, bool]:
    """The issue's goal for the combined ranking: it beats every heuristic on both means, with a mean
    regret of at most 1 point and a worst of at most 3."""
    return {
        "beats_every_heuristic": all(v["tau_w"] and v["regret"] for v in beats.values()),
        "mean_regret_at_most_1pp": combined["mean_regret"] <= 1.0,
        "worst_regret_at_most_3pp": combined["worst_regret"] <= 3.0,
    }


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


def previous_defaults(table: ev.Table, noise_pp: float) -> dict[str, dict[str, float]]:
    """Each of :data:`PREVIOUS_DEFAULTS` summarised over the targets as the combined ranking is."""
    out = {}
    for label, (names, method) in PREVIOUS_DEFAULTS.items():
        per = {
            t: judge_values(table, t, rank.combine(dict(table.scores[t]), names, method=method), noise_pp)
            for t in table.targets
        }
        out[label] = summarise(per)
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
    beaten_by_heuristic = combined_beats(summary, HEURISTICS)
    first = hub_table(results, seeds="first")
    first_per = judge_all(results, first, noise)
    return {
        "about": "Advice quality on a Hub-like model space: see bench/hub_quality.py and the README.",
        "ground_truth": "test accuracy after a full fine-tune (frozen features: after a linear probe); "
        "on the targets in realism.seed_noise.averaged_targets, the mean over the seeds",
        "units": {"tau_w": "scipy.stats.weightedtau, defaults", "regret": "percentage points of accuracy"},
        "models": len(table.models),
        "targets": table.targets,
        "realism": real,
        "heuristics": list(HEURISTICS),
        "oracles": list(ORACLES),
        "combined_estimators": names,
        "combined_aggregation": rank.DEFAULT_AGGREGATION,
        "mean_tau_w": {n: s["mean_tau_w"] for n, s in summary.items()},
        "mean_regret": {n: s["mean_regret"] for n, s in summary.items()},
        "worst_regret": {n: s["worst_regret"] for n, s in summary.items()},
        "within_noise": {n: s["within_noise"] for n, s in summary.items()},
        "tau_w_sd": {
            n: float(statistics.pstdev(float(v["tau_w"]) for v in p.values())) for n, p in per.items()
        },
        "per_target": per,
        "first_seed": {
            n: summarise(first_per[n]) for n in (COMBINED, *HEURISTICS, *ORACLES) if n in first_per
        },
        "previous_defaults": {
            "truth": previous_defaults(table, noise),
            "first_seed": previous_defaults(first, noise),
        },
        "combined_beats": beaten_by_heuristic,
        "combined_vs": {h: paired(per, COMBINED, h) for h in (*HEURISTICS, *ORACLES)},
        "goal": goal(combined, beaten_by_heuristic),
        "loto_combined": ev.mean(folds, "tau_w"),
        "loto": {
            "regret": ev.mean(folds, "regret"),
            "worst_regret": max(float(f["regret"]) for f in folds.values()),
            "folds": folds,
        },
        **hc.verdict_fields(hc.verdicts(results, names)),
        "tie_rule": hc.tie_rule(results, table, names),
        "separability": hc.separability(results, table, names, noise),
    }


# --- the report --------------------------------------------------------------------------------


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
        *_averaged_lines(doc),
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
            f"{doc['worst_regret'][name]:>12.1f} {hc.pct(doc['within_noise'][name]):>12} {n_targets:>7}"
        )
    goal = doc["goal"]
    lines += [
        "",
        f"combined = {' + '.join(doc['combined_estimators'])} ({doc.get('combined_aggregation', 'rank')}); "
        "leave-one-target-out selection: "
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
        *_previous_lines(doc),
        "[heuristic]; (reference: linear_probe ranks by a linear probe's test accuracy on the frozen "
        "features, trained on the whole split - the frozen features' quality, measured directly)",
        "",
    ]
    lines += hc.report_lines(doc)
    return "\n".join(lines)


def _previous_lines(doc: Mapping[str, Any]) -> list[str]:
    """tlreg's earlier defaults against the same truth (and the first seed alone)."""
    previous = doc.get("previous_defaults")
    if not previous:
        return []
    lines = ["earlier defaults (mean tau_w / mean regret / worst; on the first seed alone):"]
    for label, s in previous["truth"].items():
        f = previous["first_seed"][label]
        lines.append(
            f"  {label:<34} {s['mean_tau_w']:.3f} / {s['mean_regret']:.1f} / {s['worst_regret']:.1f}; "
            f"{f['mean_tau_w']:.3f} / {f['mean_regret']:.1f} / {f['worst_regret']:.1f}"
        )
    return lines


def _averaged_lines(doc: Mapping[str, Any]) -> list[str]:
    """Which targets' truth is a mean over seeds, and what the first seed alone would have said."""
    noise = doc["realism"]["seed_noise"]
    averaged = noise.get("averaged_targets") or []
    if not averaged:
        return []
    first = doc.get("first_seed", {})
    lines = ["  " + line for line in hub_noise.averaged_lines(noise)]
    if first:
        lines.append(
            "  on the first seed alone (mean tau_w / mean regret / worst): "
            + "; ".join(
                f"{n} {v['mean_tau_w']:.3f} / {v['mean_regret']:.1f} / {v['worst_regret']:.1f}"
                for n, v in first.items()
            )
        )
    return lines
