"""A build's seed noise, and the ground truth it makes necessary (both benchmarks' builds).

One fine-tune per (model, target) names a target's best model only when the seed noise is small
next to the gaps between models. Each build (``hub_run``; ``zoo_run`` for the first benchmark)
measures that noise by fine-tuning each target's best ``repeat_top`` candidates again with other
seeds (:func:`seed_repeats`; the measure: :func:`top_repeats`, :func:`spread_pp`). Where
those repeats moved more than ``noisy_pp`` points on average, one seed cannot name the best: the
build fine-tunes every candidate again there (:func:`noisy_targets`), and the ground truth of that
target is the mean over ``noisy_seeds`` seeds (:func:`truth`). With 21 candidates whose accuracies
each move by a few points, the best of one seed is partly luck (the winner's curse); the mean of
``n`` seeds divides the variance of each model's accuracy by ``n`` (4 seeds: half the single seed's
standard deviation, 1.2-1.4 points on the noisy targets where one seed's is 2.3-2.7), and the
regret of every ranker is measured against it. The noise measure (:func:`seed_noise`) stays the
first stage's: the top candidates' ``extra_seeds`` repeats, which decide where the build averages.

No torch here: the builds (their seed-noise stage, :func:`seed_repeats`) and the evaluations
(``transfer_eval``, ``hub_eval``) all use it. A results document without repeats (an older build)
has no averaged targets: its truth is the first fine-tune.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Pairs = Mapping[tuple[str, str], Mapping[str, Any]]
#: ``run_jobs(fn, jobs, workers=, on_done=)``: runs ``fn(*job)`` for each job, ``on_done(job, result)``
RunJobs = Callable[..., None]


def top_candidates(candidates: Sequence[str], pairs: Pairs, target: str, top: int) -> list[str]:
    """The target's best ``top`` candidates by their first fine-tune (candidates in their order, so
    ties fall as the build chose them): the ones the build repeats to measure its noise."""
    return sorted(candidates, key=lambda m: -pairs[m, target]["finetune_acc"])[:top]


def top_repeats(
    repeats: Sequence[Mapping[str, Any]],
    pairs: Pairs,
    candidates: Sequence[str],
    top: int,
    seeds: Sequence[int] | None = None,
) -> list[Mapping[str, Any]]:
    """The repeats of each target's :func:`top_candidates` (with ``seeds``: only those extra seeds,
    the first stage's): the build's noise measure."""
    out: list[Mapping[str, Any]] = []
    for t in sorted({r["target"] for r in repeats}):
        best = top_candidates(candidates, pairs, t, top)
        out += [
            r
            for r in repeats
            if r["target"] == t and r["model"] in best and (seeds is None or r["extra"] in seeds)
        ]
    return out


def noisy_extra_seeds(extra_seeds: Sequence[int], noisy_seeds: int | None) -> tuple[int, ...]:
    """The extra seeds every candidate gets on a noisy target: ``extra_seeds``, then the next ones
    until ``noisy_seeds`` seeds in all, the first fine-tune included (``None``: a results document
    older than the knob, whose noisy targets had ``extra_seeds`` only)."""
    extras = list(extra_seeds)
    more = max(extras, default=0) + 1
    while noisy_seeds is not None and len(extras) + 1 < noisy_seeds:
        extras.append(more)
        more += 1
    return tuple(extras)


def seeds_averaged(config: Mapping[str, Any]) -> int:
    """How many seeds a results document's noisy targets average, the first included
    (:func:`noisy_extra_seeds` of its configuration)."""
    return 1 + len(noisy_extra_seeds(config.get("extra_seeds", ()), config.get("noisy_seeds")))


def moves_pp(repeats: Sequence[Mapping[str, Any]], pairs: Pairs) -> dict[str, list[float]]:
    """Per target: the points between each repeat and the first fine-tune of its (model, target)."""
    diffs: dict[str, list[float]] = {}
    for r in repeats:
        first = pairs[r["model"], r["target"]]["finetune_acc"]
        diffs.setdefault(r["target"], []).append(100.0 * abs(r["accuracy"] - first))
    return diffs


def spread_pp(repeats: Sequence[Mapping[str, Any]], pairs: Pairs) -> dict[str, float]:
    """Per target: the mean of :func:`moves_pp`."""
    return {t: float(np.mean(v)) for t, v in moves_pp(repeats, pairs).items()}


def noisy_targets(
    targets: Sequence[str],
    candidates: Sequence[str],
    repeats: Sequence[Mapping[str, Any]],
    pairs: Pairs,
    *,
    top: int,
    noisy_pp: float,
) -> list[str]:
    """The targets whose top repeats moved more than ``noisy_pp`` points on average."""
    spread = spread_pp(top_repeats(repeats, pairs, candidates, top), pairs)
    return [t for t in targets if spread.get(t, 0.0) > noisy_pp]


def pairs_of(results: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The results document's (model, target) entries by key."""
    return {(p["model"], p["target"]): p for p in results["pairs"]}


