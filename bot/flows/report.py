"""/report: a household situation report, from picking the household to the urgent alert.

household (recent, search or new) → category → people concerned → note → confirm: six answers
with the command. The urgency is the situation's own (F0 is urgent in the catalogue) unless the
one-message report said otherwise, and the confirmation offers the other as a second Save
button; a photo is sent at the confirmation (or with the note) rather than asked for.
Nothing is written before the confirmation; then the report, the household when it is new,
the day's check-in and the ward staff's alert commit in the turn's one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bot import notify
from bot.flows import engine, quick_report
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.household_pick import (
    MATCHES,
    SHORT,
    confirm_lines,
    household_members,
    label_of,
    pick_household_steps,
    resolve_household,
    scope,
    settled,
)
from bot.handlers.access import WRITERS, refuse
from bot.i18n import N_, Translator
from bot.messages import URGENT_ALERT, Button, Outgoing
from bot.turn import Turn
from storage import households, outbox, units
from storage import reports as store
from storage.households import MAX_CODE
from storage.models import Household, Person, Report, ReportCategory, Role, Unit

log = logging.getLogger(__name__)

ROLES = WRITERS
NORMAL, URGENT = "normal", "urgent"
SEARCHED_RUNS = 3  # a one-message report names its household early; the rest is the note
URGENCY = (Option(NORMAL, N_("Normal")), Option(URGENT, N_("Urgent")))
ALONE = 1  # the people concerned in a household of one, without asking
TYPED_URGENCY = "urgency_typed"  # what a one-message report said ("khẩn"), over the default


# --- shared with /open -----------------------------------------------------------------------

async def category_options(turn: Turn) -> Sequence[Option]:
    """The city's situations and the person's ward's own; their aliases ("F0", "thieu an")
    typed choose them too."""
    entries = await store.categories(turn.session, within=scope(turn))
    # Held for the turn: the session's identity map keeps rows only while something refers
    # to them, and the situation's own lookup after the tap (_record_category, by key) then
    # finds its row there instead of reading it again.
    turn.looked_up[category_options] = entries
    return [Option(entry.key, store.category_label(entry, turn.locale), literal=True,
                   aliases=tuple(entry.aliases or ()))
            for entry in entries]


async def category_name(turn: Turn, key: str) -> str:
    entry = await store.category(turn.session, key)
    return store.category_label(entry, turn.locale) if entry is not None else key


def urgency_name(t: Translator, urgent: bool) -> str:
    return t("Urgent") if urgent else t("Normal")


# The alert's buttons: "al:<report id>:t|v|c" (take it, view the report, the leader's phone),
# answered by bot.handlers.alerts; on Zalo, the numbered list's numbers and words.
ALERT_BUTTON = "al"
TAKE, VIEW, CALL = "t", "v", "c"


def alert_buttons(t: Translator, report: Report, phone_known: bool) -> tuple[Button, ...]:
    payload = f"{ALERT_BUTTON}:{report.id}:"
    buttons = [Button(t("I'm on it"), payload + TAKE), Button(t("View"), payload + VIEW)]
    if phone_known:  # "Call" only where there is a number to give
        buttons.append(Button(t("Call"), payload + CALL))
    return tuple(buttons)


async def alert_ward_staff(turn: Turn, report: Report, household: Household,
                           entry: ReportCategory) -> int:
    """Tell every ward staff member over the household's unit, each in their language.

    Queued in this turn's transaction: the alert exists exactly when the report does. Its
    first line says what and where at a glance (a phone's notification shows only that);
    it carries the buttons to take it, view it and call the leader, and the URGENT_ALERT
    flag that styles it in the web chat.
    """
    unit = await turn.session.get(Unit, household.unit_id)
    assert unit is not None
    recipients = set(await notify.holders_over(turn.session, unit, Role.WARD_STAFF))
    recipients.discard(turn.person.id if turn.person else -1)  # not to the one filing it
    path = await units.full_path(turn.session, unit)
    reporter = turn.person.full_name if turn.person else ""
    leader = (await turn.session.get(Person, report.created_by_person_id)
              if report.created_by_person_id is not None else None)
    phone_known = bool(leader is not None and leader.active and leader.phone)

    def render(t: Translator) -> Outgoing:
        lines = [t("🚨 URGENT · report #{id}: {category}, {people}", id=report.id,
                   category=store.category_label(entry, t.locale),
                   people=t.plural("{n} person", "{n} people", report.people_count)),
                 path, t("Household: {code}", code=household.code)]
        if report.note:
            lines.append(t("Note: {note}", note=report.note))
        if report.photo:
            lines.append(t("A photo is attached to the report."))
        lines.append(t("Reported by {name}, {time}.", name=reporter,
                       time=t.datetime(report.created_at)))
        return Outgoing(text="\n".join(lines), buttons=alert_buttons(t, report, phone_known),
                        extra={URGENT_ALERT: True})

    return await notify.notify_people(turn.session, turn.settings, recipients, render,
                                      priority=outbox.INTERACTIVE)


def say_alerted(turn: Turn, count: int) -> None:
    if count:
        turn.say(turn.t.plural("The ward staff have been alerted ({n} person).",
                               "The ward staff have been alerted ({n} people).", count))
    else:
        turn.say(turn.t("No ward staff member is registered for this ward yet, so nobody "
                        "was alerted: please phone the ward."))


# --- the flow --------------------------------------------------------------------------------

async def _summary(turn: Turn) -> str:
    data, t = turn.data, turn.t
    lines = [t("Please check the report:"), *await confirm_lines(turn),
             t("Situation: {category}", category=await category_name(turn, data["category"])),
             t("People concerned: {people}", people=t.number(data["people"])),
             t("Urgency: {urgency}", urgency=urgency_name(t, data["urgency"] == URGENT)),
             t("Note: {note}", note=data.get("note") or "—"),
             t("Photo: {photo}", photo=t("attached") if data.get("photo")
               else t("none (send one now if it helps)"))]
    warning = await _already_urgent(turn)
    if warning:
        lines.insert(1, warning)
    return "\n".join(lines)


DUPLICATE_WINDOW = timedelta(hours=24)


async def _already_urgent(turn: Turn) -> str | None:
    """Found by a new-user trial: the same household reported urgent twice within a short
    time raised two alerts with no warning. The confirmation now names the open one."""
    household_id = turn.data.get("household_id")
    if turn.data.get("urgency") != URGENT or household_id is None:
        return None
    earlier = await store.open_urgent_for(turn.session, int(household_id), scope(turn),
                                          turn.now - DUPLICATE_WINDOW)
    if earlier is None:
        return None
    return turn.t("⚠ This household already has an open urgent report, #{id}, from {when}. "
                  "If it is the same emergency, cancel and update that one with /open.",
                  id=earlier.id, when=turn.t.datetime(earlier.created_at, now=turn.now))


async def _record_category(turn: Turn, key: Any) -> None:
    """The urgency: as the one-message report typed it, else the situation's own."""
    typed = turn.data.get(TYPED_URGENCY)
    if typed is None:
        entry = await store.category(turn.session, str(key))
        typed = URGENT if entry is not None and entry.urgent else NORMAL
    turn.data["urgency"] = typed
    # A household of one: "how many are concerned (1 to 1)?" has one answer, so it is not
    # asked (found by a new-user trial: a one-message report took 3 answers, not 2).
    if await household_members(turn) == 1:
        turn.data["people"] = ALONE
    elif turn.data.get("people") == ALONE:
        del turn.data["people"]  # the household was changed since: ask


def _after_category(data: Mapping[str, Any]) -> str:
    return "note" if data.get("people") == ALONE else "people"


SAVE_URGENT_WORDS = ("khan", "gap", "urgent", "bao khan", "luu khan")
SAVE_WORDS = ("luu", "save", "gui", "send")


async def _other_urgency(turn: Turn) -> Sequence[Option]:
    """Two Save buttons, the situation's own urgency first: one tap either way, and each
    says whether the ward staff are alerted ("khẩn" typed is the urgent one)."""
    urgent = Option(URGENT, N_("🚨 Save as URGENT"), aliases=SAVE_URGENT_WORDS)
    if turn.data.get("urgency") == URGENT:
        return (Option("yes", urgent.label, aliases=(*urgent.aliases, *SAVE_WORDS)),
                Option(NORMAL, N_("Save as not urgent"), aliases=("khong khan", "thuong")))
    return Option("yes", N_("Save"), aliases=SAVE_WORDS), urgent


async def _record_confirm(turn: Turn, value: Any) -> None:
    if value in (URGENT, NORMAL):  # the second Save: the other urgency
        turn.data["urgency"] = value


async def _finish(turn: Turn) -> None:
    household = await resolve_household(turn)
    if household is None:
        return  # refused, and the person was told why
    entry = await store.category(turn.session, turn.data["category"])
    people = int(turn.data["people"])
    unit = await turn.session.get(Unit, household.unit_id)
    if entry is None or unit is None or not store.category_offered(entry, unit):
        turn.say(turn.t("That category is no longer offered; nothing was saved. "
                        "Please send /report again."))
        return
    if people > household.members:  # the record existed already, with fewer members
        turn.say(turn.t.plural("That household has {n} member, fewer than the people you "
                               "reported; nothing was saved. Please send /report again.",
                               "That household has {n} members, fewer than the people you "
                               "reported; nothing was saved. Please send /report again.",
                               household.members))
        return
    report = await store.create(
        turn.session, household=household, category_key=entry.key, people_count=people,
        urgent=turn.data["urgency"] == URGENT, note=turn.data.get("note"),
        photo=turn.data.get("photo"), person_id=turn.person.id if turn.person else None,
        now=turn.now)
    await _record_check_ins(turn, household)
    log.info("report %s filed on unit %s by account %s (urgent=%s)", report.id,
             report.unit_id, turn.account.id, report.urgent)
    turn.say(turn.t("Saved: report #{id}. It stays open until it is resolved (/open).",
                    id=report.id))
    if report.urgent:
        say_alerted(turn, await alert_ward_staff(turn, report, household, entry))


async def _record_check_ins(turn: Turn, household: Household) -> None:
    """Today's check-in becomes "reported" for each unit on the household's path that the
    filer leads themself (storage.reports.reported_check_ins): the quarter's head filing for
    one of its groups has reported for the quarter, not for the group."""
    unit = await turn.session.get(Unit, household.unit_id)
    assert unit is not None
    await store.reported_check_ins(turn.session, unit, store.local_day(turn.now, turn.settings.tz),
                                   turn.person.id if turn.person else None, turn.now)


FLOW = register(Flow(
    name="report",
    title=N_("the household report"),
    steps=(
        *pick_household_steps(after="category"),
        Step("category", "choice", N_("What is the situation of {hh_short}?"),
             options=category_options, on_answer=_record_category,
             goes_to=("people", "note"), next=_after_category),
        Step("people", "number", N_("How many people in the household are concerned "
                                    "({min} to {max})?"),
             minimum=1, maximum=household_members),
        Step("note", "text", N_("Add a note for the ward (up to {max_length} characters), "
                                "or send a photo."),
             max_length=store.NOTE_LIMIT, optional=True, attach="photo"),
        Step("confirm", "confirm", N_("Save this report? An urgent one alerts the ward staff "
                                      "at once. (A note or a photo sent now is added.)"),
             summary=_summary, options=_other_urgency, on_answer=_record_confirm,
             attach="photo", text_to="note", max_length=store.NOTE_LIMIT),
    ),
    finish=_finish,
))


async def start(turn: Turn, text: str = "") -> None:
    """/report, "Report a household" from the daily check-in, or `/report 12 Lê Lợi F0 …`:
    the whole report in one message, prefilled (bot/flows/quick_report.py)."""
    if not scope(turn):
        refuse(turn, "/report", ROLES)
        return
    if text.strip() and await quick(turn, text, asked=True):
        return
    await engine.begin(turn, FLOW)


async def begin_for(turn: Turn, household: Household) -> None:
    """/report with the household already picked (a search result's Report button)."""
    await engine.begin(turn, FLOW, at="category", data=await settled(turn, household))


async def quick(turn: Turn, text: str, *, asked: bool) -> bool:
    """Open the report prefilled from one message; False when the text is no report.

    Typed after /report (`asked`), any text is a report draft. Typed outside any question,
    it is one only when it names a situation: "chào" or "12 Lê Lợi" alone are not, and get
    the usual help. Either way nothing is saved before the ordinary confirmation.
    """
    if not scope(turn):
        return False
    entries = await store.categories(turn.session, within=scope(turn))
    reading = quick_report.read(text, [
        quick_report.Situation(entry.key, (entry.label_vi, entry.label_en),
                               tuple(entry.aliases or ())) for entry in entries])
    if not asked and reading.category is None:
        return False
    at, data, answers, notes = await _household_prefill(turn, reading.runs)
    if at == "hh_pick" and not reading.found_anything:
        return False  # "/report chào": the guided form, not a note saying "chào"
    if reading.category is not None:
        answers["category"] = reading.category
    if reading.people is not None:
        answers["people"] = str(reading.people)
    urgent = reading.urgent  # None: the situation's own, when the category is answered
    if urgent is not None:
        data[TYPED_URGENCY] = URGENT if urgent else NORMAL
    note = " — ".join(part for part in (*notes, reading.note or "") if part)
    answers["note"] = note or None  # too long: the note step refuses it, with the reason
    log.info("one-message report opened by account %s (found: category=%s people=%s "
             "urgent=%s household=%s)", turn.account.id, reading.category is not None,
             reading.people is not None, urgent is not None, at)
    await engine.begin(turn, FLOW, at=at, data=data, answers=answers)
    return True


async def _household_prefill(turn: Turn, runs: Sequence[str]
                             ) -> tuple[str, dict[str, Any], dict[str, str | None], list[str]]:
    """Where the flow starts and what is settled: the first run of words that names
    households in scope picks them (one: settled; several: the usual pick among them); when
    none does, a run that starts with a digit is a new household's code to add; the other
    runs go to the note."""
    notes = list(runs)
    for index, run in enumerate(runs[:SEARCHED_RUNS]):
        found = await households.search(turn.session, scope(turn), run[:MAX_CODE], MATCHES)
        if not found:
            continue
        del notes[index]
        if len(found) == 1:
            with_unit = (await households.count_units(turn.session, scope(turn)))[0] > 1
            label = label_of(turn.t, found[0], with_unit)
            return "category", {"household_id": found[0].id, "hh_label": label,
                                SHORT: found[0].code}, {}, notes
        return ("hh_match", {"hh_query": run[:MAX_CODE], "hh_matches": [h.id for h in found]}, {},
                notes)
    if notes and notes[0][:1].isdigit():
        return ("hh_none", {"hh_query": notes[0][:MAX_CODE], "hh_matches": []},
                {"hh_code": notes[0]}, notes[1:])
    return "hh_pick", {}, {}, notes
