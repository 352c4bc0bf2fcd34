"""Transfer quality: does tlreg's ranking pick the model that fine-tunes best? (issue #6)

    python bench/transfer_quality.py             # build the ground truth (cached, resumable), evaluate, print
    python bench/transfer_quality.py --report    # evaluate the committed results only; builds nothing
    python bench/transfer_quality.py --quick     # a tiny build into the work folder (a smoke run)

**Ground truth.** A zoo of 23 image models: four timm architectures at small widths (ResNet
``test_resnet``, MobileNetV3 ``mobilenetv3_small_050``, ViT ``test_vit`` with 4-px patches, ConvNeXt
``test_convnext``), each pretrained here on four 32x32 source tasks (scikit-learn digits, procedural
shapes, procedural textures, and shapes with shuffled labels) and once left untrained (random init);
plus the three bundled ImageNet EfficientNet-Lites (``pkg:efficientnet_lite0/1/2``, run at 64 px).
Seven 32x32 targets of varied relatedness (``bench/zoo_tasks.py``). For every (model, target): test
accuracy after a full fine-tune under one fixed budget, and after a linear probe (logistic regression
on frozen features); seeds fixed (``bench/zoo_train.py``). The build states its noise as the Hub-like
one does (``hub_noise.seed_repeats``): each target's top 3 fine-tuned again with a second seed, and
every model with four seeds in all where those moved more than 2 points; the truth there is the mean
over the seeds.
Every stage is cached in ``--work`` (default: the user cache dir), never in the repository.

**Scores.** Every classification estimator on the target's training split, with the features
tlreg itself extracts (``features_for`` on a registry holding the zoo; ``bench/zoo_build.py``).

**Evaluation** (``bench/transfer_eval.py``). For every estimator, the priors (parameter count;
published ImageNet top-1) and tlreg's combined ranking: weighted Kendall τ against the fine-tuned
accuracies per target and its mean, and the top-1 regret; the combination's selection judged
leave-one-target-out.

Outputs: ``data/bench/transfer_quality_results.json`` (the ground truth and every score, with seeds,
versions and timings) and ``data/bench/transfer_quality.json`` (the evaluation: ``mean_tau_w``,
``regret``, ``loto_combined``, ``seed_noise``, ``against_the_obvious`` (the default against the
priors and a random pick: mean and worst regret, within the noise), ``combined_vs``, ``first_seed``,
``goal``, ...). The report goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hub_eval as he
import hub_noise
import joint_defaults
import jsonio
import transfer_eval as ev
from tlreg.advisor import rank

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "bench" / "transfer_quality_results.json"
EVALUATION = ROOT / "data" / "bench" / "transfer_quality.json"
GROUND_TRUTHS = ("finetune", "probe")


def default_work() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("tlreg")) / "bench" / "transfer_quality"


def _kind(name: str) -> str:
    if name in ev.PRIORS:
        return "prior"
    if name == ev.COMBINED:
        return "combined"
    if name in ev.RAW_SUMS:
        return "per-model sum"
    return "component" if any(name in rank.components_of(n) for n in ("etran", "ncti")) else "estimator"


def shipped() -> dict[str, Any]:
    """The combination ``recommend`` uses by default for classification, as advisor/rank.py defines it."""
    names = rank.DEFAULT_ESTIMATORS["classification"]
    return {
        "estimators": list(names),
        "method": rank.DEFAULT_AGGREGATION,
        "weights": {n: float(rank.DEFAULT_WEIGHTS.get(n, 1.0)) for n in names},
    }


def evaluate(results: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation document (see the module doc) from a results document."""
    table = ev.table_from_results(results)
    rankers = [*ev.estimator_names(table), *ev.RAW_SUMS, *ev.PRIORS, ev.COMBINED]
    per: dict[str, dict[str, Any]] = {}
    for gt in GROUND_TRUTHS:
        per[gt] = {
            name: ev.judge(table, lambda t, name=name: ev.values_of(table, t, name), ground_truth=gt)
            for name in rankers
        }
    names = ev.combinable(table)
    folds = ev.leave_one_target_out(table, ev.nested_search, names=names)
    single = ev.leave_one_target_out(table, ev.best_single, names=names)
    weighted = ev.leave_one_target_out(table, ev.tau_weighted, names=names)
    spaces = ev.loto_per_space(table, names=names)
    scorer = ev.ComboScorer(table, names)
    space, inner = ev.choose_space(scorer, table.targets)
    selected = ev.nested_search(scorer, table.targets)
    joint = joint_defaults.select(first=results)
    ship = shipped()
    truth = table.accuracy
    return {
        "about": "Transfer quality of tlreg's rankings: see bench/transfer_quality.py and the README.",
        "ground_truth": "test accuracy after a full fine-tune (probe: after a linear probe)",
        "units": {"tau_w": "scipy.stats.weightedtau, defaults", "regret": "percentage points of accuracy"},
        "models": len(table.models),
        "targets": table.targets,
        "mean_tau_w": {n: _r(ev.mean(per["finetune"][n], "tau_w")) for n in rankers},
        "regret": {n: _r(ev.mean(per["finetune"][n], "regret")) for n in rankers},
        "tau_w_sd": {n: _r(_sd(per["finetune"][n], "tau_w")) for n in rankers},
        "probe": {
            "mean_tau_w": {n: _r(ev.mean(per["probe"][n], "tau_w")) for n in rankers},
            "regret": {n: _r(ev.mean(per["probe"][n], "regret")) for n in rankers},
        },
        "kind": {n: _kind(n) for n in rankers},
        "per_target": {
            n: {t: {k: _r(v) for k, v in d.items()} for t, d in per["finetune"][n].items()} for n in rankers
        },
        "truth": {
            t: {
                "best": max(truth[t], key=truth[t].__getitem__),
                "best_acc": _r(max(truth[t].values())),
                "worst_acc": _r(min(truth[t].values())),
                "spread_pp": _r(100 * (max(truth[t].values()) - min(truth[t].values()))),
            }
            for t in table.targets
        },
        "loto_combined": _r(ev.mean(folds, "tau_w")),
        "loto": {
            "procedure": "nested selection: the search space (subsets of up to 1-"
            f"{ev.MAX_SUBSET} of the {len(names)} estimators; rank, zscore or either aggregation; "
            "equal weights) "
            "chosen by an inner leave-one-target-out on the training targets, then the best combination "
            "in it on the training targets",
            "estimators": names,
            "regret": _r(ev.mean(folds, "regret")),
            "folds": _clean(folds),
            "per_space": {k: _r(v) for k, v in spaces.items()},
            "best_single": {
                "mean_tau_w": _r(ev.mean(single, "tau_w")),
                "regret": _r(ev.mean(single, "regret")),
                "folds": _clean(single),
            },
            "tau_weighted": {
                "mean_tau_w": _r(ev.mean(weighted, "tau_w")),
                "regret": _r(ev.mean(weighted, "regret")),
                "folds": _clean(weighted),
            },
        },
        "selected_on_all_targets": {
            **selected.to_dict(),
            "space": ev.describe_space(space),
            "inner_loto_per_space": {ev.describe_space(k): _r(v) for k, v in inner.items()},
            "mean_tau_w": _r(scorer.mean_tau(selected, table.targets)),
        },
        "selected_on_both_benchmarks": {
            **joint.to_dict(),
            "how": "bench/joint_defaults.py: nested selection over this benchmark's and the Hub-like "
            f"benchmark's targets, pool {', '.join(joint_defaults.POOL)}",
        },
        "shipped": ship,
        "shipped_matches_selection": _same(ship, joint),
        **against_the_obvious(results, table),
    }


