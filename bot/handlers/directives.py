"""/directive (send one), /directive status (counts by unit), the cards' buttons, and the
reminders to recipients who have not acknowledged or whose unit is late."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.flows import directive
from bot.flows.support import scope_roots
from bot.handlers.commands import Handlers, start_or_status
from bot.i18n import N_, Translator
from bot.jobs import periodic
from bot.settings import Settings
from bot.turn import Turn
from storage import directives
from storage.db import Database

log = logging.getLogger(__name__)
HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command

HANDLERS.button(directive.BUTTON, directive.on_button)


@command("directive", N_("Send a directive, or see who has acknowledged (/directive status)"),
         roles=directive.ROLES, position=62)
async def directive_command(turn: Turn, args: str) -> None:
    await start_or_status(turn, args, directive.start, status)


async def status(turn: Turn) -> None:
    paths = [unit.path for unit in scope_roots(turn, directive.ROLES)]
    found = await directives.latest(turn.session, paths)
    if not found:
        turn.say(turn.t("No directive has been sent in your units yet."))
        return
    for entry in found:
        result = await directives.status(turn.session, entry.id)
        if result is not None:
            turn.say(report(turn.t, result))


def report(t: Translator, result: directives.Status) -> str:
    """Totals, then one line per unit."""
    total = t.number
    lines = [t("Directive #{id}, sent {when}", id=result.directive.id,
               when=t.datetime(result.directive.created_at)),
             t("Sent {sent}, delivered {delivered}, failed {failed}; acknowledged "
               "{acknowledged}/{recipients}, outstanding {outstanding}.",
               sent=total(result.total("sent")), delivered=total(result.total("delivered")),
               failed=total(result.total("failed")),
               acknowledged=total(result.total("acknowledged")),
               recipients=total(result.total("recipients")),
               outstanding=total(result.total("outstanding")))]
    if result.directive.deadline is not None:
        lines.append(t("Units done: {done}/{units}", done=total(result.total("done")),
                       units=total(len(result.units))))
    for unit in result.units:
        mark = t(" — done") if unit.done else ""
        lines.append(t("• {unit}: acknowledged {acknowledged}/{recipients}{done}",
                       unit=unit.name, acknowledged=total(unit.acknowledged),
                       recipients=total(unit.recipients), done=mark))
    return "\n".join(lines)


@periodic("directive-reminders", timedelta(minutes=1))
async def remind(db: Database, settings: Settings, now: datetime) -> None:
    """A nudge to each recipient owed one; counted and stamped in the same transaction."""
    async with db.transaction() as session:
        due = await directives.due_reminders(session, now)
        for entry, sent in due:
            entry.reminders += 1
            entry.reminded_at = now
            await directive.send_to(session, settings, sent, [entry], reminder=True)
    if due:
        log.info("directive reminders sent to %d recipients", len(due))
