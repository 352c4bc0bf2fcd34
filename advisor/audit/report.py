"""One run as one self-contained HTML page: the ranking, the charts and the audit details.

The page is meant to be attached to a ticket or archived with a model, and opened offline months
later, so everything is inline (CSS and SVG; there is no script) and a Content-Security-Policy
forbids loading anything from elsewhere. Charts come from :mod:`tlreg.advisor.audit.svg`. Nothing is
invented: a run recorded without resampling confidence says so instead of drawing intervals, and
a model read from the feature cache shows the throughput measured by the run that embedded it
(named), or none.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any

from tlreg.registry import Registry, RunStore

from ..result import baseline_label, plain
from .records import RunRecord, is_baseline, load_run, plan_word, shown, shown_rank, write_atomic
from .scatter import Point, scatter
from .style import CSP, CSS
from .svg import Bar, Interval, bar_chart, curve_chart, fmt, interval_chart, short

_YES_NO = {True: "yes", False: "no"}


_BREAK_AFTER = re.compile(r"([/:.@_])")


def breakable(text: str) -> str:
    """Escaped ``text`` that a narrow column may break after ``/ : . @ _`` (``<wbr>``: nothing is
    added to what a reader copies), so a ref wraps at its separators instead of widening the page."""
    return _BREAK_AFTER.sub(r"\1<wbr>", escape(text))


def _cell(value: Any, cls: str = "") -> str:
    text = fmt(value) if isinstance(value, float) else ("-" if value is None else str(value))
    html = breakable(text) if cls == "long" else escape(text)
    return f'<td class="{cls}">{html}</td>' if cls else f"<td>{html}</td>"


def _table(
    head: list[str],
    rows: list[list[Any]],
    *,
    num: set[int] = frozenset(),
    long: set[int] = frozenset(),
    row_cls: list[str] = (),
) -> str:
    """A table; columns in ``num`` are right-aligned, those in ``long`` (hashes, paths) may break anywhere."""
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = row_cls[i] if i < len(row_cls) else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [_cell(v, "num" if j in num else "long" if j in long else "") for j, v in enumerate(row)]
        out.append("</tr>")
    return "".join(['<div class="scroll">', *out, "</tbody></table></div>"])


def _kv(pairs: list[tuple[str, Any]]) -> str:
    return _table(["", ""], [[k, v] for k, v in pairs], long={1}).replace(
        "<thead><tr><th></th><th></th></tr></thead>", ""
    )


def _ranking(record: RunRecord) -> str:
    ests = record.estimators
    tried = any(r.get("trial") for r in record.ranking())  # --trials: their validation accuracy
    rows, classes = [], []
    for r in record.ranking():
        interval = r.get("rank_interval")
        nt = r.get("negative_transfer")
        p_best = None if r.get("p_best") is None else f"{r['p_best']:.0%}"
        spread = "-" if not interval else f"{interval[0]}–{interval[1]}"
        rev = (r.get("revision") or "unpinned")[:12]
        scores = [r["scores"].get(e) for e in ests]
        trial = [None if not r.get("trial") else f"{r['trial']['val_acc']:.3f}"] if tried else []
        rows.append(
            [
                shown_rank(r),
                r["ref"],
                rev,
                *scores,
                r.get("combined"),
                *trial,
                p_best,
                spread,
                _YES_NO.get(nt, "-"),
            ]
        )
        classes.append("pick" if r["ref"] == record.pick else "")
    head = ["rank", "model", "revision", *ests, "combined", *(["trial"] if tried else [])]
    head += ["est. P(best)" if tried else "P(best)", "rank 5–95%", "negative transfer"]
    html = _table(head, rows, num={0, *range(3, 4 + len(ests) + tried)}, long={1}, row_cls=classes)
    if base := record.ranking(baselines=True):
        html += "<p class='muted'>Baselines: the same architectures randomly initialised, and raw inputs.</p>"
        rows = [[b["ref"], *(b["scores"].get(e) for e in ests)] for b in base]
        html += _table(["baseline", *ests], rows, num=set(range(1, 1 + len(ests))), long={0})
    return html


def _score_charts(record: RunRecord) -> str:
    """One bar chart per estimator: each model (best first) with its random-init baseline under it."""
    table = record.score_table()
    base = [b["ref"] for b in record.ranking(baselines=True)]
    charts = []
    for i, est in enumerate(record.estimators):
        bars = []
        for row in record.ranking():
            ref = row["ref"]
            bars.append(Bar(ref, table.get(ref, {}).get(est), "pick" if ref == record.pick else "model"))
            own = baseline_label(ref)
            if own in base and table.get(own, {}).get(est) is not None:
                bars.append(Bar(own, table[own][est], "baseline", "↳ random init"))
        bars += [
            Bar(ref, table[ref][est], "baseline")
            for ref in base
            if ref not in {b.label for b in bars} and table.get(ref, {}).get(est) is not None
        ]
        charts.append(bar_chart(f"scores-{i}", f"{est} (higher is better)", bars))
    combined = [
        Bar(r["ref"], r.get("combined"), "pick" if r["ref"] == record.pick else "model")
        for r in record.ranking()
    ]
    if record.aggregation == "rank":  # mean ranks mapped to [0, 1]
        charts.append(bar_chart("scores-combined", "combined rank score (0–1)", combined, domain=(0.0, 1.0)))
    else:  # mean z-scores: unbounded, negative below the pool's mean
        charts.append(bar_chart("scores-combined", "combined z-score (0 = the candidates' mean)", combined))
    return f'<div class="grid">{"".join(charts)}</div>'


def _confidence(record: RunRecord) -> str:
    rows = [r for r in record.ranking() if r.get("rank_interval")]
    conf = (record.result.detail.get("confidence") or {}) if record.result else {}
    if not rows:
        return (
            '<p class="note" id="no-intervals">This run recorded no resampling confidence (resampling was '
            "off, there was a single candidate, or the run predates it): no intervals are shown.</p>"
        )
    items = [
        Interval(r["ref"], r["rank"], *r["rank_interval"], r.get("p_best"), r["ref"] == record.pick)
        for r in rows
    ]
    n = max(len(record.ranking()), max(i.high for i in items))
    text = f"<p class='muted'>Ranks over {conf.get('rounds', '?')} subsamples of the data sample"
    if conf.get("beats_runner_up") is not None:
        sep = "separable" if conf.get("separable") else "not separable"
        text += f"; the pick ranks above the runner-up in {conf['beats_runner_up']:.0%} of them ({sep})"
    chart = interval_chart("rank-intervals", "rank with its 5–95% interval (1 = best)", items, n)
    text += (
        ". P(best) is the share of them in which a model ranks first: how stable the ranking is on "
        "this sample, not the chance that the model fine-tunes best"
    )
    if conf.get("decided_by") == "trials":
        text += (
            ". These are the estimators' ranks: the pick was decided by short fine-tunes of their top "
            f"{(conf.get('trials') or {}).get('k', '?')} (see the Why and the ranking's trial column)"
        )
    return text + ".</p>" + chart


def _tradeoffs(record: RunRecord, throughput: dict[str, tuple[float, str]]) -> str:
    by_ref = {c.ref: c for c in record.candidates}
    ranked = [r for r in record.ranking() if r.get("combined") is not None]
    size = [
        Point(r["ref"], r["params"], r["combined"], r["ref"] == record.pick)
        for r in ranked
        if r.get("params")
    ]
    speed, notes = [], []
    for r in ranked:
        cand = by_ref.get(r["ref"])
        value = r.get("samples_per_s") or (cand.samples_per_s if cand else None)
        if not value and cand and cand.cache_key in throughput:
            value, other = throughput[cand.cache_key]
            notes.append(f"{r['ref']}: read from the cache; {value:.1f} samples/s as measured by run {other}")
        if value:
            speed.append(Point(r["ref"], value, r["combined"], r["ref"] == record.pick))
        else:
            notes.append(f"{r['ref']}: read from the cache; no run measured its throughput")
    out = []
    for points, cid, x_label, maximize, what in (
        (size, "pareto-params", "parameters", False, "parameter count"),
        (speed, "pareto-throughput", "samples/s", True, "throughput"),
    ):
        if points:
            title = f"combined score vs {x_label} (Pareto front ringed)"
            out.append(scatter(cid, title, points, x_label=x_label, y_label="combined", maximize_x=maximize))
        else:
            out.append(f'<p class="note">No candidate of this run has a known {escape(what)}.</p>')
    extra = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f'<div class="grid">{"".join(out)}</div>' + (f"<ul class='muted'>{extra}</ul>" if extra else "")


def _audit(record: RunRecord) -> str:
    run, result = record.run, record.result
    parts = [
        "<h2>Audit</h2>",
        _kv(
            [
                ("run id", run.id),
                ("status", run.status + (f": {run.failure}" if run.failure else "")),
                ("started / finished", f"{shown(run.created_at)} / {shown(run.finished_at)}"),
                ("who", f"{run.user} on {run.host} (pid {run.pid})"),
                ("command", run.command),
                ("data", f"{run.data_path}: {run.n_samples} {run.modality} samples, {run.task}"),
                ("data fingerprint", run.fingerprint),
                ("classes", ", ".join(run.classes or []) or "-"),
            ]
        ),
        "<h3>Environment</h3>",
        _kv(sorted(run.environment.items())),
        "<h3>Options</h3>",
        _kv([(k, plain(v) if v is not None else "-") for k, v in sorted(run.options.items())]),
        "<h3>Candidates</h3>",
        _table(
            ["model", "revision", "status", "feature cache key", "seconds", "samples/s", "cached"],
            [
                [
                    c.ref,
                    c.revision,
                    c.status,
                    (c.cache_key or "-")[:16],
                    c.seconds,
                    c.samples_per_s,
                    _YES_NO[bool(c.from_cache)],
                ]
                for c in record.candidates
                if not is_baseline(c) or c.status != "ok"
            ],
            num={4, 5},
            long={0, 1, 3},
        ),
    ]
    if result and result.warnings:
        parts += [
            "<h3>Warnings</h3><ul>",
            *(f"<li class='warn'>{escape(w)}</li>" for w in result.warnings),
            "</ul>",
        ]
    if result and result.skipped:
        parts += [
            "<h3>Skipped</h3>",
            _table(["model", "why"], [[s["ref"], s["reason"]] for s in result.skipped], long={0}),
        ]
    dropped = [[c.ref, c.reason] for c in record.candidates if c.status == "dropped"]
    if dropped:
        parts += [
            "<h3>Dropped early (successive halving, --budget auto)</h3>",
            _table(["model", "why"], dropped, long={0}),
        ]
    if record.finetunes:
        rows = [[shown(o.created_at), o.ref, o.mode, o.val_accuracy, o.user] for o in record.finetunes]
        parts += [
            "<h3>Fine-tunes since</h3>",
            _table(["when", "model", "mode", "val accuracy", "by"], rows, num={3}, long={1}),
        ]
    ids = "".join(f"<li>{escape(i)}</li>" for i in run.sample_ids)
    summary = f"<summary>The {len(run.sample_ids)} sampled items</summary>"
    parts.append(f"<details>{summary}<ul class='mono'>{ids}</ul></details>")
    return "".join(parts)


def _pick_box(record: RunRecord) -> str:
    result = record.result
    flags, ties = record.verdicts()
    cls = "pick-box" + (" flagged" if flags else " tied" if ties else "")
    items = "".join(f"<li{' class=flag' if s in flags else ''}>{escape(s)}</li>" for s in flags + ties)
    return (
        f'<div class="{cls}" id="pick"><b>Pick: {escape(result.best_ref or "none")}</b>'
        + (f"<ul>{items}</ul>" if items else "")
        + f'<p class="why">{escape(result.reason)}</p></div>'
    )


def _transfer(record: RunRecord) -> str:
    """How to fine-tune the planned candidates, and their learning curves (``recommend --plan``)."""
    planned = [r for r in record.ranking() if r.get("plan") or r.get("learning_curve")]
    if not planned:
        return ""
    html = "<h2>How to transfer it</h2>"
    for i, r in enumerate(planned):
        plan, curve = r.get("plan"), r.get("learning_curve") or {}
        if plan:
            html += (
                f"<p><b>{escape(r['ref'])}</b>: <b>{escape(plan_word(plan))}</b> — {escape(plan['why'])}.</p>"
            )
        if curve.get("params"):
            html += curve_chart(
                f"curve-{i}",
                f"Linear-probe {curve['metric']} by labels: {short(r['ref'])}",
                curve,
                metric=curve["metric"],
            )
        elif curve.get("note"):
            html += f"<p class='muted'>No learning curve: {escape(curve['note'])}.</p>"
    return html


def report_body(record: RunRecord, *, throughput: dict[str, tuple[float, str]] | None = None) -> str:
    """The report's content under its title line: the pick and why, the ranking, the charts, the plan
    and the audit details (``tlreg ui`` shows it inside its own page)."""
    run, result = record.run, record.result
    if result is None:
        body = (
            f'<p class="note">This run has no result ({escape(run.status)}: {escape(run.failure or "")}).</p>'
        )
        return body + _audit(record)
    flagged = [r["ref"] for r in record.ranking() if r.get("negative_transfer") and r["ref"] != record.pick]
    return (
        _pick_box(record)
        + (
            f"<p class='flag'>Negative transfer also flagged for: {escape(', '.join(flagged))}</p>"
            if flagged
            else ""
        )
        + "<h2>Ranking</h2>"
        + _ranking(record)
        + "<h2>Scores by estimator</h2>"
        + _score_charts(record)
        + "<h2>Confidence</h2>"
        + _confidence(record)
        + _transfer(record)
        + "<h2>Cost and benefit</h2>"
        + _tradeoffs(record, throughput or {})
        + _audit(record)
    )


def render_report(record: RunRecord, *, throughput: dict[str, tuple[float, str]] | None = None) -> str:
    """The HTML page of one run; ``throughput``: measured samples/s by feature-cache key (cached models)."""
    run = record.run
    head = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>tlreg run {escape(run.id)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>tlreg run <span class="mono">{escape(run.id)}</span> '
        f'<span class="status {escape(run.status)}">{escape(run.status)}</span></h1>'
        f'<div class="muted">{escape(shown(run.created_at))} · {escape(run.user)}@'
        f"{escape(run.host)} · {escape(run.data_path)} · {run.n_samples} samples</div>"
    )
    return head + report_body(record, throughput=throughput) + "</main></body></html>"


def write_report(run_id: str, path: str | Path, *, registry: Registry | None = None) -> Path:
    """Write the HTML report of run ``run_id`` to ``path``, atomically (``tlreg report ID --out``)."""
    registry = registry or Registry()
    record = load_run(run_id, registry=registry)
    throughput = RunStore(registry.engine).measured_throughput(c.cache_key for c in record.candidates)
    return write_atomic(path, render_report(record, throughput=throughput))
