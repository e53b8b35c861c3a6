"""/schedule: see and change a ward's daily times (check-in question, reminder, digest, days).

ward (asked only of someone who covers several) → what to change (each option shows today's
effective value) → the new time, or every day / Monday to Friday → confirm with the whole
schedule as it will be. A time that cannot work (no time of day, a reminder before the question,
a digest before the reminder) is refused at its step with the reason.

Admins change any ward within their units, ward staff their own ward only; the ward is checked
again when saving, in case a role ended while the conversation was open. A running scheduler
reads schedules at every minute's tick, so the change needs no restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bot.flows import engine
from bot.flows.engine import BadAnswer, Flow, Option, Step, register
from bot.handlers.access import STAFF, refuse
from bot.i18n import N_, Translator
from bot.turn import Turn
from storage import schedules
from storage.models import Unit
from storage.schedules import CLEAR, Change, ScheduleError, Times
from wording import fold, when

log = logging.getLogger(__name__)

NAME = "schedule"
ROLES = STAFF
DAYS = "days"
EVERY_DAY, WEEKDAYS = "every", "weekdays"
# What a person types to go back to the city-wide default, matched folded.
DEFAULT_WORDS = {"default", "mac dinh"}


# --- whose schedule --------------------------------------------------------------------------

async def wards_in_scope(turn: Turn) -> list[Unit]:
    """The wards the person may schedule: those within (or being) the units they hold an
    admin or ward staff role on, and the ward around such a unit below a ward."""
    roots = [grant.unit for grant in turn.grants if grant.role in ROLES]
    found = {ward.id: ward for ward in await schedules.wards(turn.session, roots)}
    for root in roots:
        ward = await schedules.ward_of(turn.session, root)
        if ward is not None:
            found.setdefault(ward.id, ward)
    return sorted(found.values(), key=lambda ward: ward.path)


async def _ward(turn: Turn) -> Unit:
    ward = await turn.session.get(Unit, int(turn.data["ward"]))
    assert ward is not None  # offered from the person's wards a moment ago
    return ward


async def _times(turn: Turn) -> Times:
    return await schedules.schedule_of(turn.session, turn.settings, await _ward(turn))


# --- what the person sees --------------------------------------------------------------------

def days_text(t: Translator, weekdays_only: bool) -> str:
    return t("Monday to Friday") if weekdays_only else t("every day")


def describe(t: Translator, ward_name: str, times: Times) -> str:
    """The ward's schedule, one line a run, in the order they happen."""
    return "\n".join((
        t("Daily schedule of {ward}:", ward=ward_name),
        t("• Check-in question: {time}", time=times.prompt_at),
        t("• Reminder to units that have not answered: {time}", time=times.reminder_at),
        t("• Units still silent, to ward staff: {time}", time=times.escalation_at),
        t("• Digest to ward staff: {time}", time=times.digest_at),
        t("• Days: {days}", days=days_text(t, times.weekdays_only)),
    ))


async def _ward_options(turn: Turn) -> Sequence[Option]:
    return [Option(str(ward.id), ward.name, literal=True, aliases=(ward.code,))
            for ward in await wards_in_scope(turn)]


async def _field_options(turn: Turn) -> Sequence[Option]:
    """What can change, each with its value now, so the question also shows the schedule."""
    t, times = turn.t, await _times(turn)
    return [
        Option("prompt_at", t("Check-in question: {time}", time=times.prompt_at), literal=True),
        Option("reminder_at", t("Reminder: {time}", time=times.reminder_at), literal=True),
        Option("digest_at", t("Digest: {time}", time=times.digest_at), literal=True),
        Option(DAYS, t("Days: {days}", days=days_text(t, times.weekdays_only)), literal=True),
    ]


# --- the answers -----------------------------------------------------------------------------

def _time_answer(text: str) -> str | None:
    """'7h30' -> '07:30'; 'default' -> CLEAR; None when it is no time."""
    if fold(text).strip(" .'\"") in DEFAULT_WORDS:
        return CLEAR
    return schedules.parse_time(text)


def change_of(data: dict[str, Any]) -> Change:
    field = str(data["field"])
    if field == DAYS:
        return Change(weekdays_only=data[DAYS] == WEEKDAYS)
    value = _time_answer(str(data[field]))
    return Change(**{field: value})


async def _valid_time(turn: Turn, text: Any) -> str | None:
    """Refuse what is no time, or a time that would put the runs out of order."""
    value = _time_answer(str(text))
    if value is None:
        try:
            when.clock(str(text))
        except when.WhenError as problem:  # why, when it is more than unreadable
            if problem.msgid is not None:
                raise BadAnswer(problem.msgid, **problem.values) from None
        return schedules.TIME_EXAMPLE
    field = str(turn.data["field"])
    preview = schedules.with_change(await _times(turn), turn.settings, Change(**{field: value}))
    try:
        schedules.check(preview)
    except ScheduleError as problem:
        return str(problem)
    return None


async def _summary(turn: Turn) -> str:
    ward = await _ward(turn)
    preview = schedules.with_change(await _times(turn), turn.settings, change_of(turn.data))
    return describe(turn.t, ward.name, preview)


async def _finish(turn: Turn) -> None:
    ward = await _ward(turn)
    if ward.id not in {w.id for w in await wards_in_scope(turn)}:
        refuse(turn, "/schedule", ROLES)
        return
    try:
        times = await schedules.set_schedule(turn.session, turn.settings, ward,
                                             change_of(turn.data))
    except ScheduleError as problem:  # changed meanwhile by someone else into a clash
        turn.say(turn.t(str(problem)) + "\n" + turn.t("Nothing was changed."))
        return
    log.info("schedule of ward %s changed by account %s", ward.id, turn.account.id)
    turn.say(turn.t("Saved. From the next minute on:") + "\n" + describe(turn.t, ward.name,
                                                                           times))


def _time_step(key: str, prompt: str) -> Step:
    return Step(key, "text", prompt, max_length=20, validate=_valid_time,
                goes_to=("confirm",))


FLOW = register(Flow(
    name=NAME,
    title=N_("the schedule change"),
    steps=(
        Step("ward", "choice", N_("Which ward's schedule?"), options=_ward_options),
        Step("field", "choice", N_("What do you want to change?"), options=_field_options,
             goes_to=("prompt_at", "reminder_at", "digest_at", DAYS),
             next=lambda data: str(data["field"])),
        _time_step("prompt_at", N_("New time for the check-in question to leaders? "
                                   "Write HH:MM, e.g. 16:30, or 'default' for the city-wide "
                                   "time.")),
        _time_step("reminder_at", N_("New time for the reminder to units that have not "
                                     "answered? Write HH:MM, e.g. 18:00, or 'default' for "
                                     "the city-wide time.")),
        _time_step("digest_at", N_("New time for the digest to ward staff? Write HH:MM, e.g. "
                                   "19:30, or 'default' for the city-wide time.")),
        Step(DAYS, "choice", N_("On which days?"), options=(
            Option(EVERY_DAY, N_("Every day")),
            Option(WEEKDAYS, N_("Monday to Friday")))),
        Step("confirm", "confirm", N_("Save this schedule?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    """/schedule: straight to what to change when the person covers one ward."""
    wards = await wards_in_scope(turn)
    if not wards:
        turn.say(turn.t("There is no ward, commune or special zone in your area to schedule."))
        return
    await engine.begin(turn, FLOW, first_answer=str(wards[0].id) if len(wards) == 1 else None)
