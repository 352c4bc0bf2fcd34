"""Charts as inline SVG strings, for the self-contained HTML report.

The report must open offline, from a file, months later, so it cannot load a chart library; the
few chart types it needs (horizontal bars, rank intervals, a scatter with its Pareto front) are
simple enough to draw directly. Every text is escaped; every mark carries a ``<title>`` (the
browser's tooltip) with its exact value, and a class that tests and styles can find.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 480
ROW = 22
LABEL_W = 180
#: characters of a label that fit in LABEL_W at FONT px
LABEL_CHARS = 25
FONT = 12


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
    if value is None or not math.isfinite(value):
        return "-"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def _svg(chart_id: str, height: float, body: list[str], *, title: str) -> str:
    return (
        f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
        f'font-size="{FONT}">' + "".join(body) + "</svg>"
    )


@dataclass
class Bar:
    label: str
    value: float | None
    kind: str = "model"  # model, pick, baseline
    text: str | None = None  # what the axis shows, when not the shortened label


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar]) -> str:
    """Horizontal bars from a zero line (scores can be negative); missing values are marked, not drawn."""
    values = [b.value for b in bars if b.value is not None and math.isfinite(b.value)]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    span = (hi - lo) or 1.0
    plot_w = WIDTH - LABEL_W - 60
    x = lambda v: LABEL_W + (v - lo) / span * plot_w  # noqa: E731
    height = 28 + ROW * len(bars) + 8
    body = [f'<text class="chart-title" x="0" y="16" font-weight="600">{escape(title)}</text>']
    body.append(
        f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="24" y2="{height - 6}" stroke="#888"/>'
    )
    for i, bar in enumerate(bars):
        y = 28 + i * ROW
        body.append(
            f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" class="label {bar.kind}">'
            f"<title>{escape(bar.label)}</title>{escape(bar.text or short(bar.label))}</text>"
        )
        if bar.value is None or not math.isfinite(bar.value):
            body.append(
                f'<text class="missing" x="{x(0) + 4:.1f}" y="{y + 15}" fill="#888">not scored</text>'
            )
            continue
        left, right = sorted((x(0), x(bar.value)))
        body.append(
            f'<rect class="bar {bar.kind}" x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1):.1f}" '
            f'height="{ROW - 6}"><title>{escape(bar.label)}: {fmt(bar.value)}</title></rect>'
            f'<text class="value" x="{right + 4:.1f}" y="{y + 15}">{fmt(bar.value)}</text>'
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
    height = 28 + ROW * len(rows) + 42
    body = [f'<text class="chart-title" x="0" y="16" font-weight="600">{escape(title)}</text>']
    axis_y = height - 34
    for r in range(1, n + 1):
        body.append(
            f'<line class="grid" x1="{x(r):.1f}" x2="{x(r):.1f}" y1="24" y2="{axis_y}" stroke="#e3e3e3"/>'
            f'<text x="{x(r):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{r}</text>'
        )
    body.append(
        f'<text x="{LABEL_W + 10 + plot_w / 2:.0f}" y="{height - 2}" text-anchor="middle">rank</text>'
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


@dataclass
class Point:
    label: str
    x: float
    y: float
    pick: bool = False


def pareto_front(points: Sequence[Point], *, maximize_x: bool) -> list[int]:
    """Indices of the points no other point beats on both axes (y higher, x lower or higher), by x."""
    sign = -1.0 if maximize_x else 1.0
    front = []
    for i, p in enumerate(points):
        dominated = any(
            sign * q.x <= sign * p.x and q.y >= p.y and (sign * q.x < sign * p.x or q.y > p.y)
            for j, q in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i].x)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Axis ticks inside [lo, hi] (in log10 units when ``log``): at least two where possible."""
    if log:
        decades = range(math.floor(lo), math.ceil(hi) + 1)
        for steps in ((1,), (1, 2, 5), tuple(range(1, 10))):
            ticks = [m * 10.0**k for k in decades for m in steps if lo <= math.log10(m * 10.0**k) <= hi]
            if len(ticks) >= 2:
                break
        return ticks
    step = 10 ** math.floor(math.log10((hi - lo) or 1.0))
    if (hi - lo) / step < 4:
        step /= 2
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def scatter(
    chart_id: str, title: str, points: Sequence[Point], *, x_label: str, y_label: str, maximize_x: bool
) -> str:
    """``y`` against ``x`` (log scale), the Pareto front joined and its points ringed."""
    left, right, top, bottom = 60, 20, 30, 46
    height = 300
    pw, ph = WIDTH - left - right, height - top - bottom
    lx = [math.log10(p.x) for p in points]
    x_lo, x_hi = min(lx) - 0.15, max(lx) + 0.15
    y_vals = [p.y for p in points]
    pad = (max(y_vals) - min(y_vals)) * 0.1 or 0.1
    y_lo, y_hi = min(y_vals) - pad, max(y_vals) + pad
    sx = lambda v: left + (math.log10(v) - x_lo) / (x_hi - x_lo) * pw  # noqa: E731
    sy = lambda v: top + (1 - (v - y_lo) / (y_hi - y_lo)) * ph  # noqa: E731
    body = [
        f'<text class="chart-title" x="0" y="16" font-weight="600">{escape(title)}</text>',
        f'<rect class="plot" x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>',
    ]
    for t in _ticks(x_lo, x_hi, log=True):
        body.append(
            f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{top + ph}" stroke="#eee"/>'
            f'<text x="{sx(t):.1f}" y="{top + ph + 14}" text-anchor="middle" fill="#555">{fmt(t)}</text>'
        )
    for t in _ticks(y_lo, y_hi, log=False):
        body.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end" fill="#555">{fmt(t)}</text>'
        )
    body.append(
        f'<text x="{left + pw / 2:.0f}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    body.append(
        f'<text x="14" y="{top + ph / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.0f})">'
        f"{escape(y_label)}</text>"
    )
    front = pareto_front(points, maximize_x=maximize_x)
    if len(front) > 1:
        path = " ".join(f"{sx(points[i].x):.1f},{sy(points[i].y):.1f}" for i in front)
        body.append(f'<polyline class="front" points="{path}" fill="none" stroke-dasharray="5 3"/>')
    placed: list[tuple[float, float, float]] = []
    for i, p in enumerate(points):
        kind = "pick" if p.pick else "model"
        on_front = " pareto" if i in front else ""
        right_half = sx(p.x) > left + pw / 2
        text, anchor = short(p.label, 24), "end" if right_half else "start"
        lx, ly = sx(p.x) + (-9 if right_half else 9), sy(p.y) - 7
        x0 = lx - 6.2 * len(text) if right_half else lx
        for _ in range(6):  # move a label down past those already placed where they would overlap
            if not any(abs(ly - y) < 13 and x0 < x1 + w and x1 < x0 + 6.2 * len(text) for x1, y, w in placed):
                break
            ly += 13
        placed.append((x0, ly, 6.2 * len(text)))
        tip = f"{p.label}: {x_label} {fmt(p.x)}, {y_label} {fmt(p.y)}" + (
            " (Pareto front)" if on_front else ""
        )
        body.append(
            f'<circle class="point {kind}{on_front}" cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="6">'
            f"<title>{escape(tip)}</title></circle>"
            f'<text class="point-label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">'
            f"{escape(text)}</text>"
        )
    return _svg(chart_id, height, body, title=title)
