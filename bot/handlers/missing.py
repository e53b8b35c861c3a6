"""Who still owes an answer (a directive's acknowledgement, a drill's completion), as lines
under their unit in a status report; those no chat reaches are marked, to be phoned."""

from __future__ import annotations

from collections.abc import Sequence

from bot.i18n import Translator
from storage.directives import Missing


def missing_lines(t: Translator, missing: Sequence[Missing]) -> list[str]:
    """One line per person, with their phone where known (staff call them); 'no chat
    connected' where the bot cannot reach them."""
    return [_line(t, m) for m in missing]


def _line(t: Translator, m: Missing) -> str:
    if m.phone and not m.connected:
        return t("   – {name}, {phone} (no chat connected)", name=m.name, phone=m.phone)
    if m.phone:
        return t("   – {name}, {phone}", name=m.name, phone=m.phone)
    if not m.connected:
        return t("   – {name} (no chat connected)", name=m.name)
    return t("   – {name}", name=m.name)
