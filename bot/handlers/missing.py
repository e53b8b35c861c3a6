"""Who still owes an answer (a directive's acknowledgement, a drill's completion), as lines
under their unit in a status report; those no chat reaches are marked, to be phoned."""

from __future__ import annotations

from collections.abc import Sequence

from bot.i18n import Translator
from storage.directives import Missing


def missing_lines(t: Translator, missing: Sequence[Missing]) -> list[str]:
    """One line per person; 'no chat connected' where the bot cannot reach them."""
    return [t("   – {name} (no chat connected)", name=m.name) if not m.connected else
            t("   – {name}", name=m.name) for m in missing]
