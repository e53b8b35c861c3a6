"""/open: the open reports in the person's area, newest first; update one or resolve it.

report → what to do → the new people count / note / urgency, or a closing note → confirm.
The report is looked up again, in scope, when the change is written: it may have been
resolved by someone else, or the person's role may have ended, in the meantime.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot import notify
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.household_pick import scope
from bot.flows.report import (
    URGENCY,
    URGENT,
    alert_ward_staff,
    say_alerted,
    urgency_name,
)
from bot.i18n import N_, Translator
from bot.messages import Outgoing
from bot.turn import Turn
from storage import reports as store
from storage.models import Report, ReportStatus, Unit

log = logging.getLogger(__name__)

LISTED = 10
PEOPLE, NOTE, URGENCY_CHANGE, RESOLVE = "people", "note", "urgency", "resolve"
NEXT_STEP = {PEOPLE: "people", NOTE: "note", URGENCY_CHANGE: "urgent", RESOLVE: "resolution"}


def age(t: Translator, created: datetime, now: datetime) -> str:
    minutes = max(0, int((now - created).total_seconds() // 60))
    if minutes < 1:
        return t("just now")
    if minutes < 60:
        return t.plural("{n} minute ago", "{n} minutes ago", minutes)
    if minutes < 48 * 60:
        return t.plural("{n} hour ago", "{n} hours ago", minutes // 60)
    return t.plural("{n} day ago", "{n} days ago", minutes // (24 * 60))


def label(turn: Turn, report: Report) -> str:
    """'⚠ Confirmed case (F0) · 12 Lê Lợi · 5 minutes ago' (⚠ for an urgent one)."""
    category = store.category_label(report.category, turn.locale)
    text = " · ".join((category, report.household.code, age(turn.t, report.created_at,
                                                             turn.now)))
    return f"⚠ {text}" if report.urgent else text


async def _report_options(turn: Turn) -> Sequence[Option]:
    # The value carries the label, so later questions can name the report without a query.
    listed = await store.open_in_scope(turn.session, scope(turn), LISTED)
    return [Option(f"{report.id}:{label(turn, report)}", label(turn, report), literal=True)
            for report in listed]


async def _picked(turn: Turn, value: Any) -> None:
    report_id, _, text = str(value or "").partition(":")
    turn.data["report_id"], turn.data["report_label"] = int(report_id), text


async def _current(turn: Turn) -> Report | None:
    return await store.get_in_scope(turn.session, int(turn.data["report_id"]), scope(turn))


async def _members(turn: Turn) -> int:
    report = await _current(turn)
    return report.household.members if report is not None else 1


async def _summary(turn: Turn) -> str:
    data, t = turn.data, turn.t
    lines = [t("Report: {report}", report=data["report_label"])]
    report = await _current(turn)
    action = data["action"]
    if action == PEOPLE:
        before = t.number(report.people_count) if report else "?"
        lines.append(t("People concerned: {before} → {after}", before=before,
                       after=t.number(data["people"])))
    elif action == NOTE:
        lines.append(t("New note: {note}", note=data["note"]))
    elif action == URGENCY_CHANGE:
        lines.append(t("Urgency: {urgency}", urgency=urgency_name(t, data["urgent"] == URGENT)))
    else:
        lines.append(t("Resolve it. Closing note: {note}",
                       note=data.get("resolution") or "—"))
    return "\n".join(lines)


async def _finish(turn: Turn) -> None:
    report = await _current(turn)
    if report is None:
        log.info("report change refused for account %s: out of scope", turn.account.id)
        turn.say(turn.t("That report is not in your area (or no longer), so nothing was "
                        "changed."))
        return
    if report.status != ReportStatus.OPEN:
        turn.say(turn.t("Report #{id} was already resolved; nothing was changed.",
                        id=report.id))
        return
    await _apply(turn, report, turn.data["action"])


async def _tell_taker(turn: Turn, report: Report, resolver_id: int | None) -> None:
    """The ward staff member who took the urgent report hears that it is closed, and by
    whom: they would otherwise go on handling it (found by a new-user trial)."""
    taker = report.assigned_to_person_id
    if taker is None or taker == resolver_id:
        return
    who = turn.person.full_name if turn.person else "—"
    note = turn.data.get("resolution")
    unit = await turn.session.get(Unit, report.unit_id)
    where = unit.name if unit is not None else ""

    def render(t: Translator) -> Outgoing:
        text = t("Report #{id} ({household}, {unit}), which you took, was resolved by "
                 "{name}.", id=report.id, household=report.household.code, unit=where,
                 name=who)
        if note:
            text += "\n" + t("Closing note: {note}", note=note)
        return Outgoing(text=text)

    await notify.notify_people(turn.session, turn.settings, [taker], render)


async def _apply(turn: Turn, report: Report, action: str) -> None:
    person_id = turn.person.id if turn.person else None
    if action == RESOLVE:
        await store.resolve(turn.session, report, person_id=person_id, now=turn.now,
                            note=turn.data.get("resolution"))
        turn.say(turn.t("Report #{id} is resolved. Thank you.", id=report.id))
        await _tell_taker(turn, report, person_id)
        return
    if action == PEOPLE and turn.data["people"] > report.household.members:
        turn.say(turn.t("That is more people than the household has; nothing was changed."))
        return
    was_urgent = report.urgent
    await store.update(turn.session, report, person_id=person_id, now=turn.now,
                       people_count=turn.data.get("people") if action == PEOPLE else None,
                       note=turn.data.get("note") if action == NOTE else None,
                       urgent=turn.data["urgent"] == URGENT if action == URGENCY_CHANGE
                       else None)
    log.info("report %s updated (%s) by account %s", report.id, action, turn.account.id)
    turn.say(turn.t("Report #{id} is updated.", id=report.id))
    if report.urgent and not was_urgent:  # newly urgent: the ward must hear of it now
        say_alerted(turn, await alert_ward_staff(turn, report, report.household,
                                                 report.category))


FLOW = register(Flow(
    name="open_reports",
    title=N_("the open reports"),
    steps=(
        Step("report", "choice", N_("Open reports in your area, newest first. Which one?"),
             options=_report_options, on_answer=_picked),
        Step("action", "choice", N_("{report_label}\nWhat would you like to do?"), options=(
            Option(PEOPLE, N_("Change the number of people")),
            Option(NOTE, N_("Replace the note")),
            Option(URGENCY_CHANGE, N_("Change the urgency")),
            Option(RESOLVE, N_("Mark as resolved"))),
            goes_to=tuple(NEXT_STEP.values()), next=lambda data: NEXT_STEP[data["action"]]),
        Step("people", "number", N_("How many people are concerned now ({min} to {max})?"),
             minimum=1, maximum=_members, goes_to=("confirm",)),
        Step("note", "text", N_("Type the new note (up to {max_length} characters)."),
             max_length=store.NOTE_LIMIT, goes_to=("confirm",)),
        Step("urgent", "choice", N_("How urgent is it now?"), options=URGENCY,
             goes_to=("confirm",)),
        Step("resolution", "text", N_("A closing note, if you want (up to {max_length} "
                                      "characters)."),
             max_length=store.NOTE_LIMIT, optional=True, goes_to=("confirm",)),
        Step("confirm", "confirm", N_("Save this change?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    """/open: nothing to ask when nothing is open."""
    if not await store.open_in_scope(turn.session, scope(turn), 1):
        turn.say(turn.t("There are no open reports in your area."))
        return
    await engine.begin(turn, FLOW)
