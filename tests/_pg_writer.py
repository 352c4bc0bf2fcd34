"""A team member's process for the concurrency test of ``test_postgres.py``.

In a module of its own so that each spawned process imports only ``tlreg.registry`` (the test
module imports the advisor, torch and timm, which would cost seconds per process).
"""

from __future__ import annotations

from tlreg.registry import ModelSpec, Registry, RunStore
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore

PER_WRITER = 25


def spec(ref: str, revision: str | None = None) -> ModelSpec:
    return ModelSpec(ref=ref, source="timm", architecture="a", modality="image", revision=revision)


def write(url: str, worker: int, barrier) -> None:
    """Open the registry (all writers at once, on an empty database: the first migrates it), then add,
    tag and record runs, every writer also adding and tagging one shared ref at the same moment."""
    barrier.wait(timeout=120)
    reg = Registry(url)
    store = RunStore(reg.engine)
    barrier.wait(timeout=120)
    for i in range(PER_WRITER):
        ref = f"timm:w{worker}_{i}"
        reg.add(spec("timm:shared"))
        reg.tag("timm:shared", add=[f"w{worker}", "everyone"])
        reg.add(spec(ref, f"{i:040d}"))
        reg.tag(ref, add=[f"w{worker}", "all"])
        if i % 5 == 0:
            run_id = f"run-{worker}-{i}"
            store.start(Run(id=run_id, fingerprint="f" * 64))
            store.add(RunCandidate(run_id=run_id, ref=ref), RunScore(run_id=run_id, ref=ref, estimator="e"))
            store.finish(RunResult(run_id=run_id, best_ref=ref))
