"""``tlreg recommend PATH``: rank the registered models on your data."""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING

import click
from tlreg.advisor import defaults as d

if TYPE_CHECKING:
    from tlreg.advisor.result import RankingRow, RecommendResult

from .output import emit_json, human_count, percent, stdout, table, warn
from .progress import RichReporter
from .state import State, pass_state


def _versus(row: RankingRow) -> str:
    """What the baselines say: negative transfer (fine-tuning), else which beat the frozen features."""
    if row.negative_transfer:
        return "NEGATIVE TRANSFER"
    if row.frozen_features_beaten_by:
        short = ["random init" if b.endswith("(random init)") else b for b in row.frozen_features_beaten_by]
        return "frozen < " + ", ".join(short)
    return "-" if row.negative_transfer is None else "not beaten"


def _rank(row: RankingRow) -> str:
    return f"{row.rank}=" if row.tied else str(row.rank)


def plan_lines(row: RankingRow) -> list[str]:
    """The pick's transfer plan and what more labels would bring, one line each."""
    lines = []
    if row.plan:
        unfreeze = f" (unfreeze the last {row.plan['unfreeze']} blocks)" if row.plan.get("unfreeze") else ""
        lines.append(f"Plan: {row.plan['mode']}{unfreeze} - {row.plan['why']}.")
    curve = row.learning_curve or {}
    for p in curve.get("predict") or []:
        lines.append(
            f"Labels: with {p['labels_x']:g}x the labels ({p['n']:.0f}), a linear head on its frozen "
            f"features is expected to reach {p['expected']:.2f} ({p['low']:.2f}-{p['high']:.2f}, "
            "80 % interval)."
        )
    if row.learning_curve and not curve.get("predict") and curve.get("note"):
        lines.append(f"Labels: {curve['note']}.")
    return lines


def budget_line(budget: dict) -> str:
    """One line on what successive halving did, when it ran (the stages are in --json)."""
    if not budget.get("active"):
        return ""
    stages = budget["stages"]
    path = " -> ".join(f"{len(s['candidates'])} on {s['samples']}" for s in stages)
    dropped = sum(len(s["dropped"]) for s in stages)
    full, done = budget.get("full_forward_passes") or 0, budget.get("forward_passes") or 0
    saved = f"; {done:,} forward passes instead of {full:,}" if full else ""
    return (
        f"Budget (successive halving): candidates {path} samples, {dropped} dropped early{saved} "
        "(--json: budget.stages)"
    )


def render(result: RecommendResult) -> None:
    console = stdout()
    tried = any(r.trial for r in result.ranking)
    cols = [
        "rank",
        "model",
        *result.estimators,
        "combined",
        *(["trial"] if tried else []),
        "est. P(best)" if tried else "P(best)",  # the estimators' resampling, whatever the trials did
        "rank 5-95%",
        "vs baselines",
        "params",
        "samples/s",
        "seconds",
    ]
    rows = [
        [
            _rank(r),
            r.ref,
            *(r.scores.get(e) for e in result.estimators),
            r.combined,
            *([f"{r.trial['val_acc']:.3f}" if r.trial else "-"] if tried else []),
            percent(r.p_best),
            f"{r.rank_interval[0]}-{r.rank_interval[1]}" if r.rank_interval else None,
            _versus(r),
            human_count(r.params),
            "cached" if r.from_cache else r.samples_per_s,
            r.seconds,
        ]
        for r in result.ranking
    ]
    data = result.data
    title = f"{data['path']}: {data['samples']} {data['modality']} samples" + (
        f", {len(data['classes'])} classes" if data.get("classes") else f" ({data['task']})"
    )
    console.print(table(title, cols, rows))
    if result.baselines:
        base_cols = ["baseline", *result.estimators, "samples/s", "seconds"]
        base_rows = [
            [
                b.ref,
                *(b.scores.get(e) for e in result.estimators),
                "cached" if b.from_cache else b.samples_per_s,
                b.seconds,
            ]
            for b in result.baselines
        ]
        console.print(
            table(
                "Baselines: each architecture randomly initialised, and the raw inputs", base_cols, base_rows
            )
        )
    budget = budget_line(result.budget)
    if budget:
        console.print(budget)
    if result.best:
        console.print(f"Recommended: {result.best.ref}")
        console.print(f"Why: {result.reason}")
        for line in plan_lines(result.best):
            console.print(line)
    console.print(f"Run id: {result.run_id}")


