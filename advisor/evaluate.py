"""Evaluating the candidates of one run: features, scores, baselines, confidence, history, the answer.

``evaluate`` is the body of ``recommend`` once the data, the candidates and the estimators are
known; it writes the run's candidate and score rows as it goes (when a run store is given) and
returns the typed result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import TlregError
from tlreg.registry.outcomes import OutcomeStore
from tlreg.registry.runs import Run, RunCandidate, RunScore, RunStore

from .backends import Backend, EmbedSettings, Job, LocalBackend
from .baselines import negative_transfer, raw_baseline
from .cache import FeatureCache
from .confidence import bootstrap
from .data import Dataset
from .errors import NoCandidatesError, StorageError
from .features import Features, Reporter, baseline_label
from .history import PROBES, compute_signature, history_signal
from .rank import combine, explain, order, pooled, to_compute
from .result import RankingRow, RecommendResult
from .scoring import as_dict, score_features

HISTORY = "history"


@dataclass
class Settings:
    """What ``evaluate`` needs from the run's options."""

    names: list[str]
    seed: int
    batch_size: int
    workers: int
    baselines: bool
    bootstrap: int
    history: bool
    trust_remote_code: bool


def _record(runs: RunStore | None, *rows: RunCandidate | RunScore) -> None:
    if runs is not None:
        runs.add(*rows)


