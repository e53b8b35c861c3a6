"""A drill's change against the previous drill of its scenario, said in one line ("Bước 2
nhanh hơn 6 phút so với lần trước"): by /drill status and the digest alike, so it lives
apart from both (the digest importing handlers would make an import cycle)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.i18n import Translator


def improvement(t: Translator, changes: Sequence[tuple[int, timedelta]],
                previous_id: int | None) -> str | None:
    """Each step's median against the previous drill's (storage.drills.changes); None when the
    scenario had not run before or no step was timed both times."""
    if previous_id is None or not changes:
        return None
    said = []
    for number, delta in changes:
        minutes = round(delta.total_seconds() / 60)
        amount = t.plural("{n} minute", "{n} minutes", abs(minutes))
        if minutes < 0:
            said.append(t("Step {n} {time} faster than last time", n=number, time=amount))
        elif minutes > 0:
            said.append(t("Step {n} {time} slower than last time", n=number, time=amount))
        else:
            said.append(t("Step {n} as fast as last time", n=number))
    return t("{changes} (drill #{id} before).", changes="; ".join(said), id=previous_id)
