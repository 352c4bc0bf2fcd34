"""How much of the Hub-like truth on one target is its test set? (issue 13)

The Hub-like build keeps each fine-tune's test accuracy, not its per-image predictions, so the
test set's own sampling noise (about 2.2 points per accuracy on photos' 500 crops) cannot be
resampled from the committed results. This script fine-tunes every candidate on one target again
with the build's own seeds (the first fine-tune's and each repeat's), keeping the predictions, checks
that each run reproduces the accuracy the build recorded, and then resamples the test images
(a paired bootstrap: the same resampled images for every model and seed) to say how sure the truth
is of its best model, and what each ranker's regret is once that noise is counted.

    python bench/truth_resample.py --report      # from the committed predictions (seconds)
    python bench/truth_resample.py [--target photos] [--work DIR]   # fine-tune again (photos: ~30 min)

Predictions: ``data/bench/hub_truth_predictions.json``. The picks judged are those of
``data/bench/hub_quality.json`` (the default, every estimator, the heuristics).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import jsonio
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
HUB_RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
HUB_EVALUATION = ROOT / "data" / "bench" / "hub_quality.json"
PREDICTIONS = ROOT / "data" / "bench" / "hub_truth_predictions.json"
ROUNDS = 2000
SEED = 0
#: Rankers whose photos pick the report judges (``hub_quality.json``'s names).
RANKERS = (
    "combined",
    "nleep",
    "gbc",
    "leep",
    "hscore_shrinkage",
    "name_match",
    "most_params",
    "linear_probe",
)


def runs_of(results: dict[str, Any], model: str, target: str) -> list[tuple[int, float]]:
    """The build's fine-tunes of (model, target) as (seed, recorded accuracy): the first fine-tune,
    then each repeat in the order of its seed number."""
    pair = next(p for p in results["pairs"] if p["model"] == model and p["target"] == target)
    repeats = sorted(
        (r for r in results.get("repeats", []) if r["model"] == model and r["target"] == target),
        key=lambda r: r["extra"],
    )
    first = (int(pair["finetune_seed"]), float(pair["finetune_acc"]))
    return [first, *((int(r["seed"]), float(r["accuracy"])) for r in repeats)]


def predict_job(work: Path, config: dict[str, Any], ref: str, target_name: str, seed: int) -> list[int]:
    """One fine-tune exactly as the build ran it (``zoo_train.finetune``: a new head, every weight
    trained, the same budget and seed, one thread), returning the test predictions instead of their
    accuracy."""
    import hub_build as hb
    import zoo_build as zb
    import zoo_train

    cfg = hb.config_from_dict(config)
    target = hb.load_target(work, cfg, target_name, zb.Stopwatch())
    module, x_train, x_test = zb.finetune_inputs(hb.work_registry(work), ref, target)
    torch.manual_seed(seed)
    module.reset_classifier(len(target.train.classes or []))
    zoo_train.train(
        module, x_train, torch.as_tensor(np.asarray(target.train.labels)), cfg.finetune, seed=seed
    )
    return [int(v) for v in zoo_train.predict(module, x_test)]


def compute(work: Path, results: dict[str, Any], target: str, *, workers: int = 2) -> dict[str, Any]:
    """Every candidate's predictions on ``target``'s test split for each of the build's seeds (each
    run cached in the work folder), with the accuracies the build recorded for them."""
    import hub_build as hb
    import zoo_build as zb
    from jsonio import read_json
    from zoo_train import write_json

    cfg = hb.config_from_dict(results["config"])
    labels = [int(v) for v in hb.load_target(work, cfg, target, zb.Stopwatch()).test.labels]
    jobs = {}
    for m in results["candidates"]:
        for seed, _ in runs_of(results, m, target):
            path = work / "predictions" / target / f"{m}-{seed}.json"
            if not path.exists():
                jobs[path] = (work, results["config"], results["models"][m]["ref"], target, seed)
    if jobs:
        print(f"{len(jobs)} fine-tunes to run", file=sys.stderr)
        with ProcessPoolExecutor(workers, initializer=zb.init_worker) as pool:
            futures = {path: pool.submit(predict_job, *args) for path, args in jobs.items()}
            for done, (path, future) in enumerate(futures.items(), 1):
                write_json(path, {"predictions": future.result()})
                print(f"  {done}/{len(jobs)} {path.name}", file=sys.stderr, flush=True)
    models = {}
    for m in results["candidates"]:
        runs = runs_of(results, m, target)
        seeds = [seed for seed, _ in runs]
        models[m] = {
            "seeds": seeds,
            "recorded": [acc for _, acc in runs],
            "predictions": [
                read_json(work / "predictions" / target / f"{m}-{s}.json")["predictions"] for s in seeds
            ],
        }
    return {"target": target, "labels": labels, "models": models}


# --- evaluation -----------------------------------------------------------------------------------


def correctness(doc: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """Models and their per-image correctness averaged over the seeds ([models, images], in [0, 1])."""
    labels = np.asarray(doc["labels"])
    models = list(doc["models"])
    hits = np.stack([(np.asarray(doc["models"][m]["predictions"]) == labels).mean(0) for m in models])
    return models, hits


def evaluate(doc: dict[str, Any], picks: dict[str, str], *, rounds: int = ROUNDS, seed: int = SEED) -> dict:
    """The paired bootstrap over test images: each model's chance of being best, the best model's
    lead, and each ranker's regret (points) with a 90 % interval; the reproduction check."""
    models, hits = correctness(doc)
    labels = np.asarray(doc["labels"])
    reproduced = [
        abs(float((np.asarray(p) == labels).mean()) - r) < 1e-9
        for m in models
        for p, r in zip(doc["models"][m]["predictions"], doc["models"][m]["recorded"], strict=True)
    ]
    rng = np.random.default_rng(seed)
    n = hits.shape[1]
    acc = np.stack([hits[:, rng.integers(0, n, n)].mean(1) for _ in range(rounds)])  # [rounds, models]
    full = hits.mean(1)
    best = models[int(np.argmax(full))]
    p_best = np.bincount(acc.argmax(1), minlength=len(models)) / rounds
    regrets = {}
    for name, pick in picks.items():
        r = 100.0 * (acc.max(1) - acc[:, models.index(pick)])
        regrets[name] = {
            "pick": pick,
            "regret": float(100.0 * (full.max() - full[models.index(pick)])),
            "mean": float(r.mean()),
            "interval": [float(np.quantile(r, 0.05)), float(np.quantile(r, 0.95))],
        }
    lead = 100.0 * (acc[:, models.index(best)] - np.delete(acc, models.index(best), axis=1).max(1))
    return {
        "target": doc["target"],
        "test_images": int(n),
        "rounds": rounds,
        "reproduced": f"{sum(reproduced)} of {len(reproduced)}",
        "best": best,
        "p_best": {
            m: float(p) for m, p in sorted(zip(models, p_best, strict=True), key=lambda kv: -kv[1]) if p > 0
        },
        "lead_pp": {
            "full": float(100.0 * (np.sort(full)[-1] - np.sort(full)[-2])),
            "interval": [float(np.quantile(lead, 0.05)), float(np.quantile(lead, 0.95))],
        },
        "regret": regrets,
    }


