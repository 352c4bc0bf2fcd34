"""Would a short fine-tune of the top candidates find the model that fine-tunes best?

    python bench/trial_quality.py                  # the Hub-like benchmark's trials (cached), evaluate
    python bench/trial_quality.py --bench first    # the first benchmark's (rebuilds its zoo's models)
    python bench/trial_quality.py --seeds 2        # ... each trial with seeds 0 and 1 (the split, init)
    python bench/trial_quality.py --epochs 3 --top 5   # longer trials of the top 5 (their own document)
    python bench/trial_quality.py --epochs 3 --top 21  # every Hub-like candidate: the brute-force bound
    python bench/trial_quality.py --report         # evaluate the committed trials only; runs nothing

The estimators read frozen features; on the Hub-like benchmark (``bench/hub_quality.py``) the best
model of some targets ranks far down their order. New evidence could close that gap: fine-tune each
of the estimators' top ``k`` candidates briefly on the user's sample and pick the best on a
validation split. This measures what that would buy before anyone builds it, on both benchmarks.

**The trial.** tlreg's own fine-tuning (``tlreg.advisor.finetune``, what ``tlreg finetune --mode
full`` runs) on each target's training split (80 % trained on, 20 % validated, split per class with
the trial's seed), one epoch, AdamW at the ground truth's learning rate (1e-3; the new head at 10x),
warm-up then cosine; the score is the validation accuracy. The trial and the ground truth train the
same way, briefly (Hub-like: 25 optimiser steps to the truth's 60, on 80 % of its data). A pick
among the top ``k`` takes the best trial accuracy, ties to the estimators' order. With ``--seeds S``
every trial runs with seeds 0 .. S-1 (another validation split and head initialisation each): how
much a pick owes to one split's luck.

Neither benchmark keeps its work folder in the repository: a model the work folder lacks is made
again here by its build's own code with the recorded seeds (a Hub-like descendant by
``hub_build.build_descendant``, checked against the source accuracy the build recorded; a first
benchmark zoo model by ``zoo_build.build_model``, checked against its pretraining loss) and
registered as the build registers it.

**Judged** against each benchmark's truth (``hub_noise.truth``: test accuracy after the full
fine-tune; the mean over the seeds on the noisy targets), for every ``k`` the trials cover: mean and
worst regret of the pick, the weighted τ of the ranking the trials re-order (the top ``k`` by trial
accuracy, then the rest in the estimators' order), and the cost (trials run, their seconds). With
both benchmarks' trials committed, ``k`` is also chosen as a default would be: leave-one-target-out
over their pooled targets (the ``k`` with the lowest mean regret on the others, ties to the smaller).

Trials are cached per (model, target, recipe) in ``WORK/trials`` (written atomically), so an
interrupted run resumes. Outputs: ``data/bench/trial_quality.json`` (Hub-like) and
``data/bench/trial_quality_first.json``; the report goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hub_eval as he
import transfer_eval as ev
from jsonio import write_json
from tlreg.advisor import rank

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("hub", "first")
RESULTS = {
    "hub": ROOT / "data" / "bench" / "hub_quality_results.json",
    "first": ROOT / "data" / "bench" / "transfer_quality_results.json",
}
OUT = {
    "hub": ROOT / "data" / "bench" / "trial_quality.json",
    "first": ROOT / "data" / "bench" / "trial_quality_first.json",
}
TITLE = {"hub": "Hub-like benchmark", "first": "first benchmark"}
#: how many of the estimators' top candidates a run tries by default (``--top``; ``--top 21`` on the
#: Hub-like benchmark tries every candidate: the brute-force bound)
TOP = 10
#: the trial's recipe: ``tlreg.advisor.finetune`` options (the rest are its defaults); ``seed`` is
#: set per trial (0 unless ``--seeds``)
RECIPE: dict[str, Any] = {"mode": "full", "epochs": 1, "lr": 1e-3, "patience": 0, "seed": 0}


def table_of(results: Mapping[str, Any]) -> ev.Table:
    """The benchmark's candidates and truth as ``transfer_eval`` judges them (Hub-like: the random
    inits are baselines, not candidates; the first benchmark's candidates include them)."""
    return he.hub_table(results)


