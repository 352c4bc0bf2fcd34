"""Judging tlreg's transfer plan and learning curve against the partial and full fine-tunes.

For each (candidate, target) of the transfer-plan build, the modes' test accuracies are the ground
truth: ``linear`` (the linear probe on frozen features), ``partial-K`` (the last K blocks) and
``full``. A policy's loss on a pair is the best mode's accuracy minus the policy's mode's, in points.
Policies: tlreg's plan (``tlreg.advisor.plan.make_plan`` on the evidence ``recommend`` has: the
depth profile, the learning curve from the sample, the frozen-feature verdict), and the fixed
policies always linear, always partial (the last 2 blocks, ``tlreg finetune``'s default) and always
full. A plan that unfreezes a number of blocks the build did not measure is judged on the nearest
measured one.

The learning curve: the accuracy it predicts for the full training split from a quarter of it,
against the linear probe trained on the full split; mean absolute error and how often the truth
falls in the 80 % interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import hub_claims as hc
import hub_eval as he
import numpy as np
from tlreg.advisor import rank
from tlreg.advisor.depth import DepthProfile
from tlreg.advisor.learning_curve import LearningCurve
from tlreg.advisor.plan import make_plan
from tlreg.advisor.verdicts import beaten_by, verdict_names

FIXED = {"always_linear": ("linear", None), "always_partial": ("partial", 2), "always_full": ("full", None)}


def truth(results: Mapping[str, Any], hub: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """{(model, target): {mode: accuracy}} for every pair the plan build measured."""
    pairs = {(p["model"], p["target"]): p for p in hub["pairs"]}
    out: dict[tuple[str, str], dict[str, float]] = {}
    for t, models in results["chosen"].items():
        for m in models:
            out[m, t] = {"linear": pairs[m, t]["probe_acc"], "full": pairs[m, t]["finetune_acc"]}
    for p in results["partials"]:
        out[p["model"], p["target"]][f"partial-{p['unfreeze']}"] = p["accuracy"]
    return out


def accuracy_of(modes: Mapping[str, float], mode: str, unfreeze: int | None) -> tuple[float, str]:
    """The measured accuracy of a (mode, unfreeze) choice, the nearest measured partial for others."""
    if mode != "partial":
        return modes[mode], mode
    measured = sorted(int(k.split("-")[1]) for k in modes if k.startswith("partial-"))
    k = min(measured, key=lambda v: (abs(v - (unfreeze or 2)), -v))
    return modes[f"partial-{k}"], f"partial-{k}"


def _profile(doc: Mapping[str, Any]) -> DepthProfile:
    return DepthProfile(list(doc["blocks"]), list(doc["scores"]), doc["estimator"])


def _curve(doc: Mapping[str, Any]) -> LearningCurve:
    fields = {
        k: doc[k]
        for k in ("metric", "points", "params", "repeat_params", "residual_sd", "n_labelled", "note")
    }
    return LearningCurve(**fields)


def plans(results: Mapping[str, Any], hub: Mapping[str, Any], **options: Any) -> dict[tuple[str, str], Any]:
    """tlreg's plan for every measured pair, from the evidence recommend would have."""
    names = list(rank.DEFAULT_ESTIMATORS["classification"])
    out = {}
    by_pair = {(p["model"], p["target"]): p for p in results["profiles"]}
    for (m, t), doc in by_pair.items():
        # the rounds of the estimators the verdict compares by (the ranking's need not have been resampled)
        scores, rounds = hc.scores_and_rounds(hub, t, verdict_names("classification", names))
        random_init = f"{he.backbone(hub, m)}-random"
        beaten = beaten_by(  # as recommend judges: by the verdict estimators
            m,
            scores,
            [random_init, "raw"],
            verdict_names("classification", names),
            n_classes=len(hub["targets"][t]["classes"]),
            rounds=rounds,
        )
        out[m, t] = make_plan(
            profile=_profile(doc["profile"]),
            curve=_curve(doc["curve"]),
            frozen_beaten_by=beaten,
            n_labelled=int(doc["curve"]["full"]),
            **options,
        )
    return out


