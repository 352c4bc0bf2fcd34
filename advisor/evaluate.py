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
from .baselines import raw_baseline
from .cache import FeatureCache
from .confidence import bootstrap, competition_ranks, tied_with_best
from .data import Dataset
from .errors import NoCandidatesError, StorageError
from .features import Features, Reporter
from .history import PROBES, compute_signature, history_signal
from .rank import combine, order, pooled, to_compute
from .result import RankingRow, RecommendResult, baseline_label
from .scoring import as_dict, score_features
from .verdicts import beaten_by, negative_transfer
from .why import TIE_RULE, PickFacts, explain

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
    errors: dict[str, list[str]] = {}

    def score_and_record(feats: Features, record: ModelRecord | None, baseline_of: str | None) -> None:
        scored = score_features(feats.features, feats.probs, sub.labels, sub.task, to_compute(s.names))
        for item in scored:
            if item.error:
                errors.setdefault(feats.label, []).append(item.error)
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

    refs = _scored(candidates, scores, s.names, errors, skipped)
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
    params = {r: records[r].params for r in refs}
    ranked = order(combined, {r: float(params[r] or 0) for r in refs})  # ties: the cheaper model first
    tied = [r for r in ranked if r in tied_with_best(combined)]
    ranks = competition_ranks(combined)
    fixed = {r: {HISTORY: scores[r][HISTORY]} for r in refs if HISTORY in scores[r]}
    candidate_refs = {r.ref for r in candidates}
    baseline_labels = [b for b in scores if b not in candidate_refs]
    baseline_feats = {b: (feats_of[b].features, feats_of[b].probs) for b in baseline_labels}
    conf = bootstrap(
        {r: (feats_of[r].features, feats_of[r].probs) for r in refs},
        sub.labels,
        sub.task,
        s.names,
        ranked,
        rounds=s.bootstrap if len(refs) > 1 or baseline_feats else 0,
        seed=s.seed,
        fixed=fixed,
        baselines=baseline_feats,
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
            p_best=conf.p_best.get(label) if len(refs) > 1 else None,
            rank_interval=conf.rank_interval.get(label) if len(refs) > 1 else None,
        )

    ranking = [row(label, ranks[label]) for label in ranked]
    n_classes = sub.num_classes
    shared = [ranks[r] for r in ranked]
    for r in ranking:
        r.tied = shared.count(r.rank) > 1
        own = baseline_label(r.ref)
        own_baselines = [b for b in (own, raw_label) if b and b in scores]
        if not own_baselines:
            continue
        r.frozen_features_beaten_by = beaten_by(
            r.ref, scores, own_baselines, s.names, n_classes=n_classes, rounds=conf.round_scores
        )
        r.negative_transfer = negative_transfer(
            r.ref,
            own if own in scores else None,
            scores,
            s.names,
            n_classes=n_classes,
            rounds=conf.round_scores,
        )
        r.negative_transfer_vs = [own] if r.negative_transfer else []
        if r.negative_transfer:
            warns.append(
                f"negative transfer: fine-tuning {r.ref} is not expected to beat training its architecture "
                f"from scratch ({own} scores decisively higher on every estimator)."
            )
        elif r.frozen_features_beaten_by:
            warns.append(
                f"{r.ref}: its frozen features lose to {' and '.join(r.frozen_features_beaten_by)}; "
                "fine-tune the whole network rather than train a linear head on them."
            )
    if len(tied) > 1:
        warns.append(f"{', '.join(tied)} tie for first; {tied[0]} is picked as {TIE_RULE}.")
    elif conf.separable is False:
        warns.append(
            f"The top two are not separable: {ranked[0]} ranks above {ranked[1]} in only "
            f"{conf.beats_runner_up:.0%} of {conf.rounds} resamples; more samples per class would tell them "
            "apart (--per-class, --max-samples)."
        )
    baselines = [row(label, 0) for label in baseline_labels]
    pick = ranking[0]
    facts = PickFacts(
        params=params,
        tied=tied,
        beats_runner_up=conf.beats_runner_up,
        rounds=conf.rounds,
        separable=conf.separable,
        negative_transfer=bool(pick.negative_transfer),
        frozen_features_beaten_by=pick.frozen_features_beaten_by or (),
    )
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
        reason=explain(ranked, scores, combined, names, facts),
        warnings=warns,
        skipped=skipped,
        confidence={
            "rounds": conf.rounds,
            "beats_runner_up": conf.beats_runner_up,
            "separable": conf.separable,
            "tied": tied if len(tied) > 1 else [],
            "tie_rule": TIE_RULE,
        },
        history=signal_detail,
    )


def _scored(
    candidates: Sequence[ModelRecord],
    scores: dict[str, dict[str, float]],
    names: Sequence[str],
    errors: dict[str, list[str]],
    skipped: list[dict[str, str]],
) -> list[str]:
    """The candidates that at least one estimator scored; the others join ``skipped`` with the reason.

    A candidate with no finite score is never ranked, never gets P(best) and never beats anything:
    a ranking built on nothing would still name a pick. None scored at all is an error (exit 3).
    """
    refs, unscored = [], []
    for record in candidates:
        if record.ref not in scores:
            continue
        values = pooled({record.ref: scores[record.ref]}, names)[record.ref]
        if any(math.isfinite(v) for v in values.values()):
            refs.append(record.ref)
            continue
        why = "; ".join(dict.fromkeys(errors.get(record.ref, []))) or "every estimator refused it"
        skipped.append({"ref": record.ref, "reason": f"no estimator could score it ({why})"})
        unscored.append(why)
    if not refs:
        if unscored:
            raise NoCandidatesError(
                f"No candidate could be scored: {unscored[0]}",
                hint="Fix the data so the estimators can use it (see the reason), then run again.",
            )
        raise NoCandidatesError(
            f"None of the {len(candidates)} candidate models could be evaluated.",
            hint="See the reasons above (or in the run record); fix them and run again.",
        )
    return refs


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
