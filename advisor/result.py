"""What ``recommend`` returns: typed rows, the pick and its reason, and the same document as ``--json``;
and how its numbers read (counts, sizes), the same in every command."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any


def human_count(n: int | None) -> str:
    """A count as people read it: 4.7M, 12.3k, 950; "-" for unknown."""
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def human_bytes(n: int | None) -> str:
    """A size in bytes as people read it, in decimal units as ``--max-size 2e9`` takes them: 3.2 GB,
    12.3 kB, 950 B; "-" for unknown."""
    if n is None:
        return "-"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def fmt_number(value: float | None) -> str:
    """A score or measurement as every tlreg table, chart and export shows it: 4 significant
    digits (8.951, -0.312, 0.86, 410), 3 in exponent form when very large or small; "-" for none."""
    if value is None or not math.isfinite(value):
        return "-"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def plain(value: Any) -> str:
    """A value as a person would type it, never a Python repr or JSON: ``true``, ``10``, ``a, b``,
    ``k=v``; an unset value is empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set)):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def html_table(head: list[str], rows: list[list[Any]]) -> str:
    """A plain HTML table for notebooks: None as "-", every cell escaped."""
    cells = "".join(
        "<tr>" + "".join(f"<td>{escape('-' if v is None else plain(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    heads = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{cells}</tbody></table>"


def baseline_label(ref: str) -> str:
    """The name of ``ref``'s random-init baseline in rankings and run records."""
    return f"{ref} (random init)"


def _clean(value: Any) -> Any:
    """JSON has no NaN: unscored values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@dataclass
class RankingRow:
    """One candidate (or one baseline) and everything measured about it."""

    rank: int
    ref: str
    revision: str | None
    scores: dict[str, float]
    combined: float
    params: int | None
    feature_dim: int | None
    samples_per_s: float | None
    seconds: float
    from_cache: bool
    baseline_of: str | None = None
    negative_transfer: bool | None = None
    negative_transfer_vs: list[str] | None = None
    #: baselines (random init, raw inputs) whose features beat this model's frozen features
    frozen_features_beaten_by: list[str] | None = None
    p_best: float | None = None
    rank_interval: tuple[int, int] | None = None
    #: shares its rank (the combined score) with another candidate
    tied: bool = False
    #: how to fine-tune it (:class:`tlreg.advisor.plan.TransferPlan` as a dict): the pick's, or every
    #: candidate's with ``plan="all"``
    plan: dict[str, Any] | None = None
    #: its linear probe against the number of labels, extrapolated (:mod:`tlreg.advisor.learning_curve`)
    learning_curve: dict[str, Any] | None = None
    #: its short fine-tune on the sample (``--trials``, :mod:`tlreg.advisor.trials`): validation accuracy,
    #: items right, validation and training items, seconds
    trial: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass
class RecommendResult:
    """The answer to "which model should we start from, for this data, and why?"."""

    run_id: str
    data: dict[str, Any]
    estimators: list[str]
    ranking: list[RankingRow]
    baselines: list[RankingRow] = field(default_factory=list)
    #: how the estimators' scores were combined: ``rank`` or ``zscore`` (``advisor/rank.py``)
    aggregation: str = ""
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    confidence: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    #: what ``--budget`` did: successive halving's stages and who each dropped (:mod:`.halving`)
    budget: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> RankingRow | None:
        return self.ranking[0] if self.ranking else None

    def _repr_html_(self) -> str:
        """The ranking as a table in a notebook (Jupyter calls this); every text escaped."""
        head = ["rank", "model", *self.estimators, "combined", "P(best)", "vs baselines", "params"]
        rows = []
        for r in self.ranking:
            verdict = "negative transfer" if r.negative_transfer else ""
            if r.frozen_features_beaten_by:
                verdict = verdict or "frozen < " + ", ".join(r.frozen_features_beaten_by)
            p_best = None if r.p_best is None else f"{r.p_best:.0%}"
            scores = [fmt_number(r.scores.get(e)) for e in self.estimators]
            rank = f"{r.rank}=" if r.tied else r.rank
            rows.append(
                [rank, r.ref, *scores, fmt_number(r.combined), p_best, verdict, human_count(r.params)]
            )
        best = self.best.ref if self.best else "none"
        return (
            f"<div><p><b>Pick: {escape(best)}</b> (run <code>{escape(self.run_id)}</code>)</p>"
            f"{html_table(head, rows)}<p>{escape(self.reason)}</p>"
            + "".join(f"<p>warning: {escape(w)}</p>" for w in self.warnings)
            + "</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``tlreg recommend --json`` document."""
        return {
            "run_id": self.run_id,
            "best": self.best.to_dict() if self.best else None,
            "reason": self.reason,
            "ranking": [r.to_dict() for r in self.ranking],
            "baselines": [r.to_dict() for r in self.baselines],
            "estimators": self.estimators,
            "aggregation": self.aggregation,
            "data": _clean(self.data),
            "confidence": _clean(self.confidence),
            "history": _clean(self.history),
            "budget": _clean(self.budget),
            "warnings": self.warnings,
            "skipped": self.skipped,
        }