def policy_losses(results: Mapping[str, Any], hub: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """Mean points lost to the best mode in hindsight, per policy, overall and per target."""
    modes = truth(results, hub)
    chosen = plans(results, hub, **options)
    losses: dict[str, dict[tuple[str, str], float]] = {n: {} for n in ("tlreg", *FIXED)}
    picked: dict[tuple[str, str], str] = {}
    for pair, accs in modes.items():
        best = max(accs.values())
        plan = chosen[pair]
        acc, label = accuracy_of(accs, plan.mode, plan.unfreeze)
        losses["tlreg"][pair] = 100.0 * (best - acc)
        picked[pair] = label
        for name, (mode, k) in FIXED.items():
            losses[name][pair] = 100.0 * (best - accuracy_of(accs, mode, k)[0])
    targets = sorted({t for _, t in modes})
    return {
        "mean": {n: float(np.mean(list(v.values()))) for n, v in losses.items()},
        "per_target": {
            n: {t: float(np.mean([x for (m, tt), x in v.items() if tt == t])) for t in targets}
            for n, v in losses.items()
        },
        "modes_chosen": {
            mode: sum(1 for v in picked.values() if v == mode) for mode in sorted(set(picked.values()))
        },
        "best_modes": {
            mode: sum(1 for accs in modes.values() if max(accs, key=accs.__getitem__) == mode)
            for mode in sorted({k for accs in modes.values() for k in accs})
        },
        "pairs": [
            {
                "model": m,
                "target": t,
                "accuracies": modes[m, t],
                "plan": chosen[m, t].to_dict() | {"judged_as": picked[m, t]},
                "loss_pp": losses["tlreg"][m, t],
            }
            for (m, t) in sorted(modes, key=lambda p: (p[1], p[0]))
        ],
    }


def curve_quality(results: Mapping[str, Any], hub: Mapping[str, Any]) -> dict[str, Any]:
    """The learning curve's prediction at the full training size against the probe trained on it."""
    probe = {(p["model"], p["target"]): p["probe_acc"] for p in hub["pairs"]}
    rows = []
    for doc in results["profiles"]:
        pred = doc["curve"].get("prediction")
        if not pred:
            continue
        true = probe[doc["model"], doc["target"]]
        rows.append(
            {
                "model": doc["model"],
                "target": doc["target"],
                "truth": true,
                **{k: pred[k] for k in ("expected", "low", "high")},
                "inside": pred["low"] <= true <= pred["high"],
            }
        )
    return {
        "mae_pp": float(np.mean([100 * abs(r["expected"] - r["truth"]) for r in rows])) if rows else math.nan,
        "coverage": float(np.mean([r["inside"] for r in rows])) if rows else math.nan,
        "curves": len(rows),
        "without_curve": len(results["profiles"]) - len(rows),
        "rows": rows,
    }


#: The linear-probe thresholds the plan's rule 2 is chosen among (None: never recommend linear).
THRESHOLDS: tuple[float | None, ...] = (0.95, 0.97, 0.98, 0.99, 0.995, None)


def threshold_loto(results: Mapping[str, Any], hub: Mapping[str, Any]) -> dict[str, Any]:
    """Rule 2's threshold chosen leave-one-target-out: for each target, the threshold with the lowest
    mean loss on the others (ties: the more conservative, a higher threshold, then never), judged on
    the held-out target; and each threshold's loss on all pairs."""
    per_pair = {th: policy_losses(results, hub, linear_enough=th) for th in THRESHOLDS}
    targets = sorted(next(iter(per_pair.values()))["per_target"]["tlreg"])

    def loss(th: float | None, keep: Sequence[str]) -> float:
        pairs = [p for p in per_pair[th]["pairs"] if p["target"] in keep]
        return float(np.mean([p["loss_pp"] for p in pairs]))

    order = sorted(THRESHOLDS, key=lambda th: math.inf if th is None else th)  # conservative last
    folds = {}
    for held in targets:
        rest = [t for t in targets if t != held]
        chosen = min(reversed(order), key=lambda th: round(loss(th, rest), 9))
        folds[held] = {"threshold": chosen, "loss_pp": loss(chosen, [held])}
    return {
        "by_threshold_pp": {str(th): per_pair[th]["mean"]["tlreg"] for th in THRESHOLDS},
        "folds": folds,
        "loto_loss_pp": float(np.mean([f["loss_pp"] for f in folds.values()])),
    }


def evaluate(results: Mapping[str, Any], hub: Mapping[str, Any]) -> dict[str, Any]:
    losses = policy_losses(results, hub)
    with_profile = policy_losses(results, hub, use_profile=True)
    fixed_best = min(losses["mean"][n] for n in FIXED)
    return {
        "about": "Transfer plan and learning curve against partial and full fine-tunes: "
        "see bench/transfer_plan.py.",
        "plan_loss_pp": losses["mean"],
        "plan_loss_per_target_pp": losses["per_target"],
        "plan_loss_with_profile_pp": with_profile["mean"]["tlreg"],
        "linear_threshold": threshold_loto(results, hub),
        "modes_chosen": losses["modes_chosen"],
        "best_modes": losses["best_modes"],
        "goal": {
            "not_worse_than_best_fixed_policy": losses["mean"]["tlreg"] <= fixed_best + 1e-9,
            "at_most_1pp_behind_hindsight": losses["mean"]["tlreg"] <= 1.0,
        },
        "curve": curve_quality(results, hub),
        "pairs": losses["pairs"],
    }


def report(doc: Mapping[str, Any]) -> str:
    threshold = doc["linear_threshold"]
    folds = threshold["folds"].values()
    lines = [
        "Transfer plan: points lost against the best mode in hindsight "
        "(linear probe, last 1/2/half blocks, full)",
        "",
        f"{'policy':<16} {'mean':>6}  "
        + " ".join(f"{t[:9]:>9}" for t in next(iter(doc["plan_loss_per_target_pp"].values()))),
    ]
    for name, mean in doc["plan_loss_pp"].items():
        per = doc["plan_loss_per_target_pp"][name]
        lines.append(f"{name:<16} {mean:>6.2f}  " + " ".join(f"{v:>9.2f}" for v in per.values()))
    lines += [
        "",
        "tlreg's plan with the depth profile (rule 3, off by default): "
        f"{doc['plan_loss_with_profile_pp']:.2f}",
        "linear-head threshold (rule 2), loss by threshold: "
        + ", ".join(f"{k} {v:.2f}" for k, v in threshold["by_threshold_pp"].items())
        + f"; chosen leave-one-target-out: {sorted({str(f['threshold']) for f in folds})}"
        f" (held-out loss {threshold['loto_loss_pp']:.2f})",
        f"modes tlreg chose: {doc['modes_chosen']}; best modes in hindsight: {doc['best_modes']}",
        f"goal: not worse than the best fixed policy {doc['goal']['not_worse_than_best_fixed_policy']}; "
        f"at most 1 point behind hindsight {doc['goal']['at_most_1pp_behind_hindsight']}",
        "",
        f"Learning curve from a quarter of the training split, predicting the probe on all of it: "
        f"MAE {doc['curve']['mae_pp']:.1f} points, 80 % interval covers {doc['curve']['coverage']:.0%} "
        f"of {doc['curve']['curves']} ({doc['curve']['without_curve']} without a curve)",
    ]
    return "\n".join(lines)