def orders(results: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per target, the candidates in the default combined ranking's order (ties: fewer parameters,
    then name), as ``recommend`` ranks them."""
    table = table_of(results)
    return {t: rank.order(ev.values_of(table, t, ev.COMBINED), table.params) for t in table.targets}


def recipe(seed: int, epochs: int = 1) -> dict[str, Any]:
    return {**RECIPE, "epochs": epochs, "seed": seed}


def out_path(bench: str, epochs: int = 1) -> Path:
    """Where a benchmark's trials of ``epochs`` epochs are evaluated (``-eN`` beyond the default)."""
    return OUT[bench] if epochs == 1 else OUT[bench].with_name(f"{OUT[bench].stem}-e{epochs}.json")


def trial_path(work: Path, target: str, model: str, seed: int = 0, epochs: int = 1) -> Path:
    key = "-".join(f"{k}{v}" for k, v in sorted(recipe(seed, epochs).items()))
    return work / "trials" / target / f"{model}-{key}.json"


# --- where a trial's model and data come from ------------------------------------------------------


def _single_threaded(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on one thread, as the builds' worker processes run (``zoo_build.init_worker``):
    the same seed on two threads sums in another order and trains another model."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return fn(*args)
    finally:
        torch.set_num_threads(threads)


#: what a trial's inputs are: the registry, the model's ref, the target's training folder, and how the
#: model made again differs from the build's (``{}`` where it is the build's own)
Inputs = tuple[Any, str, Path, dict[str, Any]]


def hub_inputs(work: Path, results: Mapping[str, Any], target: str, model: str) -> Inputs:
    """The Hub-like build's model, made again by its build's code where the work folder lacks it (a
    descendant is checked against the source accuracy the build recorded) and registered as the build
    registers it, the build's registry and the target's training folder."""
    import hub_build as hb
    import zoo_build as zb

    cfg = hb.config_from_dict(results["config"])
    registry = hb.work_registry(work)
    lite, source = hb.split_id(model)
    differs: dict[str, Any] = {}
    if source == hb.RANDOM:
        folder = hb.build_random(work, cfg, lite)
    else:
        registry.import_from("bundled")  # the original's weights: the bundled ImageNet Lite
        folder = hb.build_original(work, cfg, lite, registry)
    if source not in (hb.RANDOM, hb.ORIGINAL):
        hb.register(work, folder)  # the descendant's parent, which build_descendant looks up
        folder = _single_threaded(hb.build_descendant, work, cfg, model, zb.Stopwatch())
        made = json.loads((folder / "meta.json").read_text())["descend"]["val_accuracy"]
        recorded = results["models"][model]["descend"]["val_accuracy"]
        if abs(made - recorded) > 1e-6:
            # the same data and seed on another CPU sums in another order: in effect a sibling
            differs = {"source_val_accuracy": made, "build_source_val_accuracy": recorded}
            print(
                f"note: {model} made again is not the build's (source accuracy {made:.4f}, "
                f"the build's {recorded:.4f})",
                file=sys.stderr,
            )
    ref = hb.register(work, folder)
    hb.load_target(work, cfg, target, zb.Stopwatch())
    n_train = results["config"]["target_train"]
    data = next((work / "targets").glob(f"{target}-v*-{n_train}-*")) / "train"
    return registry, ref, data, differs


@functools.cache
def _first_registry(work: Path) -> Any:
    from tlreg.registry import Registry

    registry = Registry(f"sqlite:///{work / 'registry.db'}")
    registry.import_from("bundled")  # the ImageNet Lites' weights, saved at 64 px as the build does
    return registry


def first_inputs(work: Path, results: Mapping[str, Any], target: str, model: str) -> Inputs:
    """The first benchmark's model made again by its build's code (checked against what the build
    recorded), registered as the build registers it, and the target's training folder."""
    import zoo_build as zb

    cfg = zb.BuildConfig(seed=results["config"]["seed"])
    if cfg.to_dict()["pretrain"] != results["config"]["pretrain"]:
        raise SystemExit("the first benchmark's recipe changed since its results were built")
    registry = _first_registry(work)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    folder = _single_threaded(zb.build_model, work, cfg, model, registry, zb.Stopwatch(), log)
    differs: dict[str, Any] = {}
    made = json.loads((folder / "meta.json").read_text()).get("pretrain")
    recorded = results["models"][model].get("pretrain")
    if (made is None) != (recorded is None) or (
        made and abs(made["final_loss"] - recorded["final_loss"]) > 1e-6
    ):
        differs = {
            "pretrain_final_loss": made and made["final_loss"],
            "build_pretrain_final_loss": recorded and recorded["final_loss"],
        }
        print(f"note: {model} made again is not the build's (pretraining loss differs)", file=sys.stderr)
    record, _ = registry.add_ref(str(folder))
    target_data = zb.load_target(work, cfg, target, zb.Stopwatch())
    root = work / "targets"
    data = next(root.glob(f"{target}-v*-{cfg.target_train}-{cfg.target_test}")) / "train"
    assert len(target_data.train) == cfg.target_train
    return registry, record.ref, data, differs


INPUTS = {"hub": hub_inputs, "first": first_inputs}


def run_trial(
    work: Path,
    results: Mapping[str, Any],
    target: str,
    model: str,
    *,
    bench: str = "hub",
    seed: int = 0,
    epochs: int = 1,
) -> dict[str, Any]:
    """One trial through tlreg's fine-tuning, cached in the work folder."""
    path = trial_path(work, target, model, seed, epochs)
    if path.exists():
        return json.loads(path.read_text())
    from tlreg.advisor import finetune

    registry, ref, data, differs = INPUTS[bench](work, results, target, model)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        done = finetune(
            model=ref,
            data=data,
            out=Path(tmp) / "ft",
            registry=registry,
            record=False,
            **recipe(seed, epochs),
        )
    doc = {
        "model": model,
        "target": target,
        "recipe": recipe(seed, epochs),
        "val_acc": done.best_val_acc,
        "train": done.data["train"],
        "val": done.data["val"],
        "seconds": round(time.perf_counter() - start, 2),
        # the model was made again (no work folder) and is not bit for bit the build's
        **({"made_again": differs} if differs else {}),
    }
    write_json(path, doc)
    return doc


# --- evaluation ------------------------------------------------------------------------------------


def reordered(order: Sequence[str], val: Mapping[str, float], k: int) -> dict[str, float]:
    """The ranking after the trials, as values (higher first): the top ``k`` by trial accuracy (ties
    to the estimators' order), then the others in the estimators' order."""
    return {m: (2.0 + val[m] - i * 1e-9 if i < k else -float(i)) for i, m in enumerate(order)}


def evaluate_seed(
    table: ev.Table,
    ranked: Mapping[str, list[str]],
    by: Mapping[tuple[str, str], Mapping[str, Any]],
    top: int = TOP,
) -> dict[str, Any]:
    """One seed's trials: per ``k`` the pick, its regret and the re-ordered ranking's τw per target."""
    targets = [t for t in table.targets if all((m, t) in by for m in ranked[t][:top])]
    per_k: dict[int, dict[str, Any]] = {}
    for k in range(1, top + 1):
        per_target = {}
        for t in targets:
            truth = table.accuracy[t]
            values = reordered(ranked[t], {m: by[m, t]["val_acc"] for m in ranked[t][:k]}, k)
            pick = max(values, key=values.get)
            per_target[t] = {
                "pick": pick,
                "regret": 100.0 * (max(truth.values()) - truth[pick]),
                "tau_w": ev.tau_w(values, truth),
            }
        regrets = [v["regret"] for v in per_target.values()]
        per_k[k] = {
            "mean_regret": statistics.mean(regrets),
            "worst_regret": max(regrets),
            "mean_tau_w": statistics.mean(v["tau_w"] for v in per_target.values()),
            "trial_seconds": sum(by[m, t]["seconds"] for t in targets for m in ranked[t][:k]) / len(targets),
            "per_target": per_target,
        }
    agreement = {
        t: ev.tau_w(
            {m: by[m, t]["val_acc"] for m in ranked[t][:top]},
            {m: table.accuracy[t][m] for m in ranked[t][:top]},
        )
        for t in targets
    }
    return {"targets": targets, "per_k": per_k, "tau_w_trial_vs_truth_in_top": agreement}


def evaluate(
    results: Mapping[str, Any], trials: list[dict[str, Any]], *, bench: str = "hub"
) -> dict[str, Any]:
    """For each seed and ``k``: the pick among the estimators' top ``k`` by trial accuracy, judged
    against the truth; ``per_k`` summarises over the seeds (mean of the means, the worst of any)."""
    table = table_of(results)
    ranked = orders(results)
    seeds = sorted({int(t["recipe"]["seed"]) for t in trials})
    epochs = sorted({int(t["recipe"]["epochs"]) for t in trials})
    if len(epochs) > 1:
        raise ValueError(f"trials of {epochs} epochs mixed: evaluate one recipe at a time")
    tried = {(t["model"], t["target"]) for t in trials}
    top = max(  # the top the trials cover (a target with fewer is left out)
        next((i for i, m in enumerate(ranked[t]) if (m, t) not in tried), len(ranked[t]))
        for t in {d["target"] for d in trials}
    )
    per_seed = {
        s: evaluate_seed(
            table, ranked, {(t["model"], t["target"]): t for t in trials if t["recipe"]["seed"] == s}, top
        )
        for s in seeds
    }
    targets = [t for t in table.targets if all(t in per_seed[s]["targets"] for s in seeds)]
    repeats: dict[str, Any] = {}
    if len(seeds) > 1:  # each candidate tried on every seed's split, ranked by the mean: --trial-repeats
        runs: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for t in trials:
            runs.setdefault((t["model"], t["target"]), []).append(t)
        averaged = {
            key: {
                "val_acc": statistics.mean(r["val_acc"] for r in rs),
                "seconds": sum(r["seconds"] for r in rs),
            }
            for key, rs in runs.items()
            if len(rs) == len(seeds)
        }
        repeats = {"n": len(seeds), **evaluate_seed(table, ranked, averaged, top)}
    per_k = {
        k: {
            "mean_regret": statistics.mean(per_seed[s]["per_k"][k]["mean_regret"] for s in seeds),
            "worst_regret": max(per_seed[s]["per_k"][k]["worst_regret"] for s in seeds),
            "mean_tau_w": statistics.mean(per_seed[s]["per_k"][k]["mean_tau_w"] for s in seeds),
            "trial_seconds": statistics.mean(per_seed[s]["per_k"][k]["trial_seconds"] for s in seeds),
        }
        for k in range(1, top + 1)
    }
    again = sorted({t["model"] for t in trials if t.get("made_again")})
    return {
        "about": "short fine-tunes of the estimators' top candidates: see bench/trial_quality.py",
        "bench": bench,
        "recipe": {**RECIPE, "epochs": epochs[0]},
        "top": top,
        "seeds": seeds,
        "targets": targets,
        "per_k": per_k,
        "per_seed": per_seed,
        "repeats": repeats,
        "median_trial_seconds": statistics.median(
            t["seconds"] for t in trials if t["model"] in ranked[t["target"]][:top]
        ),
        # models made again without the build's work folder: the same recipe and seed on another
        # machine, so not bit for bit the build's (in effect a sibling checkpoint)
        **({"made_again": again} if again else {}),
        "trials": sorted(trials, key=lambda d: (d["target"], d["model"], d["recipe"]["seed"])),
    }


def choose_k(docs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``k`` chosen as a default would be, per view (each seed; the seeds' mean, as ``--trial-repeats``
    ranks, where every document has it): for each of the pooled targets, the ``k`` with the lowest mean
    regret on the others (ties to the smaller), judged on it."""
    out: dict[str, Any] = {}
    views = [_views(d) for d in docs.values()]
    for s in [v for v in views[0] if all(v in other for other in views[1:])]:
        regret = {
            (f"{b}/{t}", k): row["per_target"][t]["regret"]
            for b, view in zip(docs, views, strict=True)
            for k, row in view[s].items()
            for t in row["per_target"]
        }
        targets = sorted({t for t, _ in regret})
        ks = [k for k in sorted({k for _, k in regret}) if all((t, k) in regret for t in targets)]
        folds = {}
        for held in targets:
            rest = [t for t in targets if t != held]
            k = min(ks, key=lambda k: (statistics.mean(regret[t, k] for t in rest), k))
            folds[held] = {"k": k, "regret": regret[held, k]}
        out[str(s)] = {
            "folds": folds,
            "ks": sorted({f["k"] for f in folds.values()}),
            **{
                b: {
                    "mean_regret": statistics.mean(
                        f["regret"] for t, f in folds.items() if t.startswith(b + "/")
                    ),
                    "worst_regret": max(f["regret"] for t, f in folds.items() if t.startswith(b + "/")),
                }
                for b in docs
            },
        }
    return out


def _per_k(per_seed: Mapping[Any, Any], seed: int) -> dict[int, dict[str, Any]]:
    """A seed's per-k rows, keys as ints whether the document came from memory or from JSON."""
    row = per_seed.get(seed, per_seed.get(str(seed)))
    return {int(k): v for k, v in row["per_k"].items()}


#: the view of the seeds' mean (``--trial-repeats``) in :func:`choose_k`
MEAN = "mean"


def _views(doc: Mapping[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """A document's per-k rows by view: each seed (``"0"``, ``"1"``, ...), and :data:`MEAN` where the
    trials were repeated."""
    views = {str(s): _per_k(doc["per_seed"], s) for s in doc["seeds"]}
    if (doc.get("repeats") or {}).get("per_k"):
        views[MEAN] = {int(k): v for k, v in doc["repeats"]["per_k"].items()}
    return views


def report(doc: Mapping[str, Any]) -> str:
    seeds = doc["seeds"]
    lines = [
        f"Short fine-tunes of the estimators' top k ({TITLE[doc['bench']]}, {len(doc['targets'])} targets; "
        f"trial: {doc['recipe']['epochs']} epoch{'s' if doc['recipe']['epochs'] > 1 else ''}, "
        f"lr {doc['recipe']['lr']}, mode {doc['recipe']['mode']}; "
        f"seeds {', '.join(map(str, seeds))}):",
        f"{'k':>3} {'mean regret':>11} {'worst':>6} {'mean tau_w':>10}  "
        + "  ".join(f"seed {s}: mean / worst (worst target, its pick)" for s in seeds),
    ]
    for k, row in doc["per_k"].items():
        cells = []
        for s in seeds:
            r = _per_k(doc["per_seed"], s)[int(k)]
            worst = max(r["per_target"], key=lambda t: r["per_target"][t]["regret"])
            cells.append(
                f"seed {s}: {r['mean_regret']:.2f} / {r['worst_regret']:.1f} "
                f"({worst}, {r['per_target'][worst]['pick']})"
            )
        lines.append(
            f"{k:>3} {row['mean_regret']:>11.2f} {row['worst_regret']:>6.1f} {row['mean_tau_w']:>10.3f}  "
            + "  ".join(cells)
        )
    rep = doc.get("repeats") or {}
    if rep.get("per_k"):
        lines.append(
            f"each candidate tried on all {rep['n']} seeds' splits and ranked by the mean "
            f"(--trial-repeats {rep['n']}, {rep['n']}x the cost):"
        )
        for k, r in rep["per_k"].items():
            worst = max(r["per_target"], key=lambda t: r["per_target"][t]["regret"])
            lines.append(
                f"{k:>3} {r['mean_regret']:>11.2f} {r['worst_regret']:>6.1f} {r['mean_tau_w']:>10.3f}  "
                f"worst: {worst}, {r['per_target'][worst]['pick']}"
            )
    lines.append(
        f"a trial took {doc['median_trial_seconds']:.0f} s (median; 2 cores, some shared with other work), "
        "so k trials cost about k times that per target"
    )
    if doc.get("made_again"):
        lines.append(
            f"{len(doc['made_again'])} models were made again for these trials (the build's recipe and seed "
            "on another machine: not bit for bit the build's checkpoints, in effect siblings)"
        )
    for s in seeds:
        agreement = (doc["per_seed"].get(s) or doc["per_seed"][str(s)])["tau_w_trial_vs_truth_in_top"]
        lines.append(
            f"seed {s}: trial accuracy vs truth within each target's top {doc['top']} (weighted tau): "
            + ", ".join(f"{t} {v:+.2f}" for t, v in agreement.items())
        )
    return "\n".join(lines)


def report_k(chosen: Mapping[str, Any]) -> str:
    lines = [
        "k chosen leave-one-target-out over both benchmarks' targets (lowest mean regret on the others):"
    ]
    for s, c in chosen.items():
        figures = "; ".join(
            f"{b}: mean regret {v['mean_regret']:.2f}, worst {v['worst_regret']:.1f}"
            for b, v in c.items()
            if b in BENCHES
        )
        view = f"{s} of the seeds" if s == MEAN else f"seed {s}"
        lines.append(f"  {view}: k in {c['ks']} across the folds; held out, {figures}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="Evaluate the committed trials only.")
    parser.add_argument("--bench", choices=BENCHES, default="hub", help="Which benchmark (default hub).")
    parser.add_argument("--seeds", type=int, default=1, help="Run each trial with seeds 0 .. N-1.")
    parser.add_argument(
        "--epochs", type=int, default=1, help="Each trial's epochs (default 1; others: their own document)."
    )
    parser.add_argument("--top", type=int, default=TOP, help=f"Try the top N (default {TOP}).")
    parser.add_argument("--work", type=Path, default=None, help="The benchmark's work folder.")
    parser.add_argument("--out", type=Path, default=None, help="Where the evaluation goes.")
    args = parser.parse_args(argv)
    docs: dict[str, dict[str, Any]] = {}
    if args.report:
        for bench in BENCHES:
            out = out_path(bench, args.epochs) if args.out is None or bench != args.bench else args.out
            if out.is_file():
                committed = json.loads(out.read_text())
                docs[bench] = evaluate(
                    json.loads(RESULTS[bench].read_text()), committed["trials"], bench=bench
                )
        if not docs:
            print("error: no committed trials; run: python bench/trial_quality.py", file=sys.stderr)
            return 2
    else:
        results = json.loads(RESULTS[args.bench].read_text())
        if args.bench == "hub":
            from hub_quality import default_work
        else:
            from transfer_quality import default_work
        work = args.work or default_work()
        ranked = orders(results)
        jobs = [
            (t, m, s) for s in range(args.seeds) for t in results["targets"] for m in ranked[t][: args.top]
        ]
        trials = []
        for i, (t, m, s) in enumerate(jobs, 1):
            trials.append(run_trial(work, results, t, m, bench=args.bench, seed=s, epochs=args.epochs))
            print(
                f"{i}/{len(jobs)} {m} on {t} (seed {s}): {trials[-1]['val_acc']:.3f}",
                file=sys.stderr,
                flush=True,
            )
        docs[args.bench] = evaluate(results, trials, bench=args.bench)
        write_json(args.out or out_path(args.bench, args.epochs), docs[args.bench])
        other = next(b for b in BENCHES if b != args.bench)
        if out_path(other, args.epochs).is_file():
            committed = json.loads(out_path(other, args.epochs).read_text())
            docs[other] = evaluate(json.loads(RESULTS[other].read_text()), committed["trials"], bench=other)
    print("\n\n".join(report(d) for d in docs.values()))
    if len(docs) == len(BENCHES):
        print("\n" + report_k(choose_k(docs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
