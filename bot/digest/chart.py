"""The digest's chart: the last 7 days of open cases and of check-in compliance (PNG, Agg)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a server; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402

from bot.i18n import Translator  # noqa: E402
from storage.digest import WardFigures  # noqa: E402


def draw(t: Translator, figures: WardFigures, folder: Path) -> Path:
    """Write the chart under `folder` (one file per ward, day and locale) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"digest-{figures.ward_code}-{figures.day}-{t.locale}.png"
    labels = [t.date(date.fromisoformat(d.day)) for d in figures.trend]
    opens = [d.open for d in figures.trend]
    rates = [100 * d.compliance if d.compliance is not None else 0 for d in figures.trend]
    fig, left = plt.subplots(figsize=(6, 3.2), dpi=100)
    try:
        left.bar(labels, opens, color="#c0504d", label=t("Open cases"))
        left.set_ylabel(t("Open cases"))
        right = left.twinx()
        right.plot(labels, rates, color="#1f77b4", marker="o", label=t("Check-in %"))
        right.set_ylim(0, 105)
        right.set_ylabel(t("Check-in %"))
        left.set_title(figures.ward_name)
        left.tick_params(axis="x", labelsize=7, rotation=30)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
