"""The cost-benefit scatter of the report: combined score against size or speed, with the Pareto front.

Labels never sit on one another or on another model's point: each label tries a few places around
its point (right, left, above, below) and takes the first one that is free and inside the plot;
a model whose neighbours leave no room is named in a line under the chart instead (its point
still has its tooltip). The pick and the models on the front are placed first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..result import human_count
from .svg import FONT, TICK_CHAR_W, WIDTH, _svg, axis_ticks, fmt, linear_ticks, short, tick_text

LABEL_FONT = 11
#: the width taken for a label character at LABEL_FONT px: a little over the average of the sans-serif
#: fonts the report falls back to (the Chromium test measures the real boxes)
LABEL_CHAR_W = 6.9
LABEL_CHARS = 24
RADIUS = 6

Box = tuple[float, float, float, float]  # left, top, right, bottom


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


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks inside [lo, hi] (log10 units): decades, else 1-2-5, else every digit; at least three."""
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    ticks: list[float] = []
    for steps in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0**k for k in decades for m in steps if lo <= math.log10(m * 10.0**k) <= hi]
        if len(ticks) >= 3:
            break
    return ticks


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    anchors: Sequence[tuple[float, float]], texts: Sequence[str], *, bounds: Box, order: Sequence[int]
) -> dict[int, tuple[float, float, str]]:
    """{index: (x, y, text-anchor)} for the labels that fit without touching another label or any
    point, inside ``bounds``; the indices left out have no room."""
    points = [(cx - RADIUS, cy - RADIUS, cx + RADIUS, cy + RADIUS) for cx, cy in anchors]
    taken: list[Box] = []
    placed = {}
    for i in order:
        cx, cy = anchors[i]
        width = len(texts[i]) * LABEL_CHAR_W
        spots = [  # (x, baseline y, anchor): right, left, above, below, then the corners
            (cx + 9, cy + 4, "start"),
            (cx - 9, cy + 4, "end"),
            (cx, cy - 10, "middle"),
            (cx, cy + 19, "middle"),
            (cx + 5, cy - 9, "start"),
            (cx - 5, cy - 9, "end"),
            (cx + 5, cy + 18, "start"),
            (cx - 5, cy + 18, "end"),
        ]
        for x, y, anchor in spots:
            left = {"start": x, "end": x - width, "middle": x - width / 2}[anchor]
            box = (left - 1, y - LABEL_FONT + 1, left + width + 1, y + 4)
            inside = (
                box[0] >= bounds[0] and box[2] <= bounds[2] and box[1] >= bounds[1] and box[3] <= bounds[3]
            )
            if inside and not any(_overlaps(box, other) for other in taken + points):
                taken.append(box)
                placed[i] = (x, y, anchor)
                break
    return placed


def _axis_text(value: float, what: str) -> str:
    return human_count(round(value)) if what == "parameters" else fmt(value)


def scatter(
    chart_id: str, title: str, points: Sequence[Point], *, x_label: str, y_label: str, maximize_x: bool
) -> str:
    """``y`` against ``x`` (log scale), the Pareto front joined and its points ringed."""
    left, right, top, bottom = 46, 12, 30, 46
    ph = 224
    pw = WIDTH - left - right
    lx = [math.log10(p.x) for p in points]
    x_lo, x_hi = min(lx) - 0.15, max(lx) + 0.15
    y_vals = [p.y for p in points]
    pad = (max(y_vals) - min(y_vals)) * 0.12 or 0.1
    y_lo, y_hi = min(y_vals) - pad, max(y_vals) + pad
    sx = lambda v: left + (math.log10(v) - x_lo) / (x_hi - x_lo) * pw  # noqa: E731
    sy = lambda v: top + (1 - (v - y_lo) / (y_hi - y_lo)) * ph  # noqa: E731
    front = pareto_front(points, maximize_x=maximize_x)
    texts = [short(p.label, LABEL_CHARS) for p in points]
    anchors = [(sx(p.x), sy(p.y)) for p in points]
    order = sorted(range(len(points)), key=lambda i: (not points[i].pick, i not in front, -points[i].y))
    placed = place_labels(
        anchors, texts, bounds=(left + 2, top + 2, left + pw - 2, top + ph - 2), order=order
    )
    crowded = [i for i in order if i not in placed]
    height = top + ph + bottom + 15 * len(crowded)
    body = [
        f'<text class="chart-title" x="0" y="16" font-weight="600">{escape(title)}</text>',
        f'<rect class="plot" x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>',
    ]
    ticks = _log_ticks(x_lo, x_hi)
    for t in ticks:
        body.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{top + ph}" stroke="#eee"/>')
    # a tick label at the left edge would run into the lowest y-tick label: leave it out
    labelled = [t for t in ticks if sx(t) - len(tick_text(t)) * TICK_CHAR_W / 2 >= left]
    body += axis_ticks(sx, labelled, top + ph + 14, decimals=None)
    y_ticks, decimals = linear_ticks(y_lo, y_hi, most=5)
    for t in y_ticks:
        body.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
            f'<text class="tick" x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end" fill="#555" '
            f'font-size="{FONT - 1}">{t:.{decimals}f}</text>'
        )
    body.append(
        f'<text x="{left + pw / 2:.0f}" y="{top + ph + 34}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="11" y="{top + ph / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 11 {top + ph / 2:.0f})">{escape(y_label)}</text>'
    )
    if len(front) > 1:
        path = " ".join(f"{anchors[i][0]:.1f},{anchors[i][1]:.1f}" for i in front)
        body.append(f'<polyline class="front" points="{path}" fill="none" stroke-dasharray="5 3"/>')
    for i, p in enumerate(points):
        kind = "pick" if p.pick else "model"
        on_front = " pareto" if i in front else ""
        tip = f"{p.label}: {x_label} {_axis_text(p.x, x_label)}, {y_label} {fmt(p.y)}" + (
            " (Pareto front)" if on_front else ""
        )
        body.append(
            f'<circle class="point {kind}{on_front}" cx="{anchors[i][0]:.1f}" cy="{anchors[i][1]:.1f}" '
            f'r="{RADIUS}"><title>{escape(tip)}</title></circle>'
        )
        if i in placed:
            x, y, anchor = placed[i]
            body.append(
                f'<text class="point-label {kind}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" '
                f'font-size="{LABEL_FONT}">{escape(texts[i])}</text>'
            )
    for line, i in enumerate(crowded):
        p = points[i]
        text = f"unlabelled (no room): {short(p.label, 30)} at {_axis_text(p.x, x_label)}, {fmt(p.y)}"
        body.append(
            f'<text class="crowded" x="0" y="{top + ph + bottom + 11 + 15 * line}" fill="#555" '
            f'font-size="{LABEL_FONT}">{escape(text)}</text>'
        )
    return _svg(chart_id, height, body, title=title)
