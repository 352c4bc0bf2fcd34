"""Charts as inline SVG strings, for the self-contained HTML report: bars and rank intervals.

The report must open offline, from a file, months later, so it cannot load a chart library; the
few chart types it needs (horizontal bars, rank intervals, a scatter with its Pareto front in
:mod:`.scatter`) are simple enough to draw directly. Every text is escaped; every mark carries a
``<title>`` (the browser's tooltip) with its exact value, and a class that tests and styles can find.

Bars read the way the title says ("higher is better"): the longest bar is the best score. So a
bar starts at the axis' lower end, which is 0 only when 0 is a meaningful floor for the values
(all positive and spread out), and otherwise just below the lowest value, with ticks saying where
the axis starts: LogME's negative scores then grow to the right as they improve, and H-scores that
all sit near C-1 show their differences instead of bars of equal length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from ..result import fmt_number

WIDTH = 480
ROW = 22
LABEL_W = 180
#: characters of a label that fit in LABEL_W at FONT px (bold, as the pick's label is)
LABEL_CHARS = 22
FONT = 12
#: the widest a character of the tick labels (FONT - 1 px) is taken to be, for spacing ticks
TICK_CHAR_W = 7.0

_SHA = re.compile(r"@[0-9a-f]{40}")


def short(label: str, limit: int = LABEL_CHARS) -> str:
    """A ref short enough for a chart label: no pinned sha (the tables show it), a path's last part
    (``local-dir:…/model``), else cut in the middle; the full ref is in the mark's tooltip."""
    label = _SHA.sub("", label)
    if len(label) <= limit:
        return label
    scheme, _, rest = label.partition(":")
    if "/" in rest and len(f"{scheme}:…/{rest.rsplit('/', 1)[1]}") <= limit:
        return f"{scheme}:…/{rest.rsplit('/', 1)[1]}"
    keep = limit - 1
    return label[: keep // 2] + "…" + label[-(keep - keep // 2) :]


def fmt(value: float | None) -> str:
    """A score or measurement as every table and chart of tlreg shows it (4 significant digits)."""
    return fmt_number(value)


def _step(lo: float, hi: float, *, most: int = 6) -> float:
    """A 1-2-5 step that cuts [lo, hi] into at most ``most`` intervals."""
    raw = ((hi - lo) or abs(hi) or 1.0) / most
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


def _decimals(step: float) -> int:
    """Decimals that tell ticks ``step`` apart: 0.25 -> 2, 0.5 -> 1, 20 -> 0."""
    for d in range(0, 12):
        if abs(round(step * 10**d) - step * 10**d) < 1e-6:
            return d
    return 12


def tick_text(value: float, *, decimals: int | None = None) -> str:
    """An axis tick as people read it: 4M, 250k, 1.5B; -0.5, 8.92."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{value:.3g}"


def linear_ticks(lo: float, hi: float, *, most: int = 6) -> tuple[list[float], int]:
    """Ticks on a 1-2-5 step inside [lo, hi], and the decimals their labels need."""
    step = _step(lo, hi, most=most)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [k * step for k in range(first, last + 1)], _decimals(step)


def bar_domain(values: Sequence[float]) -> tuple[float, float]:
    """The axis of a bar chart: (where bars start, the top), so the longest bar is the best.

    0 is the start when the values are all positive and spread over at least a quarter of the
    largest (or all equal); otherwise a round number just below the lowest value (negative scores,
    or scores all close to one another far from 0)."""
    lo, hi = min(values), max(values)
    if lo >= 0 and (hi == lo or (hi - lo) >= 0.25 * hi):
        return 0.0, hi or 1.0
    spread = (hi - lo) or abs(hi) * 0.1 or 1.0
    step = _step(lo - 0.15 * spread, hi)
    return math.floor((lo - 0.15 * spread) / step) * step, hi


def _svg(chart_id: str, height: float, body: list[str], *, title: str) -> str:
    return (
        f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
        f'font-size="{FONT}">' + "".join(body) + "</svg>"
    )


def axis_ticks(
    x: Callable[[float], float], ticks: Sequence[float], y: float, *, decimals: int | None
) -> list[str]:
    """Tick labels along a horizontal axis at ``y``, leaving out any that would touch its neighbour."""
    out, right = [], -math.inf
    for t in ticks:
        text = tick_text(t, decimals=decimals)
        half = len(text) * TICK_CHAR_W / 2
        if x(t) - half < right + 6:
            continue
        right = x(t) + half
        out.append(
            f'<text class="tick" x="{x(t):.1f}" y="{y:.1f}" text-anchor="middle" fill="#555" '
            f'font-size="{FONT - 1}">{escape(text)}</text>'
        )
    return out


@dataclass
class Bar:
    label: str
    value: float | None
    kind: str = "model"  # model, pick, baseline
    text: str | None = None  # what the axis shows, when not the shortened label


def bar_chart(
    chart_id: str, title: str, bars: Sequence[Bar], *, domain: tuple[float, float] | None = None
) -> str:
    """Horizontal bars from the axis' lower end (see the module docstring; ``domain`` fixes the axis
    of a score with known bounds); missing values are marked, not drawn."""
    values = [b.value for b in bars if b.value is not None and math.isfinite(b.value)]
    lo, hi = domain or (bar_domain(values) if values else (0.0, 1.0))
    plot_w = WIDTH - LABEL_W - 60
    x = lambda v: LABEL_W + (v - lo) / ((hi - lo) or 1.0) * plot_w  # noqa: E731
    axis_y = 28 + ROW * len(bars) + 2
    height = axis_y + 22
    body = [f'<text class="chart-title" x="0" y="16" font-weight="600">{escape(title)}</text>']
    ticks, decimals = linear_ticks(lo, hi, most=5)
    for t in ticks:
        body.append(
            f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="24" y2="{axis_y}" stroke="#eee"/>'
        )
    body += axis_ticks(x, ticks, axis_y + 14, decimals=decimals)
    if lo < 0 < hi:
        body.append(
            f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="24" y2="{axis_y}" stroke="#888" '
            'stroke-dasharray="3 2"/>'
        )
    body.append(f'<line class="axis" x1="{LABEL_W}" x2="{LABEL_W}" y1="24" y2="{axis_y}" stroke="#888"/>')
    for i, bar in enumerate(bars):
        y = 28 + i * ROW
        body.append(
            f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" class="label {bar.kind}">'
            f"<title>{escape(bar.label)}</title>{escape(bar.text or short(bar.label))}</text>"
        )
        if bar.value is None or not math.isfinite(bar.value):
            body.append(f'<text class="missing" x="{LABEL_W + 4}" y="{y + 15}" fill="#888">not scored</text>')
            continue
        right = x(bar.value)
        body.append(
            f'<rect class="bar {bar.kind}" x="{LABEL_W}" y="{y + 3}" width="{max(right - LABEL_W, 1):.1f}" '
            f'height="{ROW - 6}"><title>{escape(bar.label)}: {fmt(bar.value)}</title></rect>'
            f'<text class="value" x="{max(right, LABEL_W + 1) + 4:.1f}" y="{y + 15}">{fmt(bar.value)}</text>'
        )
    return _svg(chart_id, height, body, title=title)


@dataclass
class Interval:
    label: str
    rank: int
    low: int
    high: int
    p_best: float | None
    pick: bool = False


def interval_chart(chart_id: str, title: str, rows: Sequence[Interval], n: int) -> str:
    """Each model's rank (dot) and its 5–95 % rank interval over the resamples (whisker); 1 is best."""
    plot_w = WIDTH - LABEL_W - 105
    x = lambda r: LABEL_W + 10 + (r - 1) / max(n - 1, 1) * plot_w  # noqa: E731
    axis_y = 28 + ROW * len(rows) + 4
    height = axis_y + 38
    body = [f'<text class="chart-title" x="0" y="16" font-weight="600">{escape(title)}</text>']
    for r in range(1, n + 1):
        body.append(
            f'<line class="grid" x1="{x(r):.1f}" x2="{x(r):.1f}" y1="24" y2="{axis_y}" stroke="#e3e3e3"/>'
        )
    body += axis_ticks(x, range(1, n + 1), axis_y + 14, decimals=0)
    body.append(
        f'<text x="{LABEL_W + 10 + plot_w / 2:.0f}" y="{height - 8}" text-anchor="middle">rank</text>'
    )
    for i, row in enumerate(rows):
        y = 28 + i * ROW + ROW / 2
        kind = "pick" if row.pick else "model"
        tip = f"{row.label}: rank {row.rank}, 5–95% interval {row.low}–{row.high}"
        tip += f", P(best) {row.p_best:.0%}" if row.p_best is not None else ""
        body.append(
            f'<text x="{LABEL_W - 8}" y="{y + 4}" text-anchor="end" class="label {kind}">'
            f"<title>{escape(row.label)}</title>{escape(short(row.label))}</text>"
            f'<line class="interval {kind}" x1="{x(row.low):.1f}" x2="{x(row.high):.1f}" y1="{y}" y2="{y}" '
            f'stroke-width="4" stroke-linecap="round"><title>{escape(tip)}</title></line>'
            f'<circle class="rank {kind}" cx="{x(row.rank):.1f}" cy="{y}" r="5">'
            f"<title>{escape(tip)}</title></circle>"
        )
        if row.p_best is not None:
            body.append(
                f'<text class="value" x="{WIDTH - 4}" y="{y + 4}" text-anchor="end">'
                f"P(best) {row.p_best:.0%}</text>"
            )
    return _svg(chart_id, height, body, title=title)


