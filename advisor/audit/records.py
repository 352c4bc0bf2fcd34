"""Reading the audit trail: one run's whole record, and the list of runs.

The record itself is written by ``recommend`` into the tables of :mod:`tlreg.registry.runs`;
this module gathers a run's rows into one :class:`RunRecord` (what ``tlreg runs show`` prints,
and what diff, export, verify and the HTML report work from), with the fine-tunes that followed
it. Every entry point first closes the records of runs whose process died as failed
(:func:`tlreg.advisor.run_record.close_abandoned`), so nothing is shown as running that is not.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlreg.registry.errors import BadInputError

from ..result import baseline_label, html_table

if TYPE_CHECKING:  # the store loads when a record is read through it: `tlreg runs list` may not need it
    from tlreg.registry import Registry, RunStore
    from tlreg.registry.outcomes import FinetuneOutcome
    from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore
    from tlreg.registry.sqlite_read import SqliteReader

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``: an ISO date or time (UTC unless it gives a zone), or an age such as ``7d``, ``12h``."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(
            f"--since {text!r} is neither a date nor an age.",
            hint="Give e.g. 2026-11-01, 2026-11-01T14:00, 2026-11-01T14:00+01:00, 7d, 12h or 30m.",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def iso_utc(when: datetime | None) -> str | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def shown_rank(row: dict[str, Any]) -> str:
    """A recorded row's rank as the table shows it: ``2=`` when it shares it (a tie), as the CLI does."""
    return f"{row['rank']}=" if row.get("tied") else str(row["rank"])


def plan_word(plan: dict[str, Any]) -> str:
    """A transfer plan in one word: ``full``, ``linear``, ``partial-2``."""
    return plan["mode"] + (f"-{plan['unfreeze']}" if plan.get("unfreeze") else "")


def shown(when: datetime | None) -> str:
    """A time for people: ``2026-11-25 03:41:00 UTC``."""
    if when is None:
        return "-"
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def is_baseline(candidate: RunCandidate) -> bool:
    """Rows for random-init or raw-input baselines, including a baseline that was skipped."""
    return candidate.baseline_of is not None or candidate.ref.endswith(baseline_label(""))