@click.command()
@click.argument("path", type=click.Path(path_type=str))
@click.option(
    "--models",
    "models",
    multiple=True,
    metavar="PATTERN",
    help="Only these registered models: refs or globs like 'timm:convnext*' (repeatable).",
)
@click.option("--tag", "tags", multiple=True, help="Only models with this tag (repeatable: all of them).")
@click.option("--max-params", type=float, help="Only models with at most this many parameters (e.g. 5e7).")
@click.option(
    "--estimator",
    "estimators",
    multiple=True,
    help="Estimators to run (repeatable; default depends on the task). See `tlreg estimators list`.",
)
@click.option(
    "--aggregation",
    type=click.Choice(d.AGGREGATIONS),
    default=None,
    help="How the estimators' scores are combined: each one's ranks or z-scores over the candidates, "
    f"averaged (default {d.AGGREGATION}, chosen on the ground-truth benchmarks).",
)
@click.option("--per-class", type=click.IntRange(min=1), help="At most this many samples per class.")
@click.option("--max-samples", type=click.IntRange(min=2), help="At most this many samples in all.")
@click.option(
    "--seed",
    type=int,
    default=d.SEED,
    show_default=True,
    help="Seed of the sample and of random-init baselines.",
)
@click.option("--text-col", help="Table column holding the text.")
@click.option("--image-col", help="Table column holding image paths.")
@click.option("--label-col", help="Table column holding the label or target.")
@click.option("--strict", is_flag=True, help="Fail on an undecodable image instead of skipping it.")
@click.option(
    "--device", default=d.DEVICE, show_default=True, help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=d.BATCH_SIZE, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=0), help="DataLoader worker processes (default: by modality)."
)
@click.option("--top", type=click.IntRange(min=1), help="Show only the best K models.")
@click.option(
    "--baselines/--no-baselines",
    default=True,
    show_default=True,
    help="Also score each model's architecture randomly initialised.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=d.BOOTSTRAP,
    show_default=True,
    help="Resampling rounds for P(best) (the share of rounds a model ranks first: how stable the "
    "ranking is, not the chance it fine-tunes best) and rank intervals (0: off; no forward pass).",
)
@click.option(
    "--history/--no-history",
    default=True,
    show_default=True,
    help="Store this dataset's signature and use fine-tune outcomes on similar past datasets.",
)
@click.option(
    "--backend",
    type=click.Choice(d.BACKENDS),
    default=d.BACKEND,
    show_default=True,
    help="Where to embed: this process, or a Ray cluster (pip install 'tlreg[ray]').",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    help="Ray cluster to join: auto, or ray://HOST:10001 (default: start a local one).",
)
@click.option("--trust-remote-code", is_flag=True, help="Allow Hub models that ship their own Python code.")
@click.option(
    "--plan",
    type=click.Choice(["pick", "all", "none"]),
    default="pick",
    show_default=True,
    help="Which candidates get a transfer plan (mode, why) and a learning curve of labels.",
)
@click.option(
    "--budget",
    type=click.Choice(d.BUDGETS),
    default=d.BUDGET,
    show_default=True,
    help=f"auto: from {d.HALVING_FROM} candidates, embed all on a quarter of the sample and only those "
    "that can still win on more (successive halving); full: every candidate on the whole sample.",
)
@click.option(
    "--trials",
    type=click.IntRange(min=0),
    default=d.TRIALS,
    show_default=True,
    metavar="K",
    help="Fine-tune the top K candidates briefly (the whole network, --trial-epochs on 80% of the sample) "
    "and pick by validation accuracy on the rest: evidence frozen features cannot give; costs K "
    "short fine-tunes (0: none).",
)
@click.option(
    "--trial-repeats",
    type=click.IntRange(min=1),
    default=d.TRIAL_REPEATS,
    show_default=True,
    metavar="R",
    help="Try each of the top K on R splits of the sample (seeds S..S+R-1) and rank by the mean "
    "validation accuracy: less luck of one split, R times the cost.",
)
@click.option(
    "--trial-epochs",
    type=click.IntRange(min=1),
    default=d.TRIAL_EPOCHS,
    show_default=True,
    metavar="E",
    help=f"Each trial's epochs (at least {d.TRIAL_MIN_STEPS} optimiser steps per epoch asked for, on a "
    "small sample): fewer reward the model that starts fastest rather than the one that ends best.",
)
@click.option(
    "--include-unavailable",
    is_flag=True,
    help="Also try the models that cannot be loaded now (offline: not cached); lists each failure.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@pass_state
def recommend(
    state: State,
    path: str,
    models: tuple[str, ...],
    tags: tuple[str, ...],
    max_params: float | None,
    estimators: tuple[str, ...],
    as_json: bool,
    **options: object,
) -> None:
    """Rank the registered models on the data at PATH, best first, and say why."""
    from tlreg.advisor import recommend as run_recommend

    result = run_recommend(
        path,
        registry=state.registry,
        reporter=RichReporter(quiet=state.quiet),
        command=shlex.join(["tlreg", *sys.argv[1:]]),
        models=list(models) or None,
        tags=list(tags),
        max_params=int(max_params) if max_params else None,
        estimators=list(estimators) or None,
        **options,
    )
    for warning in result.warnings:
        warn(warning)
    if as_json:
        emit_json(result.to_dict())
    else:
        render(result)
