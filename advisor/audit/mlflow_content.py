"""What a tlreg run becomes in MLflow: the params, metrics and tags of each MLflow run, as plain data.

Kept apart from the client calls (:mod:`.mlflow_export`) so that what is logged can be read in
one place. The shape follows how MLflow's own views work:

* the **parent run** (one per tlreg run) carries the decision: the options and environment as
  params, the pick, the "Why" and the verdicts on the pick as tags, the confidence figures as metrics;
* one **child run per candidate** (and per baseline) carries that model's scores under the *same*
  metric keys in every child (``score.logme``, ``combined``, ``p_best``, ``rank``...), so MLflow's
  compare and parallel-coordinates views line the candidates up;
* one **fine-tune run** per recorded outcome carries its budget as params and its validation
  accuracy, with the per-epoch curve as a metric history.

Params are plain values (``10``, ``timm:a, timm:b``, ``true``), never JSON, so MLflow's tables and
filters read them as people typed them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from tlreg.registry.outcomes import FinetuneOutcome

from ..result import plain
from .records import RunRecord, is_baseline

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_SHA = re.compile(r"@[0-9a-f]{40}$")
#: MLflow's limits: a param value, a tag value, a key, a dataset digest
PARAM_MAX, TAG_MAX, KEY_MAX, DIGEST_MAX = 6000, 8000, 250, 36


def metric_key(*parts: str) -> str:
    """An MLflow-safe key (letters, digits, ``_ . -``): refs hold ``:`` ``/`` ``@`` and spaces."""
    return ".".join(_UNSAFE.sub("_", p).strip("_") for p in parts)[:KEY_MAX]


def _params(pairs: dict[str, Any]) -> dict[str, str]:
    """Only values that were set (an unset option is not a param), each cut to MLflow's limit."""
    return {k: plain(v)[:PARAM_MAX] for k, v in pairs.items() if v not in (None, [], (), {}, "")}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _metrics(pairs: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in ((k, _number(v)) for k, v in pairs.items()) if v is not None}


def _tags(pairs: dict[str, Any]) -> dict[str, str]:
    return {k: plain(v)[:TAG_MAX] for k, v in pairs.items() if v is not None}


def run_name(ref: str) -> str:
    """A child run's name: the ref without its pinned sha (the ``revision`` param keeps it)."""
    return _SHA.sub("", ref)[:KEY_MAX]