def report(ev: dict[str, Any]) -> str:
    lines = [
        f"{ev['target']}: {ev['test_images']} test images resampled {ev['rounds']} times (paired: the same "
        "images for every model and seed); predictions reproduce the build's accuracies for "
        f"{ev['reproduced']} fine-tunes",
        f"best on the whole test set: {ev['best']}, {ev['lead_pp']['full']:.1f} points ahead "
        f"(90 % interval of its lead over the resamples: {ev['lead_pp']['interval'][0]:+.1f} to "
        f"{ev['lead_pp']['interval'][1]:+.1f})",
        "how often each model is best: "
        + ", ".join(f"{m} {100 * p:.0f} %" for m, p in list(ev["p_best"].items())[:6]),
        "",
        f"{'ranker':<18} {'pick':<30} {'regret':>7} {'resampled':>10} {'90 % interval':>16}",
    ]
    for name, r in ev["regret"].items():
        lines.append(
            f"{name:<18} {r['pick']:<30} {r['regret']:7.1f} {r['mean']:10.1f} "
            f"{r['interval'][0]:7.1f} to {r['interval'][1]:5.1f}"
        )
    return "\n".join(lines)


def picks_of(target: str) -> dict[str, str]:
    per = json.loads(HUB_EVALUATION.read_text())["per_target"]
    return {name: per[name][target]["pick"] for name in RANKERS if target in per[name]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--report", action="store_true", help="use the committed predictions; fine-tune nothing"
    )
    parser.add_argument("--target", default="photos", help="the Hub-like target (default photos)")
    parser.add_argument("--work", type=Path, help="the Hub-like build's work folder (default: its own)")
    args = parser.parse_args()
    if args.report:
        # a rebuilt benchmark: its documents are made again from its checkpoints
        if not PREDICTIONS.is_file():
            sys.exit(
                f"error: {PREDICTIONS.relative_to(ROOT)} is not committed for this build; "
                f"run: python bench/truth_resample.py"
            )
        doc = json.loads(PREDICTIONS.read_text())
    else:
        from hub_quality import default_work

        doc = compute(args.work or default_work(), json.loads(HUB_RESULTS.read_text()), args.target)
        jsonio.write_json(PREDICTIONS, doc, compact=True)
        print(f"wrote {PREDICTIONS.relative_to(ROOT)}", file=sys.stderr)
    print(report(evaluate(doc, picks_of(doc["target"]))))


if __name__ == "__main__":
    main()
