"""The digest's chart: the last 7 days of open cases (bars) and of the daily report rate
(a line), as a PNG that reads on a phone.

Drawn 4 inches wide at 200 dpi (800 px, sharp on a 2× screen). A chat bubble on a 390 px
phone shows it about 290 px wide, so 12-point text (the axes at 11) lands near 11-12 px there:
looked at in docs/screens/digest-chart-phone.png. Days before the ward had
a leader are a gap, not a zero. matplotlib's Figure draws with the Agg backend by itself: no
display, no pyplot (no global state, so drawing is safe from any thread)."""

from __future__ import annotations

import itertools
import math
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.i18n import Translator
from storage.digest import WardFigures
from storage.private import private_dir, private_file

if TYPE_CHECKING:  # matplotlib is imported where a chart is drawn (~0.2 s): the command line
    from matplotlib.axes import Axes  # and the bot's start need it only for a digest
    from matplotlib.figure import Figure

# Fixed margins (left, bottom, width, height) rather than tight_layout, which measured every
# label first and doubled the time of a chart (docs/performance.md, "Digest").
AXES = (0.1, 0.17, 0.76, 0.55)
SIZE = (4.0, 3.2)  # inches
DPI = 200
FONT = 12
DAYS_FONT = FONT - 3  # seven days side by side under the bars
DAYS_GAP = 3  # points at least between two days' labels
BARS, LINE = "#c0504d", "#1f5fa8"


def figure(t: Translator, figures: WardFigures) -> Figure:
    """The chart as a matplotlib Figure (tests read its ticks, legend and data from it)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    days = [date.fromisoformat(d.day) for d in figures.trend]
    opens = [math.nan if d.open is None else d.open for d in figures.trend]
    rates = [math.nan if d.compliance is None else 100 * d.compliance for d in figures.trend]
    fig = Figure(figsize=SIZE, dpi=DPI)
    labels = _day_labels(t, fig, days)
    left = fig.add_axes(AXES)
    positions = list(range(len(days)))
    bars = left.bar(positions, opens, color=BARS, width=0.6, label=t("Open reports"))
    left.set_xticks(positions, labels, fontsize=DAYS_FONT)
    left.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4, min_n_ticks=1))
    left.yaxis.set_major_formatter(FuncFormatter(lambda value, _: t.number(int(value))))
    top = max((v for v in opens if not math.isnan(v)), default=0)
    left.set_ylim(0, max(top * 1.15, 3))  # a few cases still get room and whole ticks
    left.tick_params(axis="y", labelsize=FONT - 1, colors=BARS)
    right = left.twinx()
    (line,) = right.plot(positions, rates, color=LINE, marker="o", linewidth=2,
                         label=t("Daily report rate (%)"))
    right.set_ylim(0, 105)
    right.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    right.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{t.number(int(value))}%"))
    right.tick_params(axis="y", labelsize=FONT - 1, colors=LINE)
    left.set_xlim(-0.5, len(days) - 0.5)  # the gap days keep their place on the axis
    _mark_gap(t, left, [d.open is None for d in figures.trend])
    for axes in (left, right):
        axes.spines["top"].set_visible(False)
    fig.legend(handles=[bars, line], loc="upper center", bbox_to_anchor=(0.5, 0.915), ncol=2,
               fontsize=FONT - 2, frameon=False, handlelength=1.5, columnspacing=1.2)
    fig.suptitle(figures.ward_name, fontsize=FONT + 1, y=0.98)
    if days:
        left.set_xlabel(t("{first} to {last}", first=t.date(days[0]), last=t.date(days[-1])),
                        fontsize=FONT - 1)
    return fig


def _day_labels(t: Translator, fig: Figure, days: list[date]) -> list[str]:
    """Each day as the caption and the digest write it ("1/12", Translator.short_date) where
    the labels fit side by side; where they would touch ("Nov 27Nov 28" in English) the month
    only on the first day and where it changes: "Nov 27", "28", ... "Dec 1", "2". Measured
    with the renderer that then draws the chart (its font metrics are cached: ~1 ms)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.font_manager import FontProperties

    full = [t.short_date(day) for day in days]
    if len(days) < 2:
        return full
    renderer = FigureCanvasAgg(fig).get_renderer()
    font = FontProperties(size=DAYS_FONT)
    widths = [renderer.get_text_width_height_descent(label, font, ismath=False)[0]
              for label in full]
    slot = AXES[2] * fig.bbox.width / len(days)  # the distance between two days' centres
    gap = renderer.points_to_pixels(DAYS_GAP)
    if all((a + b) / 2 + gap <= slot for a, b in itertools.pairwise(widths)):
        return full
    return [label if index == 0 or day.day == 1 else t.number(day.day)
            for index, (day, label) in enumerate(zip(days, full, strict=True))]


def _mark_gap(t: Translator, axes: Axes, missing: list[bool]) -> None:
    """Shade the days with no figure and say only that: they are the days before the ward's
    first leader took up a post, often days before the ward was set up at all."""
    before = next((i for i, gap in enumerate(missing) if not gap), len(missing))
    if not before:
        return
    axes.axvspan(-0.5, before - 0.5, color="#eeeeee", zorder=0)
    axes.text((before - 1) / 2, axes.get_ylim()[1] / 2, t("no data yet"), ha="center",
              va="center", fontsize=FONT - 2, color="#666666",
              rotation=0 if before >= 3 else 90)  # a narrow gap reads upwards


def draw(t: Translator, figures: WardFigures, folder: Path) -> Path:
    """Write the chart under `folder` (one file per ward, day and locale); return its path."""
    path = private_dir(folder) / f"digest-{figures.ward_code}-{figures.day}-{t.locale}.png"
    figure(t, figures).savefig(private_file(path), format="png")
    return path
