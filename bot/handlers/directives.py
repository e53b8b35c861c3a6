"""/directive (send one), /directive status (counts by unit), the cards' buttons, and the
reminders to recipients who have not acknowledged or whose unit is late."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.flows import directive
from bot.flows.support import scope_roots
from bot.handlers.access import refuse
from bot.handlers.commands import Handlers, asked_items, start_or_status
from bot.handlers.missing import missing_lines
from bot.i18n import N_, Translator
from bot.jobs import periodic
from bot.messages import Button, parse_id
from bot.settings import Settings
from bot.turn import Turn
from storage import directives
from storage.db import Database

log = logging.getLogger(__name__)
HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command

HANDLERS.button(directive.BUTTON, directive.on_button)


REMIND = "dvr"  # "dvr:<directive id>": one reminder to those still missing
STATUS_HINT = N_("Write /directive status, or /directive status with a directive's number "
                 "(e.g. /directive status 3).")


@command("directive", N_("Send a directive, or see who has acknowledged (/directive status)"),
         roles=directive.ROLES, position=62)
async def directive_command(turn: Turn, args: str) -> None:
    await start_or_status(turn, args, directive.start, status)


async def status(turn: Turn, asked: str) -> None:
    """The latest directives in the asker's units, or the one whose number follows."""
    paths = [unit.path for unit in scope_roots(turn, directive.ROLES)]

    async def one(number: int) -> directives.Status | None:
        return await directives.status(turn.session, number, paths)

    async def latest() -> list[directives.Status]:
        return [result for entry in await directives.latest(turn.session, paths)
                if (result := await one(entry.id))]

    found = await asked_items(
        turn, asked, one, latest, hint=STATUS_HINT,
        not_found=N_("There is no directive #{id} in your units."),
        none_yet=N_("No directive has been sent in your units yet."))
    for result in found:
        turn.say(report(turn.t, result), buttons=_remind_button(turn.t, result))


def _remind_button(t: Translator, result: directives.Status) -> tuple[Button, ...]:
    """For those missing who have a chat: the others are named to be phoned."""
    missing = len(result.missing(connected=True))
    if not missing:
        return ()
    return (Button(t("Remind the {n} missing", n=t.number(missing)),
                   f"{REMIND}:{result.directive.id}"),)


def report(t: Translator, result: directives.Status) -> str:
    """Totals, then one line per unit, and under it who has not answered yet."""
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
                       unit=unit.label or unit.name, acknowledged=total(unit.acknowledged),
                       recipients=total(unit.recipients), done=mark))
        lines.extend(missing_lines(t, unit.missing))
    unreachable = len(result.missing(connected=False))
    if unreachable:
        lines.append(t.plural("{n} of them has no chat connected: phone them.",
                              "{n} of them have no chat connected: phone them.", unreachable))
    return "\n".join(lines)


async def on_remind(turn: Turn, payload: str) -> None:
    """Staff's "Remind": one nudge to each recipient still missing, at most once an hour."""
    wanted = parse_id(payload.split(":", 1)[1] if ":" in payload else "")
    paths = [unit.path for unit in scope_roots(turn, directive.ROLES)]
    result = (await directives.status(turn.session, wanted, paths)
              if wanted is not None and paths else None)
    if result is None:
        refuse(turn, "a directive reminder", directive.ROLES)
        return
    entries = await directives.to_remind(turn.session, result.directive, turn.now)
    if isinstance(entries, datetime):
        turn.say(turn.t("A reminder for directive #{id} went out less than an hour ago; the "
                        "next one can be sent from {when}.", id=result.directive.id,
                        when=turn.t.datetime(entries)))
        return
    if not entries:
        turn.say(turn.t("Everyone has answered directive #{id}; no reminder is needed.",
                        id=result.directive.id))
        return
    queued = await directive.send_to(turn.session, turn.settings, result.directive, entries,
                                     reminder=True)
    log.info("directive %s: reminder by hand to %d recipients, %d messages",
             result.directive.id, len(entries), queued)
    unreachable = result.missing(connected=False)
    if len(entries) > len(unreachable):
        turn.say(turn.t("Reminder for directive #{id} sent to {n} recipients.",
                        id=result.directive.id,
                        n=turn.t.number(len(entries) - len(unreachable))))
    if unreachable:  # by name and phone: a reminder cannot reach them, a call can
        turn.say("\n".join([turn.t.plural("{n} has no chat connected: phone them.",
                                           "{n} have no chat connected: phone them.",
                                           len(unreachable)),
                             *missing_lines(turn.t, unreachable)]))


HANDLERS.button(REMIND, on_remind)


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