#: The rankers judged against the seed noise: tlreg's ranking, the priors, a random pick.
OBVIOUS = ("params", "imagenet_top1", "random")


def against_the_obvious(results: Mapping[str, Any], table: ev.Table) -> dict[str, Any]:
    """The combined ranking against the priors and a random pick, judged as the Hub-like benchmark
    judges them (``hub_eval``): mean and worst regret, how often the pick is within the build's seed
    noise of the best, paired differences with an interval over targets, the goal; and the same on
    the first seed alone. A results document without repeats (an older build) has no noise measure:
    ``seed_noise`` is null and "within noise" means "the best"."""
    noise = hub_noise.seed_noise(results) if results.get("repeats") else None
    noise_pp = noise["mean_pp"] if noise else 0.0

    def judged(tab: ev.Table) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {}
        for name in (ev.COMBINED, *OBVIOUS):
            out[name] = {
                t: he.judge_random(tab, t, noise_pp)
                if name == "random"
                else he.judge_values(tab, t, ev.values_of(tab, t, name), noise_pp)
                for t in tab.targets
            }
        return out

    per = judged(table)
    summary = {n: {k: _r(v) for k, v in he.summarise(p).items()} for n, p in per.items()}
    first = judged(ev.table_from_results(results, seeds="first"))
    return {
        "seed_noise": noise,
        "against_the_obvious": summary,
        "picks": {n: {t: v["pick"] for t, v in p.items()} for n, p in per.items()},
        "combined_vs": {h: he.paired(per, ev.COMBINED, h) for h in OBVIOUS},
        "first_seed": {n: {k: _r(v) for k, v in he.summarise(p).items()} for n, p in first.items()},
        "goal": he.goal(summary[ev.COMBINED], he.combined_beats(summary, OBVIOUS)),
    }