def evaluate(
    registry: Registry,
    runs: RunStore | None,
    run: Run,
    candidates: Sequence[ModelRecord],
    sub: Dataset,
    fp: str,
    s: Settings,
    *,
    cache: FeatureCache,
    device: torch.device,
    reporter: Reporter,
    warns: list[str],
    backend: Backend | None = None,
) -> RecommendResult:
    backend = backend or LocalBackend()
    scores: dict[str, dict[str, float]] = {}
    feats_of: dict[str, Features] = {}
    records: dict[str, ModelRecord] = {}
    skipped: list[dict[str, str]] = []

    def score_and_record(feats: Features, record: ModelRecord | None, baseline_of: str | None) -> None:
        scored = score_features(feats.features, feats.probs, sub.labels, sub.task, to_compute(s.names))
        for item in scored:
            if item.error:
                warns.append(f"{item.estimator} could not score {feats.label}: {item.error}")
        scores[feats.label], feats_of[feats.label] = as_dict(scored), feats
        _record(
            runs,
            RunCandidate(
                run_id=run.id,
                ref=feats.label,
                revision=feats.revision,
                cache_key=feats.cache_key,
                baseline_of=baseline_of,
                params=record.params if record else None,
                feature_dim=feats.features.shape[1],
                seconds=feats.seconds,
                samples_per_s=feats.samples_per_s,
                from_cache=feats.from_cache,
            ),
            *(
                RunScore(
                    run_id=run.id,
                    ref=feats.label,
                    estimator=i.estimator,
                    value=i.value if math.isfinite(i.value) else None,
                    seconds=i.seconds,
                    error=i.error,
                )
                for i in scored
            ),
        )

    jobs = [
        Job(record, pretrained)
        for record in candidates
        for pretrained in ((True, False) if s.baselines else (True,))
    ]
    embed = EmbedSettings(
        seed=s.seed, batch_size=s.batch_size, workers=s.workers, trust_remote_code=s.trust_remote_code
    )
    for job, outcome in backend.run(
        registry, jobs, sub, fp, cache=cache, device=device, settings=embed, reporter=reporter
    ):
        record = job.record
        label = record.ref if job.pretrained else baseline_label(record.ref)
        if isinstance(outcome, TlregError):
            skipped.append({"ref": label, "reason": str(outcome)})
            _record(runs, RunCandidate(run_id=run.id, ref=label, status="skipped", reason=str(outcome)))
            reporter.note(f"skipped {label}: {outcome}")
            continue
        records[label] = record
        score_and_record(outcome, record, None if job.pretrained else record.ref)

    refs = [r.ref for r in candidates if r.ref in scores]
    if not refs:
        raise NoCandidatesError(
            f"None of the {len(candidates)} candidate models could be evaluated.",
            hint="See the reasons above (or in the run record); fix them and run again.",
        )
    raw_label = None
    if s.baselines:
        raw = raw_baseline(sub, fp, cache=cache, seed=s.seed)
        raw_label = raw.label
        score_and_record(raw, None, "*")

    names = list(s.names)
    signal_detail: dict[str, Any] = {}
    if s.history and sub.task == "classification":
        signal_detail = _history(registry, runs, run, sub, fp, refs, scores, feats_of, cache, device, warns)
        if signal_detail.get("used"):
            names.append(HISTORY)

    combined = combine({r: scores[r] for r in refs}, names)
    shown = pooled({r: scores[r] for r in refs}, names)  # ETran / NCTI by their pool values
    shown.update({b: v for b, v in pooled(scores, names).items() if b not in shown})
    tiebreak = {r: float(records[r].params or 0) for r in refs}
    ranked = order(combined, tiebreak)
    fixed = {r: {HISTORY: scores[r][HISTORY]} for r in refs if HISTORY in scores[r]}
    conf = bootstrap(
        {r: (feats_of[r].features, feats_of[r].probs) for r in refs},
        sub.labels,
        sub.task,
        s.names,
        ranked,
        rounds=s.bootstrap if len(refs) > 1 else 0,
        seed=s.seed,
        tiebreak=tiebreak,
        fixed=fixed,
    )

    def row(label: str, rank: int) -> RankingRow:
        feats = feats_of[label]
        record = records.get(label)
        return RankingRow(
            rank=rank,
            ref=label,
            revision=feats.revision,
            scores={**scores[label], **shown[label]},
            combined=combined.get(label, math.nan),
            params=record.params if record else None,
            feature_dim=feats.features.shape[1],
            samples_per_s=feats.samples_per_s,
            seconds=round(feats.seconds, 3),
            from_cache=feats.from_cache,
            baseline_of=None if label in combined else (record.ref if record else "*"),
            p_best=conf.p_best.get(label),
            rank_interval=conf.rank_interval.get(label),
        )

    ranking = [row(label, i + 1) for i, label in enumerate(ranked)]
    for r in ranking:
        own = {
            k: v
            for k, v in (
                (baseline_label(r.ref), scores.get(baseline_label(r.ref))),
                (raw_label, scores.get(raw_label)),
            )
            if k and v is not None
        }
        if own:
            r.negative_transfer_vs = negative_transfer(r.scores, own, s.names)
            r.negative_transfer = bool(r.negative_transfer_vs)
            if r.negative_transfer:
                warns.append(
                    f"negative transfer: {r.ref} does not beat {' nor '.join(r.negative_transfer_vs)} "
                    "on most estimators; pretraining may not help on this data."
                )
    if conf.separable is False:
        warns.append(
            f"The top two are not separable: {ranked[0]} ranks above {ranked[1]} in only "
            f"{conf.beats_runner_up:.0%} of {conf.rounds} resamples; more samples per class would tell them "
            "apart (--per-class, --max-samples)."
        )
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
        ranking=ranking,
        baselines=baselines,
        reason=explain(ranked, scores, combined, names),
        warnings=warns,
        skipped=skipped,
        confidence={
            "rounds": conf.rounds,
            "beats_runner_up": conf.beats_runner_up,
            "separable": conf.separable,
        },
        history=signal_detail,
    )


def _history(
    registry: Registry,
    runs: RunStore | None,
    run: Run,
    sub: Dataset,
    fp: str,
    refs: list[str],
    scores: dict[str, dict[str, float]],
    feats_of: dict[str, Features],
    cache: FeatureCache,
    device: torch.device,
    warns: list[str],
) -> dict[str, Any]:
    """Store this dataset's signature and, where the history knows similar datasets, add its signal."""
    probe = PROBES.get(sub.modality)
    try:
        signature = compute_signature(
            registry,
            sub,
            fp,
            cache=cache,
            device=device,
            data_path=run.data_path,
            probe_features=feats_of[probe].features if probe in feats_of else None,
        )
    except StorageError:
        raise  # a full disk stops the run here as anywhere else
    except TlregError as exc:
        warns.append(f"no dataset signature (history) for this run: {exc}")
        return {}
    store = OutcomeStore(registry.engine)
    if runs is not None:
        store.add_signature(signature)
    signal = history_signal(registry, signature, refs)
    if signal.usable:
        for r in refs:
            scores[r][HISTORY] = signal.scores[r]
    return {
        "probe": signature.probe,
        "used": signal.usable,
        "neighbours": signal.neighbours,
        "scores": {r: v for r, v in signal.scores.items() if np.isfinite(v)},
    }