def averaged_targets(results: Mapping[str, Any]) -> list[str]:
    """The targets on which every candidate was fine-tuned with every seed of a noisy target
    (:func:`noisy_extra_seeds`)."""
    seeds = seeds_averaged(results["config"]) - 1
    if not seeds or not results.get("repeats"):
        return []
    counts: dict[tuple[str, str], int] = {}
    for r in results.get("repeats", []):
        counts[r["model"], r["target"]] = counts.get((r["model"], r["target"]), 0) + 1
    every = results["candidates"]
    return [t for t in results["targets"] if all(counts.get((m, t), 0) >= seeds for m in every)]


def truth(results: Mapping[str, Any], *, seeds: str = "mean") -> dict[tuple[str, str], float]:
    """Each (model, target)'s fine-tuned test accuracy: ``seeds="mean"`` averages every seed of a
    candidate on the targets where all candidates have them (:func:`averaged_targets`), else the
    first fine-tune; ``seeds="first"``: the first fine-tune everywhere (the build's older truth)."""
    if seeds not in ("mean", "first"):
        raise ValueError(f"seeds must be 'mean' or 'first', not {seeds!r}")
    acc = {key: float(p["finetune_acc"]) for key, p in pairs_of(results).items()}
    if seeds == "first":
        return acc
    averaged = set(averaged_targets(results))
    runs: dict[tuple[str, str], list[float]] = {}
    for r in results.get("repeats", []):
        if r["target"] in averaged and (r["model"], r["target"]) in acc:
            runs.setdefault((r["model"], r["target"]), []).append(float(r["accuracy"]))
    for key, more in runs.items():
        acc[key] = float(np.mean([acc[key], *more]))
    return acc


def seed_noise(results: Mapping[str, Any]) -> dict[str, Any]:
    """Points between the first fine-tune and the repeats of each target's top candidates (the
    build's noise measure): mean, max, per target, and the targets too noisy for one seed."""
    cfg = results["config"]
    pairs = pairs_of(results)
    repeats = results.get("repeats", [])
    tops = top_repeats(repeats, pairs, results["candidates"], cfg["repeat_top"], cfg.get("extra_seeds"))
    moves = moves_pp(tops, pairs)
    flat = [d for v in moves.values() for d in v]
    return {
        "mean_pp": float(np.mean(flat)) if flat else float("nan"),
        "max_pp": float(np.max(flat)) if flat else float("nan"),
        "per_target_pp": {t: float(np.mean(v)) for t, v in moves.items()},
        "repeats": len(flat),
        "noisy_pp": cfg.get("noisy_pp"),
        "averaged_targets": averaged_targets(results),
        "seeds_averaged": seeds_per_target(results),
        "seed_sd_pp": seed_sd_pp(results),
    }


def runs_pp(repeats: Sequence[Mapping[str, Any]], pairs: Pairs, target: str) -> dict[str, list[float]]:
    """Per model: every fine-tune of it on ``target`` in points, the first one first."""
    runs: dict[str, list[float]] = {}
    for r in repeats:
        if r["target"] == target:
            runs.setdefault(r["model"], [100.0 * pairs[r["model"], target]["finetune_acc"]]).append(
                100.0 * r["accuracy"]
            )
    return runs


def pooled_sd_pp(runs: Mapping[str, Sequence[float]]) -> float:
    """One seed's standard deviation, pooled over the models (the within-model spread of their
    seeds, each model around its own mean): NaN without two seeds of any model."""
    ss = sum(float(np.sum((np.asarray(v) - np.mean(v)) ** 2)) for v in runs.values())
    dof = sum(len(v) - 1 for v in runs.values())
    return float(np.sqrt(ss / dof)) if dof else float("nan")


def seeds_needed(sd_pp: float, truth_sd_pp: float, floor: int, cap: int) -> int:
    """The seeds whose mean has a standard deviation of at most ``truth_sd_pp`` points when one
    seed's is ``sd_pp`` (sd/√n <= truth_sd_pp, so n = ceil((sd/truth_sd)^2)), within [floor, cap]."""
    if not np.isfinite(sd_pp):
        return floor
    return int(min(cap, max(floor, int(np.ceil((sd_pp / truth_sd_pp) ** 2 - 1e-9)))))


def seed_sd_pp(results: Mapping[str, Any]) -> dict[str, float]:
    """Per averaged target: one seed's standard deviation in points, pooled over the candidates
    (:func:`pooled_sd_pp`); the truth's mean over ``n`` seeds has this over √n."""
    first = pairs_of(results)
    return {t: pooled_sd_pp(runs_pp(results["repeats"], first, t)) for t in averaged_targets(results)}


def seeds_per_target(results: Mapping[str, Any]) -> dict[str, int]:
    """Per averaged target: the seeds each candidate's truth there averages, the first included
    (every candidate has as many: the build gives a target's candidates the same seeds)."""
    first = pairs_of(results)
    return {
        t: min(len(v) for v in runs_pp(results["repeats"], first, t).values())
        for t in averaged_targets(results)
    }