def _sd(per_target: Mapping[str, Mapping[str, Any]], key: str) -> float:
    """Standard deviation over the targets: how much a mean over this few targets can be trusted."""
    values = [float(v[key]) for v in per_target.values()]
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0


def _same(ship: Mapping[str, Any], combo: ev.Combo) -> bool:
    chosen = combo.to_dict()
    ratio = {
        n: ship["weights"][n] / chosen["weights"][n] for n in chosen["estimators"] if n in ship["weights"]
    }
    return (
        sorted(ship["estimators"]) == sorted(chosen["estimators"])
        and ship["method"] == chosen["method"]
        and len(set(round(v, 9) for v in ratio.values())) == 1
    )


def _r(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) and math.isfinite(value) else value


def _clean(folds: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {t: {k: _r(v) for k, v in d.items()} for t, d in folds.items()}


def report(doc: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """The evaluation as text: one row per ranker, best mean τw first, τw per target."""
    targets = doc["targets"]
    cfg = results.get("config", {})
    ft = cfg.get("finetune", {})
    lines = [
        f"Transfer quality: {doc['models']} models x {len(targets)} targets. Ground truth: test accuracy "
        f"after a full fine-tune ({ft.get('steps')} steps x {ft.get('batch_size')}, AdamW lr {ft.get('lr')})",
        "tau_w = weighted Kendall tau (scipy.stats.weightedtau) of a ranker's values vs the accuracies; "
        "regret = best accuracy - the pick's (points).",
        "",
    ]
    short = [t[:8] for t in targets]
    head = (
        f"{'ranker':<18} {'kind':<13} {'mean tau_w':>10} {'sd':>6} {'regret':>7} {'probe tau_w':>11}  "
        + " ".join(f"{s:>8}" for s in short)
    )
    lines += [head, "-" * len(head)]
    order = sorted(doc["mean_tau_w"], key=lambda n: -doc["mean_tau_w"][n])
    for name in order:
        per = doc["per_target"][name]
        mean_tau, sd, regret = doc["mean_tau_w"][name], doc["tau_w_sd"][name], doc["regret"][name]
        lines.append(
            f"{name:<18} {doc['kind'][name]:<13} {mean_tau:>10.3f} {sd:>6.3f} {regret:>7.1f} "
            f"{doc['probe']['mean_tau_w'][name]:>11.3f}  "
            + " ".join(f"{per[t]['tau_w']:>8.3f}" for t in targets)
        )
    lines += [
        "",
        "True best per target (fine-tune): "
        + "; ".join(
            f"{t} {v['best']} {v['best_acc']:.3f} (spread {v['spread_pp']:.0f} pts)"
            for t, v in doc["truth"].items()
        ),
        "",
    ]
    lines += [*_obvious_lines(doc), ""]
    loto = doc["loto"]
    single, weighted = loto["best_single"], loto["tau_weighted"]
    rows = [
        ("nested selection (how the defaults are chosen)", doc["loto_combined"], loto["regret"]),
        ("the best single estimator", single["mean_tau_w"], single["regret"]),
        ("every estimator with tau_w > 0, tau_w-weighted", weighted["mean_tau_w"], weighted["regret"]),
    ]
    lines += ["Leave-one-target-out (each target judged with a choice made on the other targets only):"]
    lines += [f"  {what + ':':<48} mean tau_w {tau:.3f}, regret {regret:.1f}" for what, tau, regret in rows]
    lines += [
        f"    held out {t}: {f['combo']} [{f['how']}] -> tau_w {f['tau_w']:.3f}"
        for t, f in loto["folds"].items()
    ]
    lines += ["  within one fixed search space (a view of the evidence, not a selection):"]
    lines += [f"    {space}: {value:.3f}" for space, value in loto["per_space"].items()]
    sel, ship = doc["selected_on_all_targets"], doc["shipped"]
    both = doc["selected_on_both_benchmarks"]
    lines += [
        "",
        f"Selected on all targets: {' + '.join(sel['estimators'])} ({sel['method']}; {sel['space']}), "
        f"in-sample mean tau_w {sel['mean_tau_w']:.3f}.",
        f"Selected on both benchmarks' targets (python bench/joint_defaults.py): "
        f"{' + '.join(both['estimators'])} ({both['method']}).",
        f"advisor/rank.py ships: {' + '.join(ship['estimators'])} ({ship['method']}, "
        f"weights {ship['weights']}): "
        + (
            "the same."
            if doc["shipped_matches_selection"]
            else "DIFFERENT: update advisor/rank.py's defaults."
        ),
    ]
    return "\n".join(lines)


def _obvious_lines(doc: Mapping[str, Any]) -> list[str]:
    """The seed noise, and tlreg's ranking against the priors and a random pick."""
    noise, summary = doc["seed_noise"], doc["against_the_obvious"]
    if noise:
        per = ", ".join(f"{t} {v:.1f}" for t, v in noise["per_target_pp"].items())
        lines = [
            f"Seed noise: {noise['mean_pp']:.1f} pts mean, {noise['max_pp']:.1f} max ({noise['repeats']} "
            f"repeats of each target's top fine-tunes; per target: {per})"
        ]
        if noise["averaged_targets"]:
            lines += ["  " + line for line in hub_noise.averaged_lines(noise, who="model")]
    else:
        lines = ["Seed noise: not measured (the results hold no repeats); 'within noise' = the best"]
    head = (
        f"{'':<16} {'mean tau_w':>10} {'mean regret':>11} {'worst regret':>12} {'within noise':>12}"
        "  first seed"
    )
    lines += ["", "Against the obvious choices:", head]
    for name, s in summary.items():
        f = doc["first_seed"][name]
        lines.append(
            f"{name:<16} {s['mean_tau_w']:>10.3f} {s['mean_regret']:>11.1f} {s['worst_regret']:>12.1f} "
            f"{100 * s['within_noise']:>11.0f}%  {f['mean_tau_w']:.3f} / {f['mean_regret']:.1f} / "
            f"{f['worst_regret']:.1f}"
        )
    lines.append("combined minus each (90 % interval over targets):")
    for h, v in doc["combined_vs"].items():
        tau, reg = v["tau_w"], v["regret"]
        lines.append(
            f"  {h:<14} tau_w {tau['mean']:+.3f} ({tau['interval'][0]:+.3f} to {tau['interval'][1]:+.3f}), "
            f"regret {reg['mean']:+.1f} pts ({reg['interval'][0]:+.1f} to {reg['interval'][1]:+.1f})"
        )
    goal = doc["goal"]
    lines.append(
        f"goal: beats every heuristic {goal['beats_every_heuristic']}; mean regret <= 1 pt "
        f"{goal['mean_regret_at_most_1pp']}; worst <= 3 pts {goal['worst_regret_at_most_3pp']}"
    )
    return lines


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument(
        "--report", action="store_true", help="Evaluate the results file only; build nothing."
    )
    parser.add_argument("--quick", action="store_true", help="A tiny build (smoke run), written into --work.")
    parser.add_argument(
        "--work", type=Path, default=None, help="Cache folder of the build (default: user cache)."
    )
    parser.add_argument("--results", type=Path, default=None, help=f"Ground-truth file (default {RESULTS}).")
    parser.add_argument("--out", type=Path, default=None, help=f"Evaluation file (default {EVALUATION}).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the whole build (default 0).")
    parser.add_argument("--workers", type=int, default=None, help="Worker processes (default: one per core).")
    args = parser.parse_args(argv)
    work = args.work or default_work()
    quick_dir = work / "quick"
    results_path = args.results or (quick_dir / RESULTS.name if args.quick else RESULTS)
    out_path = args.out or (quick_dir / EVALUATION.name if args.quick else EVALUATION)
    if args.report:
        if not results_path.is_file():
            print(
                f"error: {results_path}: no such file; build it with: python bench/transfer_quality.py",
                file=sys.stderr,
            )
            return 2
        results = json.loads(results_path.read_text())
    else:
        import zoo_build
        import zoo_run
        from zoo_train import write_json

        cfg = zoo_build.quick_config(args.seed) if args.quick else zoo_build.BuildConfig(seed=args.seed)
        log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        results = zoo_run.build(quick_dir if args.quick else work, cfg, log=log, workers=args.workers)
        write_json(results_path, results)
    doc = evaluate(results)
    doc["results_file"] = {"name": results_path.name, "sha256": sha256(results_path)}
    jsonio.write_json(out_path, doc)
    print(report(doc, results))
    if args.quick:
        print("(a --quick smoke run: a handful of steps on 3 targets; its figures are not evidence)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
