"""Trend charts drawn as SVG from the figures, on the server: no script, no library, and the
page's strict CSP holds (presentation attributes, no style attributes)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 34, 44
# A phone's chart: drawn at the size it is shown (about 340 px wide at 390 px), so its text is
# the size the style sheet says, not scaled down to 60 % of it; fewer day labels fit.
NARROW_WIDTH, NARROW_HEIGHT, NARROW_TICKS = 340, 230, 4


@dataclass(frozen=True)
class Series:
    title: str
    x_label: str
    y_label: str
    labels: Sequence[str]  # one per point, the x axis (dates as the reader writes them)
    values: Sequence[float | None]  # None: no figure that day (a gap in the line)
    y_max: float
    y_text: Callable[[float], str]  # a y value as the reader reads it (Babel)


def both(series: Series) -> Markup:
    """The desk's chart and the phone's; the style sheet shows the one that fits."""
    return Markup(line_chart(series) + line_chart(series, NARROW_WIDTH, NARROW_HEIGHT,
                                                  NARROW_TICKS, "narrow"))


def line_chart(series: Series, width: int = WIDTH, height: int = HEIGHT, x_ticks: int = 6,
               kind: str = "wide") -> Markup:
    """A line over the days, with a titled frame, both axes labelled and four y ticks."""
    WIDTH, HEIGHT = width, height  # noqa: N806 (the module's sizes, for this drawing)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(series.values)
    top = series.y_max or 1.0

    def x(i: int) -> float:
        return LEFT + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    def y(v: float) -> float:
        return TOP + inner_h * (1 - v / top)

    parts = [f'<svg class="chart {kind}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(series.title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(series.title)}</title>",
             f'<text x="{LEFT if kind == "wide" else 6}" y="18" class="chart-title">'
             f"{escape(series.title)}</text>"]
    for k in range(5):
        v = top * k / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{escape(series.y_text(v))}</text>')
    step = max(1, math.ceil(n / x_ticks))
    # The last day (today) always labelled; a label too close before it is left out.
    shown = [i for i in range(0, n, step) if n - 1 - i >= step / 2 or i == n - 1]
    if n and shown[-1] != n - 1:
        shown.append(n - 1)
    for i in shown:
        parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                     f'class="tick">{escape(series.labels[i])}</text>')
    parts.append(f'<text x="{LEFT + inner_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" '
                 f'class="axis">{escape(series.x_label)}</text>')
    parts.append(f'<text x="14" y="{TOP + inner_h / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {TOP + inner_h / 2:.0f})" '
                 f'class="axis">{escape(series.y_label)}</text>')
    for run in _runs(series.values):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
        parts.append(f'<polyline points="{points}" class="line"/>')
        parts.extend(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" class="dot">'
                     f"<title>{escape(series.labels[i])}: {escape(series.y_text(v))}</title>"
                     f"</circle>" for i, v in run)
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """The stretches of days that have a figure."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((i, v))
    return [run for run in runs if run]
