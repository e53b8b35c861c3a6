"""The urgent alert's buttons, "al:<report id>:t|v|c" (bot.flows.report.alert_buttons).

"Đã nhận xử lý" assigns the report to the ward staff member who tapped it (the first tap
wins, a second is harmless); the leader who reported and the other ward staff are told who
took it, in the same transaction. "Xem" shows the report, "Gọi" the leader's phone number as
text: a Telegram inline button cannot dial, but a number in a message is tappable on
Telegram, Zalo and a phone's browser. On Zalo the alert's numbered list answers the same
(a typed "1" or "da nhan xu ly": bot.handlers.router). Every payload is a stranger's: the
report is looked up in the tapper's own scope, so a forged id, another ward's report or a
leader's tap are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot import notify
from bot.flows.household_pick import initials, scope
from bot.flows.open_reports import age
from bot.flows.report import ALERT_BUTTON, CALL, TAKE, VIEW, alert_buttons, urgency_name
from bot.handlers.access import ALERT_ROLES, NAME_READERS, ROLE_NAMES, permits, reaches, refuse
from bot.handlers.commands import Handlers
from bot.i18n import Translator
from bot.messages import EDIT, KEYBOARD_ONLY, Outgoing, id_and_action
from bot.turn import Turn
from storage import outbox, people, roster, units
from storage import reports as store
from storage.models import Person, Post, Report, ReportStatus, Role, Unit

log = logging.getLogger(__name__)
HANDLERS = Handlers()  # included by bot.handlers.included


@dataclass(frozen=True)
class Who:
    """A person as the others should know them: name, and the post (or role) and unit that
    make them the one to deal with."""

    name: str
    unit: str = ""
    post: Post | None = None
    role: str | None = None

    def describe(self, t: Translator) -> str:
        if self.post is not None:
            title = self.post.label_vi if t.locale == "vi" else self.post.label_en
        elif self.role is not None:
            title = t(ROLE_NAMES[Role(self.role)])
        else:
            return self.name
        return t("{name} ({post}, {unit})", name=self.name, post=title, unit=self.unit)


async def who(turn: Turn, person: Person, unit: Unit) -> Who:
    """The person's post over the report's unit (else their first), else such a role."""
    holdings = [(h.unit_post.unit, h.unit_post.post)
                for h in await roster.holdings_of(turn.session, person)]
    held = [(u, post) for u, post in holdings if units.contains(u, unit)] or holdings
    if held:
        return Who(person.full_name, held[0][0].name, post=held[0][1])
    grants = await people.grants(turn.session, person)
    over = [g for g in grants if units.contains(g.unit, unit)] or grants
    if over:
        return Who(person.full_name, over[0].unit.name, role=over[0].role)
    return Who(person.full_name)


async def on_button(turn: Turn, payload: str) -> None:
    parsed = id_and_action(payload, ACTIONS)
    if parsed is None:
        turn.say(turn.t("This question is no longer open."))
        return
    report_id, action = parsed
    if turn.person is None or not permits(turn, ALERT_ROLES):
        refuse(turn, "an urgent alert", ALERT_ROLES)
        return
    report = await store.get_in_scope(turn.session, report_id, scope(turn, ALERT_ROLES))
    if report is None:  # unknown, or outside every unit the person holds a staff role on
        log.info("alert button %s for report %s refused for account %s: not in scope",
                 action, report_id, turn.account.id)
        turn.say(turn.t("There is no report #{id} in your units.", id=report_id))
        return
    await ACTIONS[action](turn, report)


async def _unit(turn: Turn, report: Report) -> Unit:
    unit = await turn.session.get(Unit, report.unit_id)
    assert unit is not None  # a report's unit is never deleted
    return unit


async def _person(turn: Turn, person_id: int | None) -> Person | None:
    person = await turn.session.get(Person, person_id) if person_id is not None else None
    return person if person is not None and person.active else None


def _about(t: Translator, report: Report) -> str:
    """'Confirmed case (F0) · 12 Lê Lợi': which report, without personal data."""
    return f"{store.category_label(report.category, t.locale)} · {report.household.code}"


# --- "Đã nhận xử lý" -------------------------------------------------------------------------

async def take(turn: Turn, report: Report) -> None:
    assert turn.person is not None
    outcome = await store.take(turn.session, report, turn.person.id, turn.now)
    log.info("alert for report %s taken by account %s: %s", report.id, turn.account.id,
             outcome)
    unit = await _unit(turn, report)
    if outcome is not store.Take.BUSY:
        await _drop_take_button(turn, report)
    if outcome is store.Take.ALREADY_YOURS:
        turn.say(turn.t("You have already taken report #{id}.", id=report.id))
    elif outcome is store.Take.TAKEN_BY_OTHER:
        holder = await turn.session.get(Person, report.assigned_to_person_id)
        assert holder is not None
        taker = await who(turn, holder, unit)
        turn.say(turn.t("Report #{id} is already taken: {who} is handling it.", id=report.id,
                        who=taker.describe(turn.t)))
    elif outcome is store.Take.BUSY:
        turn.say(turn.t("Someone else is taking report #{id} at this moment; tap “{view}” in "
                        "a little while to see who.", id=report.id, view=turn.t("View")))
    elif outcome is store.Take.RESOLVED:
        turn.say(turn.t("Report #{id} is already resolved; there is nothing to take.",
                        id=report.id))
    else:
        await _tell_taken(turn, report, unit)


async def _drop_take_button(turn: Turn, report: Report) -> None:
    """The tapped alert keeps View and Call: taking it again can only be refused."""
    if turn.incoming.message_ref is None:
        return
    leader = await _person(turn, report.created_by_person_id)
    kept = tuple(button for button in alert_buttons(turn.t, report, bool(leader and leader.phone))
                 if not button.payload.endswith(f":{TAKE}"))
    turn.say("", kept, extra={EDIT: turn.incoming.message_ref, KEYBOARD_ONLY: True})


async def _tell_taken(turn: Turn, report: Report, unit: Unit) -> None:
    """The leader who reported and the other ward staff over the unit learn who took it."""
    assert turn.person is not None
    taker = await who(turn, turn.person, unit)
    leader = await _person(turn, report.created_by_person_id)
    staff = set(await notify.holders_over(turn.session, unit, Role.WARD_STAFF))
    staff -= {turn.person.id, report.created_by_person_id}

    def to_leader(t: Translator) -> Outgoing:
        return Outgoing(t("Your urgent report #{id} ({about}) has been taken: {who} is "
                          "handling it.", id=report.id, about=_about(t, report),
                          who=taker.describe(t)))

    def to_staff(t: Translator) -> Outgoing:
        return Outgoing(t("Report #{id} ({about}) is taken: {who} is handling it.",
                          id=report.id, about=_about(t, report), who=taker.describe(t)))

    told = 0
    if leader is not None and leader.id != turn.person.id:
        told = await notify.notify_people(turn.session, turn.settings, [leader.id], to_leader,
                                          priority=outbox.INTERACTIVE)
    reached = {person.id for _, person in await people.active_accounts(turn.session, staff)}
    await notify.notify_people(turn.session, turn.settings, reached, to_staff,
                               priority=outbox.INTERACTIVE)
    lines = [turn.t("You are handling report #{id} ({about}) now.", id=report.id,
                    about=_about(turn.t, report))]
    if told and leader is not None:
        lines.append(turn.t("{name}, who reported it, has been told.", name=leader.full_name))
    if reached:
        lines.append(turn.t.plural("{n} other ward staff member who got the alert has been "
                                   "told.", "{n} other ward staff who got the alert have been "
                                   "told.", len(reached)))
    turn.say("\n".join(lines))


# --- "Xem" -----------------------------------------------------------------------------------

async def view(turn: Turn, report: Report) -> None:
    t = turn.t
    unit = await _unit(turn, report)
    household = report.household
    name = (household.head_name if reaches(turn, unit, NAME_READERS)
            else initials(household.head_name)) or ""
    described = " · ".join(part for part in (
        household.code, name, t.plural("{n} person", "{n} people", household.members)) if part)
    urgency = urgency_name(t, report.urgent)
    lines = [t("Report #{id} ({urgency}), resolved ({age})", id=report.id, urgency=urgency,
               age=age(t, report.resolved_at, turn.now))
             if report.status == ReportStatus.RESOLVED and report.resolved_at is not None
             else t("Report #{id} ({urgency}), open", id=report.id, urgency=urgency),
             await units.full_path(turn.session, unit),
             t("Household: {household}", household=described),
             t("Situation: {category}",
               category=store.category_label(report.category, turn.locale)),
             t("People concerned: {people}", people=t.number(report.people_count)),
             t("Note: {note}", note=report.note or "—")]
    reporter = await _person(turn, report.created_by_person_id)
    filed = age(t, report.created_at, turn.now)
    lines.append(t("Filed {age} by {who}.", age=filed,
                   who=(await who(turn, reporter, unit)).describe(t))
                 if reporter is not None else t("Filed {age}.", age=filed))
    lines.append(await _taken_line(turn, report, unit))
    if report.photo:  # said in words too: a channel that cannot show it still tells of it
        lines.append(t("A photo is attached to the report."))
    log.info("alert for report %s viewed by account %s", report.id, turn.account.id)
    # The photo itself here, not in the alert: a platform's file id another bot cannot send
    # would take the alert down with it, where it only takes this view.
    turn.say("\n".join(lines), photo=report.photo)


async def _taken_line(turn: Turn, report: Report, unit: Unit) -> str:
    holder = await turn.session.get(Person, report.assigned_to_person_id) if (
        report.assigned_to_person_id is not None) else None
    if holder is None or report.assigned_at is None:
        return turn.t("Nobody has taken it yet.")
    if turn.person is not None and holder.id == turn.person.id:
        return turn.t("You took it {age}.", age=age(turn.t, report.assigned_at, turn.now))
    return turn.t("Taken {age} by {who}.", age=age(turn.t, report.assigned_at, turn.now),
                  who=(await who(turn, holder, unit)).describe(turn.t))


# --- "Gọi" -----------------------------------------------------------------------------------

def dialable(phone: str) -> str:
    """'0903123456' -> '+84903123456': the international form, which Telegram marks as a
    phone number (tap to call) as Zalo and phones' browsers do the national one."""
    return f"+84{phone[1:]}" if phone.startswith("0") else phone


async def call(turn: Turn, report: Report) -> None:
    leader = await _person(turn, report.created_by_person_id)
    log.info("alert for report %s: phone asked by account %s (known=%s)", report.id,
             turn.account.id, bool(leader and leader.phone))  # never the number itself
    if leader is None or not leader.phone:
        turn.say(turn.t("No phone number is on record for whoever filed report #{id}.",
                        id=report.id))
        return
    described = (await who(turn, leader, await _unit(turn, report))).describe(turn.t)
    turn.say(turn.t("📞 {who}: {phone}", who=described, phone=dialable(leader.phone)) + "\n"
             + turn.t("Tap the number to call."))


ACTIONS: dict[str, Callable[[Turn, Report], Awaitable[None]]] = {
    TAKE: take, VIEW: view, CALL: call}
HANDLERS.button(ALERT_BUTTON, on_button)
