"""Is a Hub-like winner its recipe's or its checkpoint's? Descent noise on one target (issue 13).

Every descendant in the Hub-like benchmark is one run of a recipe: an ImageNet original fine-tuned
on a source task with one seed. On photos the best model, lite2-digits, is 3.4 points ahead of every
other candidate, and nothing measured on the target's split puts it first (``bench/hub_quality.py
--report``; ``bench/truth_resample.py`` shows the lead is not the test set's luck). The other
digits-descendants sit 12th and 21st there. So is the lead a property of the recipe (lite2 + digits:
what a source/target relation, a name match or history could know), or of this one run?

This script makes each recipe again with the build's own code (``hub_build.build_descendant``):
once with the build's descent seed (#0: bit for bit the build's checkpoint only on the same
hardware; elsewhere float-level differences grow over the 200 steps into another run) and
``--siblings`` times with other seeds, and fine-tunes every checkpoint on the target with the
build's own truth seeds (``truth_resample.predict_job``: the fine-tune the build ran). The report
compares the build's checkpoint with the re-made ones, and the recipes by their re-made means.

    python bench/descent_noise.py --report      # from the committed results (seconds)
    python bench/descent_noise.py [--target photos] [--recipes A B ...] [--siblings 3] [--work DIR]

Results: ``data/bench/hub_descent_noise.json``. The recipes judged by default: the target's best and
second-best candidates and the default's pick (``data/bench/hub_quality.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HUB_RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
HUB_EVALUATION = ROOT / "data" / "bench" / "hub_quality.json"
RESULTS = ROOT / "data" / "bench" / "hub_descent_noise.json"
SIBLINGS = 3


def default_recipes(results: dict[str, Any], evaluation: dict[str, Any], target: str) -> list[str]:
    """The target's two best candidates by the build's truth, then the default's pick if another
    (descendants only: an ImageNet original has no descent to repeat)."""
    import hub_build as hb
    import hub_noise

    truth = hub_noise.truth(results)
    ranked = sorted(results["candidates"], key=lambda m: -truth[m, target])
    recipes = [m for m in ranked if hb.split_id(m)[1] != hb.ORIGINAL][:2]
    pick = evaluation["per_target"]["combined"][target]["pick"]
    if pick not in recipes and hb.split_id(pick)[1] != hb.ORIGINAL:
        recipes.append(pick)
    return recipes


def sibling_job(work: Path, config: dict[str, Any], model_id: str, sibling: int) -> str:
    """One checkpoint of the recipe ``model_id`` (``sibling`` 0: with the build's descent seed)."""
    import hub_build as hb
    import zoo_build as zb

    cfg = hb.config_from_dict(config)
    return str(hb.build_descendant(work, cfg, model_id, zb.Stopwatch(), sibling=sibling))


def ensure_parents(work: Path, cfg: Any, recipes: list[str]) -> dict[str, str]:
    """The build's registry with the ImageNet originals the recipes descend from (as the build
    makes them: ``hub_run.build``'s first stage); their refs by model id."""
    import hub_build as hb
    from tlreg.registry import Registry

    # not hb.work_registry: that one is cached, and forked workers would share its connections
    registry = Registry(f"sqlite:///{work / 'registry.db'}")
    registry.import_from("bundled")
    return {
        f"{lite}-{hb.ORIGINAL}": hb.register(work, hb.build_original(work, cfg, lite, registry))
        for lite in sorted({hb.split_id(m)[0] for m in recipes})
    }


def compute(
    work: Path, results: dict[str, Any], target: str, recipes: list[str], siblings: int, *, workers: int = 2
) -> dict[str, Any]:
    """Every checkpoint of each recipe made again (#0 with the build's descent seed, then the
    siblings): its source validation accuracy and its test accuracies on ``target`` for each of the
    build's truth seeds. The control: the recipes' ImageNet originals (the same weights here as in
    the build: no descent) fine-tuned with their own build seeds, to tell the descent's part from the
    fine-tune's if the build is not reproduced here. Everything is cached in the work folder."""
    import hub_build as hb
    import truth_resample
    import zoo_build as zb
    from jsonio import read_json
    from zoo_train import write_json

    cfg = hb.config_from_dict(results["config"])
    work.mkdir(parents=True, exist_ok=True)
    refs: dict[tuple[str, int], str] = {(m, 0): ref for m, ref in ensure_parents(work, cfg, recipes).items()}
    controls = sorted(m for m, _ in refs)
    checkpoints = [(m, k) for k in range(siblings + 1) for m in recipes]
    todo = [(m, k) for m, k in checkpoints if not (hb.sibling_folder(work, cfg, m, k) / "meta.json").exists()]
    runs_dir = work / "descent_noise" / target
    seeds = {m: [s for s, _ in truth_resample.runs_of(results, m, target)] for m in recipes + controls}
    with ProcessPoolExecutor(workers, initializer=zb.init_worker) as pool:
        if todo:
            print(f"{len(todo)} descents to run", file=sys.stderr)
            futures = [pool.submit(sibling_job, work, results["config"], m, k) for m, k in todo]
            for done, future in enumerate(futures, 1):
                print(f"  {done}/{len(todo)} {Path(future.result()).name}", file=sys.stderr, flush=True)
        for m, k in checkpoints:
            refs[m, k] = hb.register(work, hb.sibling_folder(work, cfg, m, k))
        jobs = {
            runs_dir / f"{m}-s{k}-{seed}.json": (work, results["config"], refs[m, k], target, seed)
            for m, k in [(c, 0) for c in controls] + checkpoints
            for seed in seeds[m]
        }
        jobs = {path: args for path, args in jobs.items() if not path.exists()}
        if jobs:
            print(f"{len(jobs)} fine-tunes to run", file=sys.stderr)
            futures = {p: pool.submit(truth_resample.predict_job, *args) for p, args in jobs.items()}
            for done, (path, future) in enumerate(futures.items(), 1):
                write_json(path, {"predictions": future.result()})
                print(f"  {done}/{len(jobs)} {path.name}", file=sys.stderr, flush=True)
    labels = np.asarray(hb.load_target(work, cfg, target, zb.Stopwatch()).test.labels)

    def accuracies(m: str, k: int) -> list[float]:
        runs = [read_json(runs_dir / f"{m}-s{k}-{s}.json") for s in seeds[m]]
        return [float((np.asarray(run["predictions"]) == labels).mean()) for run in runs]

    out: dict[str, Any] = {}
    for m in recipes:
        out[m] = []
        for k in range(siblings + 1):
            meta = read_json(hb.sibling_folder(work, cfg, m, k) / "meta.json")["descend"]
            out[m].append(
                {
                    "sibling": k,
                    "descent_seed": meta["seed"],
                    "source_val_accuracy": meta["val_accuracy"],
                    "accuracies": accuracies(m, k),
                }
            )
    return {
        "target": target,
        "finetune_seeds": seeds,
        "recipes": out,
        "controls": {m: accuracies(m, 0) for m in controls},
    }


# --- evaluation -----------------------------------------------------------------------------------


def evaluate(doc: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """The build's checkpoint of each recipe (its recorded truth) against the checkpoints made here
    (#0 with the build's descent seed, then the siblings): each one's truth (the mean over the build's
    seeds, in points), their mean and spread, the spread beyond the seed noise of a mean, where each
    would stand among the build's other candidates, and whether #0 reproduced the build bit for bit.

    The spread is estimated from the re-made checkpoints only: the build's own were picked out as the
    target's best, so counting them would inflate it."""
    import hub_noise
    import truth_resample

    target = doc["target"]
    truth = hub_noise.truth(results)
    others = {m: 100.0 * truth[m, target] for m in results["candidates"]}
    recipes: dict[str, Any] = {}
    reproduced, seed_vars, between_vars = [], [], []
    for m, checkpoints in doc["recipes"].items():
        recorded = [acc for _, acc in truth_resample.runs_of(results, m, target)]
        first = checkpoints[0]
        reproduced.append(
            all(abs(a - r) < 1e-9 for a, r in zip(first["accuracies"], recorded, strict=True))
            and abs(first["source_val_accuracy"] - results["models"][m]["descend"]["val_accuracy"]) < 1e-9
        )
        accs = 100.0 * np.asarray([c["accuracies"] for c in checkpoints])  # [checkpoints, seeds]
        means = accs.mean(1)
        seed_vars.append(float(accs.var(1, ddof=1).mean() / accs.shape[1]))  # one mean's variance
        between_vars.append(float(means.var(ddof=1)))
        rest = [v for o, v in others.items() if o != m]
        recipes[m] = {
            "build": others[m],
            "remade": [float(v) for v in means],
            "source_val_accuracy": {
                "build": float(results["models"][m]["descend"]["val_accuracy"]),
                "remade": [float(c["source_val_accuracy"]) for c in checkpoints],
            },
            "remade_mean": float(means.mean()),
            "remade_sd": float(means.std(ddof=1)),
            "build_minus_remade": float(others[m] - means.mean()),
            # where each re-made checkpoint would stand among the build's other candidates (1 = best)
            "remade_ranks": [int(1 + sum(v > x for v in rest)) for x in means],
        }
    controls = {}
    for m, accs in doc["controls"].items():
        recorded = [acc for _, acc in truth_resample.runs_of(results, m, target)]
        controls[m] = {
            "here": float(100.0 * np.mean(accs)),
            "build": others[m],
            "reproduced": all(abs(a - r) < 1e-9 for a, r in zip(accs, recorded, strict=True)),
        }
    best = max(recipes, key=lambda m: recipes[m]["build"])
    seed_var, between = float(np.mean(seed_vars)), float(np.mean(between_vars))
    by_mean = sorted(recipes, key=lambda m: -recipes[m]["remade_mean"])
    pick = json.loads(HUB_EVALUATION.read_text())["per_target"]["combined"][target]["pick"]
    return {
        "target": target,
        "seeds": len(next(iter(doc["finetune_seeds"].values()))),
        "remade": len(next(iter(doc["recipes"].values()))),
        "reproduced": f"{sum(reproduced)} of {len(reproduced)}",
        "recipes": recipes,
        "controls": controls,
        "best_in_build": best,
        "best_by_remade_mean": by_mean[0],
        "candidates_in_build": len(results["candidates"]),
        "checkpoint_sd_pp": float(np.sqrt(between)),
        "seed_sd_of_mean_pp": float(np.sqrt(seed_var)),
        # the checkpoint-to-checkpoint spread that the fine-tune's seeds do not explain
        "descent_sd_pp": float(np.sqrt(max(between - seed_var, 0.0))),
        "default_pick": pick,
        "default_regret_build": float(others[best] - others[pick]),
        "default_regret_remade": float(
            recipes[by_mean[0]]["remade_mean"] - recipes[pick]["remade_mean"] if pick in recipes else np.nan
        ),
    }


def report(ev: dict[str, Any]) -> str:
    lines = [
        f"{ev['target']}: each recipe's checkpoint in the build against {ev['remade']} made again here by "
        f"the build's code (#0 with the build's descent seed: {ev['reproduced']} reproduce the build bit "
        f"for bit; #1- with other seeds), each fine-tuned with the build's {ev['seeds']} truth seeds",
        "(test accuracy in %, the mean over the seeds; ranks: where each would stand among the build's "
        f"other {ev['candidates_in_build'] - 1} candidates)",
        "",
        f"{'recipe':<30} {'build':>6} {'made again (#0 #1 ...)':>26} {'mean':>6} {'sd':>5} "
        f"{'build - mean':>13}  ranks",
    ]
    for m, r in ev["recipes"].items():
        remade = " ".join(f"{v:5.1f}" for v in r["remade"])
        lines.append(
            f"{m:<30} {r['build']:6.1f} {remade:>26} {r['remade_mean']:6.1f} {r['remade_sd']:5.1f} "
            f"{r['build_minus_remade']:+13.1f}  {', '.join(map(str, r['remade_ranks']))}"
        )
    for m, c in ev["controls"].items():
        same = "reproduced bit for bit" if c["reproduced"] else "not reproduced"
        lines.append(
            f"control, {m} (no descent: the same weights here as in the build): {c['here']:.1f} here, "
            f"{c['build']:.1f} in the build ({same})"
        )
    lines += [
        "",
        f"between checkpoints of one recipe: sd {ev['checkpoint_sd_pp']:.1f} points; the fine-tune seeds' "
        f"noise in one checkpoint's mean: {ev['seed_sd_of_mean_pp']:.1f}; the descent's own: "
        f"{ev['descent_sd_pp']:.1f}",
        f"best checkpoint in the build: {ev['best_in_build']}; best recipe by the re-made checkpoints' "
        f"mean: {ev['best_by_remade_mean']}",
        f"the default's pick ({ev['default_pick']}): regret {ev['default_regret_build']:.1f} points among "
        f"the build's checkpoints, {ev['default_regret_remade']:.1f} between the recipes' re-made means",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", action="store_true", help="use the committed results; train nothing")
    parser.add_argument("--target", default="photos", help="the Hub-like target (default photos)")
    parser.add_argument(
        "--recipes", nargs="+", help="descendants whose recipe to repeat (default: see above)"
    )
    parser.add_argument(
        "--siblings", type=int, default=SIBLINGS, help=f"other checkpoints per recipe ({SIBLINGS})"
    )
    parser.add_argument("--work", type=Path, help="the Hub-like build's work folder (default: its own)")
    args = parser.parse_args()
    results = json.loads(HUB_RESULTS.read_text())
    if args.report:
        # a rebuilt benchmark: its documents are made again from its checkpoints
        if not RESULTS.is_file():
            sys.exit(
                f"error: {RESULTS.relative_to(ROOT)} is not committed for this build; "
                f"run: python bench/descent_noise.py"
            )
        doc = json.loads(RESULTS.read_text())
    else:
        from hub_quality import default_work
        from zoo_train import write_json

        recipes = args.recipes or default_recipes(
            results, json.loads(HUB_EVALUATION.read_text()), args.target
        )
        doc = compute(args.work or default_work(), results, args.target, recipes, args.siblings)
        write_json(RESULTS, doc)
        print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    print(report(evaluate(doc, results)))


if __name__ == "__main__":
    main()