def curve_chart(chart_id: str, title: str, curve: dict, *, metric: str = "accuracy") -> str:
    """A learning curve (:mod:`tlreg.advisor.learning_curve`): the measured points (mean, ± one sd over
    the repeats), the fitted saturating curve, and the prediction at more labels with its interval."""
    points, params, predict = curve.get("points") or [], curve.get("params") or {}, curve.get("predict") or []
    x_hi = 1.05 * max([p["n"] for p in points] + [p["n"] for p in predict] + [1.0])  # room for the mark
    ys = [v for p in points for v in (p["mean"] - p["sd"], p["mean"] + p["sd"])]
    ys += [v for p in predict for v in (p["low"], p["high"])]
    y_lo = max(0.0, min(ys, default=0.0)) if metric == "accuracy" else min(ys, default=0.0)
    y_lo, y_hi = math.floor(y_lo * 10) / 10, 1.0
    left, top, plot_w, plot_h = 48, 28, WIDTH - 48 - 16, 170
    x = lambda n: left + n / x_hi * plot_w  # noqa: E731
    y = lambda v: top + (y_hi - min(max(v, y_lo), y_hi)) / ((y_hi - y_lo) or 1.0) * plot_h  # noqa: E731
    axis_y = top + plot_h
    body = [f'<text class="chart-title" x="0" y="16" font-weight="600">{escape(title)}</text>']
    ticks, decimals = linear_ticks(y_lo, y_hi, most=5)
    for t in ticks:
        body.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            'stroke="#eee"/>'
            f'<text class="tick" x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="#555" '
            f'font-size="{FONT - 1}">{escape(tick_text(t, decimals=decimals))}</text>'
        )
    x_ticks, x_dec = linear_ticks(0.0, x_hi, most=5)
    body += axis_ticks(x, x_ticks, axis_y + 14, decimals=x_dec)
    body.append(
        f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#888"/>'
        f'<text x="{left + plot_w / 2:.0f}" y="{axis_y + 32}" text-anchor="middle">labelled items</text>'
    )
    if params:
        a, b, c = params["a"], params["b"], params["c"]
        start = min(p["n"] for p in points) if points else 1.0
        ns = [start + (x_hi - start) * i / 40 for i in range(41)]
        path = " ".join(f"{x(n):.1f},{y(a - b * n ** (-c)):.1f}" for n in ns)
        body.append(f'<polyline class="fit" points="{path}" fill="none" stroke="#4c78a8" stroke-width="2"/>')

    def mark(cls: str, n: float, mid: float, lo: float, hi: float, tip: str, colour: str, wide: bool) -> str:
        """A dot at ``mid`` with a whisker from ``lo`` to ``hi`` at ``n`` labels."""
        stroke = 'stroke-width="6" stroke-opacity="0.5"' if wide else ""
        return (
            f'<line class="{cls}" x1="{x(n):.1f}" x2="{x(n):.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" '
            f'stroke="{colour}" {stroke}/><circle class="{cls}" cx="{x(n):.1f}" cy="{y(mid):.1f}" '
            f'r="{5 if wide else 4}" fill="{colour}"><title>{escape(tip)}</title></circle>'
        )

    for p in points:
        tip = f"{p['n']:.0f} labels: {metric} {p['mean']:.3f} ± {p['sd']:.3f}"
        body.append(
            mark("point", p["n"], p["mean"], p["mean"] - p["sd"], p["mean"] + p["sd"], tip, "#333", False)
        )
    for p in predict:
        tip = f"{p['n']:.0f} labels: expected {p['expected']:.2f} ({p['low']:.2f}–{p['high']:.2f}, 80 %)"
        body.append(
            mark("predicted", p["n"], p["expected"], p["low"], p["high"], tip, "#e45756", True)
            + f'<text class="value" x="{x(p["n"]) - 8:.1f}" y="{y(p["high"]) - 6:.1f}" text-anchor="end">'
            f"{p['labels_x']:g}× labels: {p['expected']:.2f}</text>"
        )
    return _svg(chart_id, axis_y + 42, body, title=title)
