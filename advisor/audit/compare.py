"""The audit trail's questions: what changed between two runs, and the record in other formats.

``diff_runs`` answers "why did we pick something else this time?" (the data, the candidates,
their revisions, every score, the pick); ``export_run`` writes a run as JSON (the full record),
CSV (one row per candidate, for a spreadsheet) or Markdown (for a review or a ticket);
``export_mlflow`` (:mod:`tlreg.advisor.audit.mlflow_export`) logs it to an MLflow tracking server and
``verify_run`` (:mod:`tlreg.advisor.audit.verify`: "would we pick it again?") recomputes it; both are
re-exported here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError

from .. import defaults
from .mlflow_export import export_mlflow
from .records import RunRecord, load_run, shown, shown_rank, write_atomic
from .verify import VerifyResult, verify_run

FORMATS = defaults.EXPORT_FORMATS
#: sample ids listed by name in a diff; beyond this only counted
MAX_IDS = 20

__all__ = ["FORMATS", "RunDiff", "VerifyResult", "diff_runs", "export_mlflow", "export_run", "verify_run"]


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"a": a.get(k), "b": b.get(k)} for k in sorted({*a, *b}) if a.get(k) != b.get(k)}


@dataclass
class RunDiff:
    """What differs between run ``a`` and run ``b`` (deltas are b − a)."""

    a: str
    b: str
    data: dict[str, Any]
    options: dict[str, dict[str, Any]]
    environment: dict[str, dict[str, Any]]
    added: list[str]
    removed: list[str]
    revisions: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    ranks: list[dict[str, Any]]
    pick: dict[str, Any]
    #: transfer plans that differ: {ref, a, b}, each "full", "partial-2", "linear" or None
    plans: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: how the runs combined their scores, where that differs: {"estimators"|"aggregation": {a, b}},
    #: as each run recorded it - two runs with the same options differ here when tlreg's defaults did
    combination: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Did the decision's inputs or outputs change (data, candidates, revisions, scores, pick)?"""
        return bool(
            not self.data["fingerprint"]["same"]
            or self.added
            or self.removed
            or self.revisions
            or any(s["delta"] not in (None, 0.0) or (s["a"] is None) != (s["b"] is None) for s in self.scores)
            or self.pick["changed"]
            or bool(self.plans)
            or bool(self.combination)
        )

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "changed": self.changed}


def diff_runs(a: str, b: str, *, registry: Registry | None = None) -> RunDiff:
    """Compare two runs (ids or unique prefixes): the Python twin of ``tlreg runs diff A B``."""
    registry = registry or Registry()
    ra, rb = load_run(a, registry=registry), load_run(b, registry=registry)
    run_a, run_b = ra.run, rb.run
    ids_a, ids_b = set(run_a.sample_ids), set(run_b.sample_ids)
    added_ids, removed_ids = sorted(ids_b - ids_a), sorted(ids_a - ids_b)
    data = {
        "path": {"a": run_a.data_path, "b": run_b.data_path, "same": run_a.data_path == run_b.data_path},
        "fingerprint": {
            "a": run_a.fingerprint,
            "b": run_b.fingerprint,
            "same": run_a.fingerprint == run_b.fingerprint,
        },
        "samples": {"a": run_a.n_samples, "b": run_b.n_samples},
        "classes": {"a": run_a.classes, "b": run_b.classes, "same": run_a.classes == run_b.classes},
        "sample_ids": {
            "added": added_ids[:MAX_IDS],
            "removed": removed_ids[:MAX_IDS],
            "n_added": len(added_ids),
            "n_removed": len(removed_ids),
        },
    }
    models_a, models_b = ra.models(), rb.models()
    rev_a = {c.ref: c.revision for c in ra.candidates}
    rev_b = {c.ref: c.revision for c in rb.candidates}
    revisions = [
        {"ref": ref, "a": rev_a[ref], "b": rev_b[ref]}
        for ref in sorted(set(rev_a) & set(rev_b))
        if rev_a[ref] != rev_b[ref] and not ref.startswith("raw ")
    ]
    table_a, table_b = ra.score_table(), rb.score_table()
    scores = []
    for ref in [r for r in table_a if r in table_b]:
        for est in sorted({*table_a[ref], *table_b[ref]}):
            va, vb = table_a[ref].get(est), table_b[ref].get(est)
            scores.append({"ref": ref, "estimator": est, "a": va, "b": vb, "delta": _delta(va, vb)})
    rank_a = {r["ref"]: r["rank"] for r in ra.ranking()}
    rank_b = {r["ref"]: r["rank"] for r in rb.ranking()}
    ranks = [
        {"ref": ref, "a": rank_a.get(ref), "b": rank_b.get(ref)} for ref in dict.fromkeys([*rank_a, *rank_b])
    ]
    plan_a, plan_b = ra.plans(), rb.plans()
    plans = [
        {"ref": ref, "a": plan_a.get(ref), "b": plan_b.get(ref)}
        for ref in dict.fromkeys([*plan_a, *plan_b])
        if plan_a.get(ref) != plan_b.get(ref)
    ]
    notes = [f"run {r.id} is {r.run.status}: it has no result" for r in (ra, rb) if r.result is None]
    combination = _changed(
        {"estimators": ra.estimators, "aggregation": ra.aggregation},
        {"estimators": rb.estimators, "aggregation": rb.aggregation},
    )
    return RunDiff(
        a=run_a.id,
        b=run_b.id,
        data=data,
        options=_changed(run_a.options, run_b.options),
        environment=_changed(run_a.environment, run_b.environment),
        added=[m for m in models_b if m not in models_a],
        removed=[m for m in models_a if m not in models_b],
        revisions=revisions,
        scores=scores,
        ranks=ranks,
        pick={"a": ra.pick, "b": rb.pick, "changed": ra.pick != rb.pick},
        plans=plans,
        notes=notes,
        combination=combination,
    )


