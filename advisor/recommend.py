"""``recommend``: the main job, from a data path to a ranked, explained, recorded answer.

The run record is opened before the first model loads and closed with the result, so an
interrupted or failing run is recorded as such (see :mod:`tlreg.registry.runs`).
"""

from __future__ import annotations

import platform
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tlreg.registry import ModelRecord, Registry
from tlreg.registry.availability import summary as unavailable_summary
from tlreg.registry.errors import BadInputError
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunStore, new_run_id

from . import estimators as est
from .backends import make_backend
from .cache import FeatureCache
from .data import fingerprint, load_dataset, require_scorable, sample
from .embed import default_workers, resolve_device
from .errors import NoCandidatesError
from .evaluate import Settings, evaluate
from .features import Reporter, Silent, select_candidates
from .rank import DEFAULT_ESTIMATORS, to_compute
from .result import RecommendResult


@dataclass
class Options:
    """Every option of ``tlreg recommend`` (the CLI's flags are these fields), recorded with each run."""

    models: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    max_params: int | None = None
    estimators: list[str] | None = None
    per_class: int | None = None
    max_samples: int | None = None
    seed: int = 0
    text_col: str | None = None
    image_col: str | None = None
    label_col: str | None = None
    strict: bool = False
    device: str | None = None
    batch_size: int = 32
    workers: int | None = None
    top: int | None = None
    baselines: bool = True
    bootstrap: int = 50
    history: bool = True
    trust_remote_code: bool = False
    backend: str = "local"
    ray_address: str | None = None
    include_unavailable: bool = False


def _environment(device: str) -> dict[str, Any]:
    versions = {name: version(name) for name in ("tlreg", "torch", "timm", "transformers", "numpy")}
    return {"python": sys.version.split()[0], "platform": platform.platform(), "device": device, **versions}


def _choose_estimators(names: Sequence[str] | None, task: str) -> list[str]:
    chosen = list(names) if names else list(DEFAULT_ESTIMATORS[task])
    for name in dict.fromkeys([*chosen, *to_compute(chosen)]):
        info = est.get(name)
        if task not in info.tasks:
            raise BadInputError(
                f"Estimator {name!r} does not score {task} targets.",
                hint=f"Ones that do: {', '.join(i.name for i in est.available(task=task))}.",
            )
    return chosen


def recommend(
    data: str | Path,
    *,
    registry: Registry | None = None,
    db: str | None = None,
    cache: FeatureCache | None = None,
    reporter: Reporter | None = None,
    command: str = "",
    record: bool = True,
    **options: Any,
) -> RecommendResult:
    """Rank the registered models on ``data``, best first, and record the decision.

    ``options`` are the fields of :class:`Options` (``models``, ``estimators``, ``per_class``, ...).
    ``record=False`` writes no run record (``tlreg runs verify`` recomputes a run that way).
    Raises :class:`~tlreg.advisor.errors.DatasetError` for bad data (exit 2 in the CLI) and
    :class:`~tlreg.advisor.errors.NoCandidatesError` when no model could be evaluated (exit 3).
    """
    opts = Options(**options)
    if opts.bootstrap < 0:
        raise BadInputError(f"--bootstrap must be 0 (off) or a number of rounds, not {opts.bootstrap}.")
    registry = registry or Registry(db)
    cache = cache or FeatureCache()
    reporter = reporter or Silent()
    runs = RunStore(registry.engine) if record else None
    if runs:
        runs.mark_abandoned()

    warns: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        full = load_dataset(
            data,
            text_col=opts.text_col,
            image_col=opts.image_col,
            label_col=opts.label_col,
            strict=opts.strict,
        )
        sub = sample(full, per_class=opts.per_class, max_samples=opts.max_samples, seed=opts.seed)
        require_scorable(sub, per_class=opts.per_class)
        fp = fingerprint(sub)
    warns += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]

    names = _choose_estimators(opts.estimators, sub.task)
    candidates = select_candidates(
        registry, modality=sub.modality, models=opts.models, tags=opts.tags, max_params=opts.max_params
    )
    if not candidates:
        raise NoCandidatesError(
            f"No registered {sub.modality} model matches"
            f"{' the filters' if (opts.models or opts.tags or opts.max_params) else ''}.",
            hint="Register some: tlreg registry import bundled (offline), tlreg registry import catalog, "
            "or tlreg registry add REF.",
        )
    candidates, left_out = _loadable(registry, candidates, opts.include_unavailable, warns)
    device = resolve_device(opts.device)
    run = Run(
        id=new_run_id() if record else "",
        command=command or "python: tlreg.advisor.recommend(...)",
        options=dict(vars(opts)),
        environment=_environment(str(device)),
        data_path=str(Path(data).resolve()),
        fingerprint=fp,
        modality=sub.modality,
        task=sub.task,
        n_samples=len(sub),
        classes=sub.classes,
        sample_ids=list(sub.ids),
    )
    settings = Settings(
        names=names,
        seed=opts.seed,
        batch_size=opts.batch_size,
        workers=opts.workers if opts.workers is not None else default_workers(sub.modality),
        baselines=opts.baselines,
        bootstrap=opts.bootstrap,
        history=opts.history,
        trust_remote_code=opts.trust_remote_code,
    )
    backend = make_backend(opts.backend, address=opts.ray_address)
    common = {"cache": cache, "device": device, "reporter": reporter, "warns": warns, "backend": backend}
    if runs is None:
        result = evaluate(registry, None, run, candidates, sub, fp, settings, **common)
        result.skipped[:0] = left_out
        return _top(result, opts.top)
    runs.start(run)
    if left_out:  # recorded as candidates that were skipped, like one that fails to load
        runs.add(
            *(
                RunCandidate(run_id=run.id, ref=s["ref"], status="skipped", reason=s["reason"])
                for s in left_out
            )
        )
    try:
        result = evaluate(registry, runs, run, candidates, sub, fp, settings, **common)
    except BaseException as exc:
        runs.fail(run.id, f"{type(exc).__name__}: {exc}")
        raise
    result.skipped[:0] = left_out
    runs.finish(
        RunResult(
            run_id=run.id,
            best_ref=result.best.ref if result.best else None,
            reason=result.reason,
            ranking=[r.to_dict() for r in result.ranking + result.baselines],
            warnings=result.warnings,
            skipped=result.skipped,
            detail={
                "estimators": result.estimators,
                "confidence": result.confidence,
                "history": result.history,
            },
        )
    )
    return _top(result, opts.top)


def _loadable(
    registry: Registry, candidates: list[ModelRecord], include: bool, warns: list[str]
) -> tuple[list[ModelRecord], list[dict[str, str]]]:
    """The candidates that can be loaded now (all of them with ``include``), and the others as
    skipped rows; the count and the reasons become one warning, instead of one failure per model."""
    if include:
        return candidates, []
    keep, left_out = registry.split_available(candidates)
    if not left_out:
        return candidates, []
    line = unavailable_summary(left_out, len(candidates))
    if not keep:
        raise NoCandidatesError(
            f"None of the candidate models can be loaded now: {line.partition(': ')[2]}.",
            hint="Connect once so they download, register local ones (tlreg registry import bundled), "
            "or pass --include-unavailable to try them anyway.",
        )
    warns.append(f"{line}; --include-unavailable lists and tries them.")
    return keep, [{"ref": u.ref, "reason": f"cannot be loaded now: {u.reason}"} for u in left_out]


def _top(result: RecommendResult, top: int | None) -> RecommendResult:
    """Show the best ``top`` only; the run record keeps the whole ranking."""
    if top:
        result.ranking = result.ranking[:top]
    return result