@dataclass
class RunRecord:
    """Everything recorded about one run, gathered from its rows."""

    run: Run
    candidates: list[RunCandidate]
    scores: list[RunScore]
    result: RunResult | None
    finetunes: list[FinetuneOutcome] = field(default_factory=list)
    #: where each alias pointed when the run started, replayed from the registry's event log
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def pick(self) -> str | None:
        return self.result.best_ref if self.result else None

    @property
    def estimators(self) -> list[str]:
        """The estimators of the run, in its order (those of the result, else those scored)."""
        if self.result and self.result.detail.get("estimators"):
            return list(self.result.detail["estimators"])
        return list(dict.fromkeys(s.estimator for s in self.scores))

    @property
    def aggregation(self) -> str:
        """How the run combined its estimators; ``rank`` for a run recorded before it was an option
        (every run combined by ranks then)."""
        return (self.result.detail.get("aggregation") if self.result else None) or "rank"

    def models(self) -> list[str]:
        """The refs of the run's candidate models (pretrained, not baselines), skipped ones included."""
        return [c.ref for c in self.candidates if not is_baseline(c)]

    def score_table(self) -> dict[str, dict[str, float | None]]:
        """{label: {estimator: value}} over every scored row, baselines included.

        The history signal (not a score row: it is computed from past fine-tunes, after the
        estimators) is taken from the result's ranking rows.
        """
        table: dict[str, dict[str, float | None]] = {}
        for s in self.scores:
            table.setdefault(s.ref, {})[s.estimator] = _num(s.value)
        for row in self.ranking():
            for name, value in (row.get("scores") or {}).items():
                table.setdefault(row["ref"], {}).setdefault(name, _num(value))
        return table

    def ranking(self, *, baselines: bool = False) -> list[dict[str, Any]]:
        """The recorded ranking rows (best first), or the baseline rows."""
        rows = self.result.ranking if self.result else []
        return [r for r in rows if (r.get("baseline_of") is not None) == baselines]

    def verdicts(self) -> tuple[list[str], list[str]]:
        """What a reader must know before acting on the pick: (flags, ties), each a sentence.

        The run records them on the pick's ranking row (``negative_transfer``,
        ``frozen_features_beaten_by``, ``tied``) and in its confidence (``tied``, ``separable``)."""
        result = self.result
        row = next((r for r in self.ranking() if r["ref"] == self.pick), None)
        if result is None or row is None:
            return [], []
        conf = (result.detail or {}).get("confidence") or {}
        flags, ties = [], []
        if row.get("negative_transfer"):
            against = ", ".join(row.get("negative_transfer_vs") or []) or "its baselines"
            flags.append(
                "Flagged: negative transfer. Fine-tuning this model is not expected to beat training from "
                f"scratch (measured against {against})."
            )
        if row.get("frozen_features_beaten_by"):
            beaten = ", ".join(row["frozen_features_beaten_by"])
            flags.append(f"Flagged: its frozen features lose to {beaten}.")
        others = [t for t in conf.get("tied") or [] if t != self.pick]
        if others or row.get("tied"):
            rule = conf.get("tie_rule") or "the tie rule"
            ties.append(f"Tied for first with {', '.join(others) or 'another candidate'}: picked by {rule}.")
        if conf.get("separable") is False and conf.get("beats_runner_up") is not None:
            ties.append(
                f"Not separable from the runner-up: it ranks above it in {conf['beats_runner_up']:.0%} of "
                f"{conf.get('rounds', '?')} resamples."
            )
        return flags, ties

    def plans(self) -> dict[str, str]:
        """The recorded transfer plan of each planned candidate, as one word: ``full``, ``linear``,
        ``partial-2`` (the pick's by default; every candidate's with ``--plan all``)."""
        return {r["ref"]: plan_word(r["plan"]) for r in self.ranking() if r.get("plan")}

    def _repr_html_(self) -> str:
        """The run in a notebook: what, when, who, the pick and its verdicts, the ranking; plain HTML that
        the notebook styles (the page with charts is :func:`tlreg.advisor.audit.report.render_report`)."""
        run, result = self.run, self.result
        head = (
            f"<div><p><b>tlreg run {escape(run.id)}</b>: {escape(run.status)} · "
            f"{escape(shown(run.created_at))} · {escape(run.user)}@{escape(run.host)} · "
            f"{escape(run.data_path)} · {run.n_samples} samples</p>"
        )
        if result is None:
            return head + f"<p>No result: {escape(run.failure or run.status)}.</p></div>"
        flags, ties = self.verdicts()
        lines = "".join(f"<li>{escape(s)}</li>" for s in flags + ties)
        ests = self.estimators
        rows = [
            [shown_rank(r), r["ref"], *(r["scores"].get(e) for e in ests), r.get("combined"),
             None if r.get("p_best") is None else f"{r['p_best']:.0%}"]
            for r in self.ranking()
        ]  # fmt: skip
        return (
            head
            + f"<p><b>Pick: {escape(result.best_ref or 'none')}</b></p>"
            + (f"<ul>{lines}</ul>" if lines else "")
            + f"<p>{escape(result.reason)}</p>"
            + html_table(["rank", "model", *ests, "combined", "P(best)"], rows)
            + "</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``tlreg runs show --json`` document (and ``tlreg runs export --format json``)."""
        run = self.run
        by_ref: dict[str, list[dict[str, Any]]] = {}
        for s in self.scores:
            by_ref.setdefault(s.ref, []).append(
                {"estimator": s.estimator, "value": _num(s.value), "seconds": s.seconds, "error": s.error}
            )
        result = self.result
        return {
            "id": run.id,
            "status": run.status,
            "failure": run.failure,
            "created_at": iso_utc(run.created_at),
            "finished_at": iso_utc(run.finished_at),
            "user": run.user,
            "host": run.host,
            "pid": run.pid,
            "command": run.command,
            "options": run.options,
            "environment": run.environment,
            "data": {
                "path": run.data_path,
                "fingerprint": run.fingerprint,
                "modality": run.modality,
                "task": run.task,
                "samples": run.n_samples,
                "classes": run.classes,
                "sample_ids": run.sample_ids,
            },
            "candidates": [
                {
                    **c.model_dump(exclude={"id", "run_id"}),
                    "seconds": _num(c.seconds),
                    "samples_per_s": _num(c.samples_per_s),
                    "scores": by_ref.get(c.ref, []),
                }
                for c in self.candidates
            ],
            "result": None
            if result is None
            else {
                "pick": result.best_ref,
                "reason": result.reason,
                "ranking": self.ranking(),
                "baselines": self.ranking(baselines=True),
                "warnings": result.warnings,
                "skipped": result.skipped,
                **result.detail,
            },
            "finetunes": [
                {**o.model_dump(exclude={"created_at"}), "created_at": iso_utc(o.created_at)}
                for o in self.finetunes
            ],
            "aliases": self.aliases,
        }


def _store(registry: Registry | None) -> tuple[Registry, RunStore]:
    from tlreg.registry import Registry, RunStore

    from ..run_record import close_abandoned

    registry = registry or Registry()
    close_abandoned(registry)
    return registry, RunStore(registry.engine)


def _aliases(at: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        n: {"ref": a["ref"], "revision": a["revision"], "since": iso_utc(a["since"]), "by": a["by"]}
        for n, a in at.items()
    }


def load_run(run_id: str, *, registry: Registry | None = None) -> RunRecord:
    """The whole record of run ``run_id`` (or of the one run whose id starts with it)."""
    from tlreg.registry import OutcomeStore

    registry, runs = _store(registry)
    run, candidates, scores, result = runs.get(run_id)
    finetunes = OutcomeStore(registry.engine).outcomes(run_id=run.id)
    aliases = {
        a.name: {"ref": a.ref, "revision": a.revision, "since": a.set_at, "by": a.set_by}
        for a in registry.aliases(at=run.created_at)
    }
    return RunRecord(run, candidates, scores, result, finetunes, _aliases(aliases))


def read_run(reader: SqliteReader, run_id: str) -> RunRecord | None:
    """:func:`load_run` from the registry's SQLite file without the ORM (the CLI's start-up), or None
    where only the store can answer (see :mod:`tlreg.registry.sqlite_read`)."""
    found = reader.run(run_id)
    if found is None:
        return None
    run, candidates, scores, result, finetunes, aliases = found
    return RunRecord(run, candidates, scores, result, finetunes, _aliases(aliases))


@dataclass
class RunSummary:
    """One line of ``tlreg runs list``."""

    id: str
    created_at: str | None
    user: str
    host: str
    data_path: str
    samples: int
    pick: str | None
    status: str
    failure: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def _repr_html_(self) -> str:
        return RunSummaries([self])._repr_html_()


class RunSummaries(list[RunSummary]):
    """What :func:`list_runs` returns: a list, shown as one table in a notebook."""

    def _repr_html_(self) -> str:
        head = ["run", "when (UTC)", "user", "host", "data", "samples", "pick", "status"]
        rows = [
            [s.id, (s.created_at or "")[:19].replace("T", " "), s.user, s.host, s.data_path, s.samples,
             s.pick, s.status + (f" ({s.failure})" if s.failure else "")]
            for s in self
        ]  # fmt: skip
        return html_table(head, rows)


def list_runs(
    *, since: datetime | str | None = None, limit: int | None = None, registry: Registry | None = None
) -> RunSummaries:
    """Runs, newest first (the Python twin of ``tlreg runs list``); ``since`` as :func:`parse_since`."""
    _, runs = _store(registry)
    when = parse_since(since) if isinstance(since, str) else since
    return _summaries(runs.summaries(since=when, limit=limit))


def read_runs(
    reader: SqliteReader, *, since: datetime | str | None = None, limit: int | None = None
) -> RunSummaries | None:
    """:func:`list_runs` from the registry's SQLite file without the ORM (the CLI's start-up), or None
    where only the store can answer (see :mod:`tlreg.registry.sqlite_read`)."""
    when = parse_since(since) if isinstance(since, str) else since
    found = reader.run_summaries(since=when, limit=limit)
    return None if found is None else _summaries(found)


def _summaries(found: list[tuple[Run, str | None]]) -> RunSummaries:
    return RunSummaries(
        RunSummary(
            run.id,
            iso_utc(run.created_at),
            run.user,
            run.host,
            run.data_path,
            run.n_samples,
            pick,
            run.status,
            run.failure,
        )
        for run, pick in found
    )


def write_atomic(path: str | Path, text: str, *, option: str = "--out") -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader (or a crash) never sees half a file."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{option} {path} is a folder.", hint="Give a file name.")
    folder = path.parent
    if not folder.is_dir():
        raise BadInputError(f"Cannot write {path}: {folder} does not exist.", hint="Create it first.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
