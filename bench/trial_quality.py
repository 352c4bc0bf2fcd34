"""Would a short fine-tune of the top candidates find the model that fine-tunes best?

    python bench/trial_quality.py            # run the trials (cached in the Hub-like work folder), evaluate
    python bench/trial_quality.py --report   # evaluate the committed trials only; runs nothing

The estimators read frozen features; on the Hub-like benchmark (``bench/hub_quality.py``) the best
model of some targets ranks far down their order (photos: 10th). New evidence could close that gap:
fine-tune each of the estimators' top ``k`` candidates briefly on the user's sample and pick the
best on a validation split. This measures what that would buy before anyone builds it.

**The trial.** tlreg's own fine-tuning (``tlreg.advisor.finetune``, what ``tlreg finetune --mode
full`` runs) on each target's training split (1,000 images; 80 % trained on, 20 % validated, split
per class with seed 0), one epoch, AdamW at the ground truth's learning rate (1e-3; the new head at
10x), warm-up then cosine; the score is the validation accuracy. The trial and the ground truth
train the same way, briefly: a trial is 25 optimiser steps to the truth's 60, on 80 % of its data.
A pick among the top ``k`` takes the best trial accuracy, ties to the estimators' order.

**Judged** against the benchmark's truth (``hub_noise.truth``: test accuracy after the full
fine-tune; the mean over the seeds on the noisy targets), for every ``k`` up to :data:`TOP`: mean and
worst regret of the pick, and the cost (trials run, their seconds).

Trials are cached per (model, target, recipe) in ``WORK/trials`` (written atomically), so an
interrupted run resumes. Outputs: ``data/bench/trial_quality.json``; the report goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hub_eval as he
import hub_noise
import transfer_eval as ev
from jsonio import write_json
from tlreg.advisor import rank

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
OUT = ROOT / "data" / "bench" / "trial_quality.json"
#: the most candidates a target's trials cover (the estimators' top TOP)
TOP = 10
#: the trial's recipe: ``tlreg.advisor.finetune`` options (the rest are its defaults)
RECIPE: dict[str, Any] = {"mode": "full", "epochs": 1, "lr": 1e-3, "patience": 0, "seed": 0}


def orders(results: dict[str, Any]) -> dict[str, list[str]]:
    """Per target, the candidates in the default combined ranking's order (ties: fewer parameters,
    then name), as ``recommend`` ranks them."""
    table = he.hub_table(results)
    return {t: rank.order(ev.values_of(table, t, ev.COMBINED), table.params) for t in table.targets}


def trial_path(work: Path, target: str, model: str) -> Path:
    key = "-".join(f"{k}{v}" for k, v in sorted(RECIPE.items()))
    return work / "trials" / target / f"{model}-{key}.json"


def run_trial(work: Path, results: dict[str, Any], target: str, model: str) -> dict[str, Any]:
    """One trial through tlreg's fine-tuning, cached in the work folder."""
    path = trial_path(work, target, model)
    if path.exists():
        return json.loads(path.read_text())
    from hub_build import work_registry
    from tlreg.advisor import finetune

    n_train = results["config"]["target_train"]
    data = next((work / "targets").glob(f"{target}-v*-{n_train}-*")) / "train"
    registry = work_registry(work)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        done = finetune(
            model=results["models"][model]["ref"],
            data=data,
            out=Path(tmp) / "ft",
            registry=registry,
            record=False,
            **RECIPE,
        )
    doc = {
        "model": model,
        "target": target,
        "recipe": RECIPE,
        "val_acc": done.best_val_acc,
        "train": done.data["train"],
        "val": done.data["val"],
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_json(path, doc)
    return doc


def evaluate(results: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any]:
    """For each k: the pick among the estimators' top k by trial accuracy, judged against the truth."""
    truth = hub_noise.truth(results)
    by = {(t["model"], t["target"]): t for t in trials}
    ranked = orders(results)
    per_k: dict[int, dict[str, Any]] = {}
    targets = [t for t in results["targets"] if all((m, t) in by for m in ranked[t][:TOP])]
    for k in range(1, TOP + 1):
        per_target = {}
        for t in targets:
            top = ranked[t][:k]
            pick = max(top, key=lambda m: (by[m, t]["val_acc"], -top.index(m)))
            best = max(truth[m, t] for m in results["candidates"])
            per_target[t] = {"pick": pick, "regret": 100.0 * (best - truth[pick, t])}
        regrets = [v["regret"] for v in per_target.values()]
        per_k[k] = {
            "mean_regret": statistics.mean(regrets),
            "worst_regret": max(regrets),
            "trial_seconds": sum(by[m, t]["seconds"] for t in targets for m in ranked[t][:k]) / len(targets),
            "per_target": per_target,
        }
    agreement = {}
    for t in targets:
        top = ranked[t][:TOP]
        agreement[t] = ev.tau_w({m: by[m, t]["val_acc"] for m in top}, {m: truth[m, t] for m in top})
    return {
        "about": "short fine-tunes of the estimators' top candidates: see bench/trial_quality.py",
        "recipe": RECIPE,
        "top": TOP,
        "targets": targets,
        "per_k": per_k,
        "median_trial_seconds": statistics.median(
            by[m, t]["seconds"] for t in targets for m in ranked[t][:TOP]
        ),
        "tau_w_trial_vs_truth_in_top": agreement,
        "trials": sorted(trials, key=lambda d: (d["target"], d["model"])),
    }


def report(doc: dict[str, Any]) -> str:
    lines = [
        f"Short fine-tunes of the estimators' top k (Hub-like benchmark, {len(doc['targets'])} targets; "
        f"trial: {doc['recipe']['epochs']} epoch, lr {doc['recipe']['lr']}, mode {doc['recipe']['mode']}):",
        f"{'k':>3} {'mean regret':>11} {'worst':>6}  worst target (its pick)",
    ]
    for k, row in doc["per_k"].items():
        worst = max(row["per_target"], key=lambda t: row["per_target"][t]["regret"])
        lines.append(
            f"{k:>3} {row['mean_regret']:>11.2f} {row['worst_regret']:>6.1f}  "
            f"{worst} ({row['per_target'][worst]['pick']})"
        )
    lines.append(
        f"a trial took {doc['median_trial_seconds']:.0f} s (median; 2 cores, some shared with other work), "
        "so k trials cost about k times that per target"
    )
    lines.append(
        "trial accuracy vs truth within each target's top "
        f"{doc['top']} (weighted tau): "
        + ", ".join(f"{t} {v:+.2f}" for t, v in doc["tau_w_trial_vs_truth_in_top"].items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="Evaluate the committed trials only.")
    parser.add_argument("--work", type=Path, default=None, help="The Hub-like build's work folder.")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text())
    if args.report:
        if not args.out.is_file():
            print(f"error: {args.out}: no such file; run: python bench/trial_quality.py", file=sys.stderr)
            return 2
        trials = json.loads(args.out.read_text())["trials"]
    else:
        from hub_quality import default_work

        work = args.work or default_work()
        ranked = orders(results)
        jobs = [(t, m) for t in results["targets"] for m in ranked[t][:TOP]]
        trials = []
        for i, (t, m) in enumerate(jobs, 1):
            trials.append(run_trial(work, results, t, m))
            print(f"{i}/{len(jobs)} {m} on {t}: {trials[-1]['val_acc']:.3f}", file=sys.stderr, flush=True)
    doc = evaluate(results, trials)
    if not args.report:
        write_json(args.out, doc)
    print(report(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