@dataclass
class Logged:
    """One MLflow run to create: its name, params, metrics (key -> value, or a history of
    (step, value)) and tags."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    failed: bool = False


def digest(fingerprint: str) -> str:
    """The data fingerprint as an MLflow dataset digest (MLflow keeps at most 36 characters;
    the whole fingerprint is the ``data_fingerprint`` param)."""
    return fingerprint[:DIGEST_MAX]


def _why(record: RunRecord) -> str:
    """The parent run's description (MLflow shows ``mlflow.note.content`` as Markdown)."""
    result = record.result
    if result is None:
        return f"tlreg run {record.id} has no result ({record.run.status}: {record.run.failure or ''})."
    lines = [f"**Pick: {result.best_ref or 'none'}**", "", result.reason]
    lines += [f"- warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def parent(record: RunRecord) -> Logged:
    run, result = record.run, record.result
    detail = (result.detail if result else {}) or {}
    conf = detail.get("confidence") or {}
    rows = record.ranking()
    pick = next((r for r in rows if r["ref"] == record.pick), None) or {}
    params = {f"option.{k}": v for k, v in run.options.items()}
    params |= {f"env.{k}": v for k, v in run.environment.items()}
    params |= {
        "data_path": run.data_path,
        "data_fingerprint": run.fingerprint,
        "modality": run.modality,
        "task": run.task,
        "n_samples": run.n_samples,
        "classes": run.classes,
        "estimators": record.estimators,
        "aggregation": record.aggregation,
        "candidates": record.models(),
    }
    metrics = {
        "n_candidates": len(record.models()),
        "n_ranked": len(rows),
        "n_skipped": len(result.skipped) if result else 0,
        "n_negative_transfer": sum(1 for r in rows if r.get("negative_transfer")),
        "n_samples": run.n_samples,
        "pick.combined": pick.get("combined"),
        "pick.p_best": pick.get("p_best"),
        "confidence.rounds": conf.get("rounds"),
        "confidence.beats_runner_up": conf.get("beats_runner_up"),
        "confidence.separable": conf.get("separable"),
        "confidence.tied": len(conf.get("tied") or []),
    }
    tags = {
        "tlreg.kind": "run",
        "tlreg.run_id": run.id,
        "tlreg.user": run.user,
        "tlreg.host": run.host,
        "tlreg.status": run.status,
        "tlreg.pick": record.pick or "",
        "tlreg.why": result.reason if result else None,
        "tlreg.pick.negative_transfer": pick.get("negative_transfer"),
        "tlreg.pick.frozen_features_beaten_by": pick.get("frozen_features_beaten_by") or None,
        "tlreg.tied": conf.get("tied") or None,
        "tlreg.separable": conf.get("separable"),
        "mlflow.note.content": _why(record),
        "mlflow.user": run.user or None,
        "mlflow.source.name": run.command or "tlreg",
    }
    return Logged(run.id, _params(params), _metrics(metrics), tags=_tags(tags), failed=run.status == "failed")


def children(record: RunRecord) -> list[Logged]:
    """One per candidate of the run (ranked, skipped or failed) and one per baseline."""
    rows = {r["ref"]: r for r in (record.result.ranking if record.result else [])}
    detail = (record.result.detail if record.result else None) or {}
    tied = set((detail.get("confidence") or {}).get("tied") or [])
    out = []
    for c in record.candidates:
        row = rows.get(c.ref, {})
        interval = row.get("rank_interval") or (None, None)
        kind = "baseline" if is_baseline(c) else "candidate"
        params = {
            "ref": c.ref,
            "revision": c.revision,
            "kind": kind,
            "baseline_of": c.baseline_of,
            "params": c.params,
            "feature_dim": c.feature_dim,
            "from_cache": c.from_cache,
        }
        scores = {f"score.{metric_key(e)}": v for e, v in (row.get("scores") or {}).items()}
        metrics = scores | {
            "combined": row.get("combined"),
            "p_best": row.get("p_best"),
            "trial_val_acc": (row.get("trial") or {}).get("val_acc"),  # --trials
            "rank": row.get("rank"),
            "rank_low": interval[0],
            "rank_high": interval[1],
            "samples_per_s": c.samples_per_s,
            "seconds": c.seconds,
            "negative_transfer": row.get("negative_transfer"),
            "frozen_features_beaten": None
            if row.get("frozen_features_beaten_by") is None
            else len(row["frozen_features_beaten_by"]),
            "tied": (bool(row.get("tied")) or c.ref in tied) if row else None,
        }
        tags = {
            "tlreg.kind": kind,
            "tlreg.run_id": record.id,
            "tlreg.ref": c.ref,
            "tlreg.status": c.status,
            "tlreg.reason": c.reason or None,
            "tlreg.pick": c.ref == record.pick,
            "tlreg.negative_transfer": row.get("negative_transfer"),
            "tlreg.frozen_features_beaten_by": row.get("frozen_features_beaten_by") or None,
        }
        failed = c.status != "ok"
        out.append(
            Logged(run_name(c.ref), _params(params), _metrics(metrics), tags=_tags(tags), failed=failed)
        )
    return out


def finetune(record: RunRecord, outcome: FinetuneOutcome) -> Logged:
    """A fine-tune outcome as its own run: the budget as params, the accuracy curve as history."""
    params = {"ref": outcome.ref, "revision": outcome.revision, "mode": outcome.mode}
    params |= {"dataset": outcome.dataset, "data_fingerprint": outcome.fingerprint, "source": outcome.source}
    params |= {f"budget.{k}": v for k, v in outcome.budget.items()}
    extra = {k: v for k, v in outcome.metrics.items() if not isinstance(v, (list, dict))}
    metrics = {"val_accuracy": outcome.val_accuracy} | extra
    history = {
        name: [(step, float(v)) for step, v in enumerate(outcome.metrics[name], 1) if _number(v) is not None]
        for name in ("val_acc", "train_acc")
        if isinstance(outcome.metrics.get(name), list)
    }
    tags = {
        "tlreg.kind": "finetune",
        "tlreg.run_id": record.id,
        "tlreg.ref": outcome.ref,
        "tlreg.outcome_id": outcome.id,
        "tlreg.pick": outcome.ref == record.pick,
        "tlreg.output_dir": outcome.output_dir,
        "mlflow.user": outcome.user or None,
    }
    name = f"finetune {run_name(outcome.ref)} ({outcome.mode})"
    return Logged(name, _params(params), _metrics(metrics), history, _tags(tags))
