"""Running the transfer-plan build: partial fine-tunes, depth profiles and learning curves, in workers.

Reads the Hub-like build's results (which candidates are each target's best), runs the jobs of
``plan_build`` in single-threaded worker processes (each caches its own output), and returns the
results document ``bench/transfer_plan.py`` evaluates and commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hub_build as hb
import plan_build as pb
from tlreg.registry import Registry
from zoo_run import Ledger, _round, _run_jobs, cores, environment


def top_candidates(hub: dict[str, Any], target: str, k: int = pb.TOP) -> list[str]:
    """The target's ``k`` best candidates by full fine-tune accuracy."""
    accs = {p["model"]: p["finetune_acc"] for p in hub["pairs"] if p["target"] == target}
    return sorted(hub["candidates"], key=lambda m: (-accs[m], m))[:k]


def build(
    work: Path,
    cfg: hb.HubConfig,
    hub: dict[str, Any],
    *,
    log: Callable[[str], None] = print,
    workers: int | None = None,
) -> dict[str, Any]:
    workers = workers or cores()
    started = time.perf_counter()
    ledger = Ledger.for_build(work, cfg, "ledger-plan")
    registry = Registry(f"sqlite:///{work / 'registry.db'}")
    refs = {m: hub["models"][m]["ref"] for m in hub["models"]}
    chosen = {t: top_candidates(hub, t) for t in cfg.targets}
    blocks = {}
    for model_id in sorted({m for ms in chosen.values() for m in ms}):
        from tlreg.advisor.handoff.model import find_blocks

        blocks[model_id] = len(find_blocks(registry.load(refs[model_id]).module) or [])

    def progress(done: int, total: int, what: str) -> None:
        log(f"[{time.perf_counter() - started:7.0f}s] {done}/{total} {what}")

    profiles: dict[tuple[str, str], dict] = {}
    jobs = [(work, cfg, m, refs[m], t) for t, ms in chosen.items() for m in ms]

    def profile_done(job: tuple, result: tuple[dict, dict]) -> None:
        profiles[job[2], job[4]] = result[0]
        ledger.add(result[1])
        curve = result[0]["curve"]
        pred = curve.get("prediction") or {}
        progress(
            len(profiles),
            len(jobs),
            f"profile of {job[2]} on {job[4]}: peak {result[0]['profile']['peak']}, "
            f"curve predicts {pred.get('expected', float('nan')):.3f}",
        )

    _run_jobs(pb.profile_job, jobs, workers=workers, on_done=profile_done)

    partials: dict[tuple[str, str, int], dict] = {}
    partial_jobs = [
        (work, cfg, m, refs[m], t, k)
        for t, ms in chosen.items()
        for m in ms
        for k in pb.unfreeze_counts(blocks[m])
    ]

    def partial_done(job: tuple, result: tuple[dict, dict]) -> None:
        partials[job[2], job[4], job[5]] = result[0]
        ledger.add(result[1])
        progress(
            len(partials),
            len(partial_jobs),
            f"{job[2]} on {job[4]}, last {job[5]}: {result[0]['accuracy']:.3f}",
        )

    _run_jobs(pb.partial_job, partial_jobs, workers=workers, on_done=partial_done)
    ledger.end_run(wall_seconds=time.perf_counter() - started)
    return {
        "about": "tlreg transfer-plan ground truth: see bench/transfer_plan.py",
        "hub_results": "data/bench/hub_quality_results.json",
        "config": {**cfg.to_dict(), "top": pb.TOP, "profile_estimators": list(pb.PROFILE_ESTIMATORS)},
        "environment": environment(workers),
        "timings": {"stages": ledger.stages.spent, "runs": ledger.runs},
        "chosen": chosen,
        "blocks": blocks,
        "profiles": [_round(profiles[m, t]) for t, ms in chosen.items() for m in ms],
        "partials": [_round(partials[k]) for k in sorted(partials)],
    }