def averaged_lines(noise: Mapping[str, Any], *, who: str = "candidate") -> list[str]:
    """The report's lines on the targets whose truth is a seed mean (``noise``: :func:`seed_noise`):
    how far their top repeats moved, how many seeds, then one seed's sd and the mean's."""
    averaged, n, sd = noise["averaged_targets"], noise["seeds_averaged"], noise["seed_sd_pp"]
    moved = ", ".join(f"{t} {noise['per_target_pp'][t]:.1f}" for t in averaged)
    seeds = ", ".join(f"{t} {n[t]}" for t in averaged)
    each = ", ".join(f"{t} {sd[t]:.1f} ({sd[t] / np.sqrt(n[t]):.1f})" for t in averaged)
    return [
        f"too noisy for one seed (top repeats moved > {noise['noisy_pp']:.1f} pts: {moved}): every {who} "
        f"fine-tuned with as many seeds there ({seeds}); truth = the mean over the seeds",
        f"  one seed's sd, pooled over the {who}s (in parentheses: their seeds' mean's), pts: {each}",
    ]


def seed_repeats(
    run_jobs: RunJobs,
    job: Callable[..., tuple[dict, dict]],
    job_args: Callable[[str, str, int], tuple],
    cfg: Any,
    targets: Sequence[str],
    candidates: Sequence[str],
    pairs: Pairs,
    *,
    workers: int,
    log: Callable[[str], None],
    progress: Callable[[int, int, str], None],
    merge: Callable[[dict], None],
) -> list[dict[str, Any]]:
    """The seed-noise stage of both builds. First each target's best ``cfg.repeat_top`` candidates
    (by their first fine-tune) again with every seed of ``cfg.extra_seeds``; then, on the targets whose
    repeats moved more than ``cfg.noisy_pp`` points on average (``noisy_targets``), every
    candidate with ``cfg.noisy_seeds`` seeds in all (:func:`noisy_extra_seeds`), so that their
    ground truth can be the mean over the seeds. With ``cfg.truth_sd_pp``, a last stage: on each noisy
    target, one seed's sd pooled over the candidates' ``cfg.noisy_seeds`` seeds (:func:`pooled_sd_pp`)
    sets the seeds every candidate gets there in all, the fewest whose mean's sd is at most
    ``cfg.truth_sd_pp`` points (:func:`seeds_needed`, at most ``cfg.max_seeds``): the rule looks at the
    spread of each model's seeds, never at which model leads. ``job(*job_args(model,
    target, extra))`` returns one repeat ({model, target, extra, accuracy, ...}) and its seconds;
    ``run_jobs`` runs a batch of jobs (``zoo_run._run_jobs``: in worker processes)."""
    repeats: list[dict[str, Any]] = []
    jobs: list[tuple] = []
    batch = [0]

    def done(_job: tuple, result: tuple[dict, dict]) -> None:
        r = result[0]
        repeats.append(r)
        merge(result[1])
        batch[0] += 1
        first = pairs[r["model"], r["target"]]["finetune_acc"]
        progress(
            batch[0],
            len(jobs),
            f"{r['model']} on {r['target']}, seed {r['extra']}: {r['accuracy']:.3f} (seed 0: {first:.3f})",
        )

    for t in targets:
        top = top_candidates(candidates, pairs, t, cfg.repeat_top)
        jobs += [job_args(m, t, extra) for m in top for extra in cfg.extra_seeds]
    run_jobs(job, jobs, workers=workers, on_done=done)
    have = {(r["model"], r["target"], r["extra"]) for r in repeats}
    noisy = noisy_targets(targets, candidates, repeats, pairs, top=cfg.repeat_top, noisy_pp=cfg.noisy_pp)
    extras = noisy_extra_seeds(cfg.extra_seeds, cfg.noisy_seeds)
    jobs = [
        job_args(m, t, extra)
        for t in noisy
        for m in candidates
        for extra in extras
        if (m, t, extra) not in have
    ]
    if jobs:
        log(
            f"too noisy for one seed (> {cfg.noisy_pp} points): {', '.join(noisy)}; every candidate "
            f"with {1 + len(extras)} seeds"
        )
    batch[0] = 0
    run_jobs(job, jobs, workers=workers, on_done=done)
    if cfg.truth_sd_pp is not None:
        jobs = []
        for t in noisy:
            sd = pooled_sd_pp(runs_pp(repeats, pairs, t))
            needed = seeds_needed(sd, cfg.truth_sd_pp, 1 + len(extras), cfg.max_seeds)
            more = noisy_extra_seeds(extras, needed)
            if len(more) > len(extras):
                log(
                    f"{t}: one seed's sd {sd:.2f} points; every candidate with {1 + len(more)} seeds "
                    f"(their mean's sd <= {cfg.truth_sd_pp} points, at most {cfg.max_seeds})"
                )
            jobs += [job_args(m, t, extra) for m in candidates for extra in more[len(extras) :]]
        batch[0] = 0
        run_jobs(job, jobs, workers=workers, on_done=done)
    return sorted(repeats, key=lambda r: (r["target"], r["model"], r["extra"]))
