"""What ``recommend`` claims, judged on the Hub-like benchmark's truth: the verdicts, the tie rule and
the certainty (``bench/hub_eval.py`` assembles them into the evaluation).

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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import transfer_eval as ev
from hub_noise import pairs_of
from tlreg.advisor import rank
from tlreg.advisor.confidence import Confidence, from_rounds, tied_with_best
from tlreg.advisor.verdicts import beaten_by, negative_transfer, verdict_names


def backbone(results: Mapping[str, Any], model: str) -> str:
    return results["models"][model]["backbone"]


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


def scores_and_rounds(results: Mapping[str, Any], target: str, names: Sequence[str]) -> tuple[dict, list]:
    pairs = pairs_of(results)
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
    pairs = pairs_of(results)
    neg, neg_old, frozen, frozen_old = [], [], [], []
    flagged: list[dict[str, Any]] = []
    for t in results["targets"]:
        scores, rounds = scores_and_rounds(results, t, names)
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
    _, rounds = scores_and_rounds(results, target, names)
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
    rows, rounds = [], 0
    for t in table.targets:
        conf = confidence(results, table, t, names)
        if conf is None:
            return None
        rounds = conf.rounds
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
        "rounds": rounds,
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


def verdict_fields(v: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "negative_transfer": v["negative_transfer"],
        "frozen_features": v["frozen_features"],
        "old_guard": {
            "negative_transfer": v["negative_transfer_old_guard"],
            "frozen_features": v["frozen_features_old_guard"],
        },
        "flagged": v["flagged"],
    }


# --- the report's part -----------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:4.0f}%"


def report_lines(doc: Mapping[str, Any]) -> list[str]:
    """The verdicts, the tie rule and the certainty, as the report prints them."""
    lines = [
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
            f"{pct(v['precision'])}, recall {pct(v['recall'])}, false alarms {pct(v['false_alarm_rate'])}"
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
    return lines


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
