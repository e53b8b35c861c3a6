"""The digest's chart: the last 7 days of open cases and of check-in compliance (PNG).

matplotlib's Figure draws with the Agg backend by itself: no display, no pyplot."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bot.i18n import Translator
from storage.digest import WardFigures

# Fixed margins (left, bottom, width, height) rather than tight_layout, which measured every
# label first and doubled the time of a chart (docs/performance.md, "Digest").
AXES = (0.15, 0.2, 0.7, 0.68)


def draw(t: Translator, figures: WardFigures, folder: Path) -> Path:
    """Write the chart under `folder` (one file per ward, day and locale) and return its path.

    A bare Figure, not pyplot: no global state, so drawing is safe from any thread."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"digest-{figures.ward_code}-{figures.day}-{t.locale}.png"
    labels = [t.date(date.fromisoformat(d.day)) for d in figures.trend]
    opens = [d.open for d in figures.trend]
    rates = [100 * d.compliance if d.compliance is not None else 0 for d in figures.trend]
    fig = Figure(figsize=(6, 3.2), dpi=100)
    left = fig.add_axes(AXES)
    left.bar(labels, opens, color="#c0504d", label=t("Open cases"))
    left.set_ylabel(t("Open cases"))
    left.yaxis.set_major_formatter(FuncFormatter(lambda value, _: t.number(int(value))))
    right = left.twinx()
    right.plot(labels, rates, color="#1f77b4", marker="o", label=t("Check-in %"))
    right.set_ylim(0, 105)
    right.set_ylabel(t("Check-in %"))
    left.set_title(figures.ward_name)
    left.tick_params(axis="x", labelsize=7, rotation=30)
    fig.savefig(path, format="png")
    return path
