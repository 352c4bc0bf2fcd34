"""``recommend``: the main job, from a data path to a ranked, explained, recorded answer.

The run record is opened before the first model loads and closed with the result, so an
interrupted or failing run is recorded as such (see :mod:`tlreg.registry.runs`).
"""

from __future__ import annotations

import math
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import BadInputError, TlregError
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore, RunStore, new_run_id

from . import estimators as est
from .cache import FeatureCache
from .data import Dataset, fingerprint, load_dataset, sample
from .embed import default_workers, resolve_device
from .errors import EstimatorError, NoCandidatesError
from .features import Features, Reporter, Silent, features_for, select_candidates
from .rank import DEFAULT_ESTIMATORS, combine, explain, order
from .result import RankingRow, RecommendResult


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
    trust_remote_code: bool = False


def _environment(device: str) -> dict[str, Any]:
    versions = {name: version(name) for name in ("tlreg", "torch", "timm", "transformers", "numpy")}
    return {"python": sys.version.split()[0], "platform": platform.platform(), "device": device, **versions}


def _choose_estimators(names: Sequence[str] | None, task: str) -> list[str]:
    chosen = list(names) if names else list(DEFAULT_ESTIMATORS[task])
    for name in chosen:
        info = est.get(name)
        if task not in info.tasks:
            raise BadInputError(
                f"Estimator {name!r} does not score {task} targets.",
                hint=f"Ones that do: {', '.join(i.name for i in est.available(task=task))}.",
            )
    return chosen


def _score_all(
    feats: Features,
    labels: Any,
    task: str,
    names: Sequence[str],
    warns: list[str],
) -> tuple[dict[str, float], list[RunScore]]:
    values: dict[str, float] = {}
    rows: list[RunScore] = []
    for name in names:
        info = est.get(name)
        if info.needs_source_probs and feats.probs is None:
            continue  # this model has no source head: the estimator does not apply to it
        start = time.perf_counter()
        try:
            value = est.score(name, feats.features, labels, source_probs=feats.probs, task=task)
            error = None
        except EstimatorError as exc:
            value, error = math.nan, str(exc)
            warns.append(f"{name} could not score {feats.label}: {exc}")
        values[name] = value
        rows.append(
            RunScore(
                run_id="",
                ref=feats.label,
                estimator=name,
                value=value if math.isfinite(value) else None,
                seconds=time.perf_counter() - start,
                error=error,
            )
        )
    return values, rows


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
    device = resolve_device(opts.device)
    run = runs.start(
        Run(
            id=new_run_id(),
            command=command,
            options={k: v for k, v in vars(opts).items()},
            environment=_environment(str(device)),
            data_path=str(Path(data).resolve()),
            fingerprint=fp,
            modality=sub.modality,
            task=sub.task,
            n_samples=len(sub),
            classes=sub.classes,
            sample_ids=list(sub.ids),
        )
    )
    try:
        result = _evaluate(registry, run, candidates, sub, fp, names, opts, cache, device, reporter, warns)
    except BaseException as exc:
        runs.fail(run.id, f"{type(exc).__name__}: {exc}")
        raise
    runs.finish(
        RunResult(
            run_id=run.id,
            best_ref=result.best.ref if result.best else None,
            reason=result.reason,
            ranking=[r.to_dict() for r in result.ranking + result.baselines],
            warnings=result.warnings,
            skipped=result.skipped,
            detail={"estimators": names},
        )
    )
    return result


def _evaluate(
    registry: Registry,
    run: Run,
    candidates: list[ModelRecord],
    sub: Dataset,
    fp: str,
    names: list[str],
    opts: Options,
    cache: FeatureCache,
    device: Any,
    reporter: Reporter,
    warns: list[str],
) -> RecommendResult:
    runs = RunStore(registry.engine)
    workers = opts.workers if opts.workers is not None else default_workers(sub.modality)
    scores: dict[str, dict[str, float]] = {}
    info: dict[str, tuple[ModelRecord, Features]] = {}
    skipped: list[dict[str, str]] = []
    for record in candidates:
        for pretrained in (True, False) if opts.baselines else (True,):
            try:
                feats = features_for(
                    registry,
                    record,
                    sub,
                    fp,
                    pretrained=pretrained,
                    seed=opts.seed,
                    cache=cache,
                    device=device,
                    batch_size=opts.batch_size,
                    workers=workers,
                    trust_remote_code=opts.trust_remote_code,
                    reporter=reporter,
                )
            except TlregError as exc:
                label = record.ref if pretrained else f"{record.ref} (random init)"
                skipped.append({"ref": label, "reason": str(exc)})
                if runs:
                    runs.add(RunCandidate(run_id=run.id, ref=label, status="skipped", reason=str(exc)))
                reporter.note(f"skipped {label}: {exc}")
                break  # no baseline for a model that could not be evaluated
            values, score_rows = _score_all(feats, sub.labels, sub.task, names, warns)
            scores[feats.label] = values
            info[feats.label] = (record, feats)
            for row in score_rows:
                row.run_id = run.id
            runs.add(
                RunCandidate(
                    run_id=run.id,
                    ref=feats.label,
                    revision=feats.revision,
                    cache_key=feats.cache_key,
                    baseline_of=None if pretrained else record.ref,
                    params=record.params,
                    feature_dim=record.feature_dim,
                    seconds=feats.seconds,
                    samples_per_s=feats.samples_per_s,
                    from_cache=feats.from_cache,
                ),
                *score_rows,
            )
    pretrained_refs = [r.ref for r in candidates if r.ref in scores]
    if not pretrained_refs:
        raise NoCandidatesError(
            f"None of the {len(candidates)} candidate models could be evaluated.",
            hint="See the reasons above (or in the run record); fix them and run again.",
        )
    combined = combine({r: scores[r] for r in pretrained_refs}, names)
    ranked = order(combined, {r: info[r][0].params or 0 for r in pretrained_refs})

    def row(label: str, rank: int) -> RankingRow:
        record, feats = info[label]
        return RankingRow(
            rank=rank,
            ref=label,
            revision=feats.revision,
            scores=scores[label],
            combined=combined.get(label, math.nan),
            params=record.params,
            feature_dim=record.feature_dim,
            samples_per_s=feats.samples_per_s,
            seconds=round(feats.seconds, 3),
            from_cache=feats.from_cache,
            baseline_of=None if label == record.ref else record.ref,
        )

    ranking = [row(label, i + 1) for i, label in enumerate(ranked)]
    baselines = [row(label, 0) for label in scores if label not in combined]
    return RecommendResult(
        run_id=run.id,
        data={
            "path": run.data_path,
            "fingerprint": fp,
            "modality": sub.modality,
            "task": sub.task,
            "samples": len(sub),
            "classes": sub.classes,
            "format": sub.format,
        },
        estimators=names,
        ranking=ranking[: opts.top] if opts.top else ranking,
        baselines=baselines,
        reason=explain(ranked, scores, combined, names),
        warnings=warns,
        skipped=skipped,
    )