# -- export -------------------------------------------------------------------------------------


_CSV_CANDIDATE = ("ref", "revision", "baseline_of", "status", "reason", "params", "feature_dim")
_CSV_COST = ("samples_per_s", "seconds", "from_cache", "cache_key")
_CSV_RANKING = ("rank", "combined", "p_best", "negative_transfer")


def _csv(record: RunRecord) -> str:
    """One row per candidate (baselines and skipped ones included); one column per estimator."""
    estimators = list(dict.fromkeys([*record.estimators, *(s.estimator for s in record.scores)]))
    table = record.score_table()
    ranked = {r["ref"]: r for r in [*record.ranking(), *record.ranking(baselines=True)]}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    scores = [f"score_{e}" for e in estimators]
    head = [
        "run_id",
        "data_fingerprint",
        *_CSV_CANDIDATE,
        *_CSV_RANKING,
        "rank_low",
        "rank_high",
        "trial_val_acc",
    ]
    writer.writerow([*head, "picked", *_CSV_COST, *scores])
    for c in record.candidates:
        row = ranked.get(c.ref, {})
        low, high = row.get("rank_interval") or (None, None)
        ranking = [row.get(k) for k in _CSV_RANKING]
        ranking[0] = ranking[0] or None  # baselines carry rank 0: they are not ranked
        writer.writerow(
            [record.id, record.run.fingerprint, *(getattr(c, k) for k in _CSV_CANDIDATE), *ranking, low, high]
            + [(row.get("trial") or {}).get("val_acc")]
            + [c.ref == record.pick, *(getattr(c, k) for k in _CSV_COST)]
            + [table.get(c.ref, {}).get(e) for e in estimators]
        )
    return out.getvalue()


#: Markdown characters that would start a link, a code span or a table cell, or escape one of them
_MD_SPECIAL = re.compile(r"([\\`|\[\]])")


def _md_text(value: Any) -> str:
    """Recorded text (class names, paths, refs, reasons) made inert in Markdown.

    HTML-escaped as the HTML report does, since most Markdown viewers render inline HTML (a class
    named ``<img src=x onerror=...>`` would run); backslash, backtick, pipe and brackets escaped, so
    a value cannot end a table cell, open a code span or make a link; newlines become spaces, so it
    cannot end a table row or a list item. Emphasis characters are left alone: refs and paths hold
    underscores, and at worst they change the look, not the structure.
    """
    text = " ".join(str(value).splitlines())
    return _MD_SPECIAL.sub(r"\\\1", escape(text, quote=False))


def _md_code(value: Any) -> str:
    """A code span showing ``value`` exactly (a path, a command). Nothing inside a code span is
    parsed as HTML or Markdown, so only its end must be protected: the fence is one backtick longer
    than the longest run of backticks inside, as CommonMark provides."""
    text = " ".join(str(value).splitlines())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_cell(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        value = f"{value:.{digits}g}"
    return _md_text(value)


def _md_table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md_text(h) for h in head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]


_MD_CANDIDATE = ("ref", "revision", "status", "cache_key", "seconds", "samples_per_s", "from_cache", "reason")


def _markdown(record: RunRecord) -> str:
    run, result = record.run, record.result
    env = run.environment
    lines = [
        f"# tlreg run {_md_text(run.id)}",
        "",
        f"- **Status:** {_md_text(run.status)}" + (f" ({_md_text(run.failure)})" if run.failure else ""),
        f"- **When:** {shown(run.created_at)} to {shown(run.finished_at)}",
        f"- **Who:** {_md_text(run.user)} on {_md_text(run.host)} (pid {run.pid})",
        f"- **Command:** {_md_code(run.command)}",
        f"- **Data:** {_md_code(run.data_path)}: {run.n_samples} {_md_text(run.modality)} samples, "
        + _md_text(run.task)
        + (f", {len(run.classes)} classes ({', '.join(map(_md_text, run.classes))})" if run.classes else ""),
        f"- **Data fingerprint:** {_md_code(run.fingerprint)}",
        "- **Environment:** " + ", ".join(f"{_md_text(k)} {_md_text(v)}" for k, v in env.items()),
        "- **Options:** "
        + ", ".join(
            f"{_md_text(k)}={_md_text(v)}" for k, v in run.options.items() if v not in (None, [], False)
        ),
    ]
    if result:
        lines += [
            "",
            f"**Pick: {_md_text(result.best_ref)}.** {_md_text(result.reason)}",
            "",
            "## Ranking",
            "",
        ]
        ests = record.estimators
        tried = any(r.get("trial") for r in record.ranking())  # --trials: their validation accuracy
        lines += _md_table(
            [
                "rank",
                "model",
                "revision",
                *ests,
                "combined",
                *(["trial"] if tried else []),
                "P(best)",
                "rank interval",
                "negative transfer",
            ],
            [
                [
                    shown_rank(r),
                    r["ref"],
                    (r.get("revision") or "")[:12],
                    *(r["scores"].get(e) for e in ests),
                    r.get("combined"),
                    *([(r.get("trial") or {}).get("val_acc")] if tried else []),
                    r.get("p_best"),
                    "-" if not r.get("rank_interval") else "{}–{}".format(*r["rank_interval"]),
                    {True: "yes", False: "no"}.get(r.get("negative_transfer")),
                ]
                for r in record.ranking()
            ],
        )
        if base := record.ranking(baselines=True):
            lines += ["", "## Baselines", ""]
            lines += _md_table(
                ["baseline", *ests], [[r["ref"], *(r["scores"].get(e) for e in ests)] for r in base]
            )
    lines += ["", "## Candidates", ""]
    lines += _md_table(
        [k.replace("_per_s", "/s").replace("_", " ") for k in _MD_CANDIDATE],
        [
            [(c.cache_key or "")[:16] if k == "cache_key" else getattr(c, k) for k in _MD_CANDIDATE]
            for c in record.candidates
        ],
    )
    lines += ["", "## Scores", ""]
    lines += _md_table(
        ["model", "estimator", "value", "seconds", "error"],
        [[s.ref, s.estimator, s.value, s.seconds, s.error] for s in record.scores],
    )
    if result and result.warnings:
        lines += ["", "## Warnings", "", *(f"- {_md_cell(w)}" for w in result.warnings)]
    if result and result.skipped:
        lines += [
            "",
            "## Skipped",
            "",
            *(f"- {_md_cell(s['ref'])}: {_md_cell(s['reason'])}" for s in result.skipped),
        ]
    if record.finetunes:
        lines += ["", "## Fine-tunes", ""]
        lines += _md_table(
            ["when", "model", "mode", "val accuracy", "by"],
            [[shown(o.created_at), o.ref, o.mode, o.val_accuracy, o.user] for o in record.finetunes],
        )
    return "\n".join(lines) + "\n"


def export_run(
    run_id: str, fmt: str = "json", *, out: str | Path | None = None, registry: Registry | None = None
) -> str:
    """Run ``run_id`` as a JSON document, a CSV table or a Markdown page (``tlreg runs export``).

    With ``out``, the text is also written to that file, atomically.
    """
    if fmt not in FORMATS:
        raise BadInputError(f"Unknown export format {fmt!r}.", hint=f"Use one of: {', '.join(FORMATS)}.")
    record = load_run(run_id, registry=registry)
    if fmt == "json":
        text = json.dumps(record.to_dict(), indent=2, default=str) + "\n"
    else:
        text = _csv(record) if fmt == "csv" else _markdown(record)
    if out is not None:
        write_atomic(out, text)
    return text
