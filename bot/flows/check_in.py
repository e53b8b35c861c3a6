"""The daily check-in answer: "no change today" in one tap (one number on Zalo), or /report.

The prompt carries "ck:<unit>:n|r" buttons, handled outside any flow, so a tap works whatever
the person is doing. Zalo has no buttons: "1" only means something to an open flow, so where
the channel cannot show buttons the sender also opens this one-step flow at its "answer"
question. Both ways end in `answer_check_in`, and answering twice a day is harmless: the day's
row is upserted and "reported" wins over "no change".
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.report import start as start_report
from bot.handlers.access import LEADERS, refuse
from bot.i18n import N_, Translator, pick_locale
from bot.messages import EDIT, KEYBOARD_ONLY, Button, Outgoing, id_and_action
from bot.settings import Settings
from bot.turn import Turn
from storage import conversations, outbox, people, schedules
from storage import reports as store
from storage.conversations import empty_history
from storage.models import ChatAccount, Conversation, Person, Platform, Role, Unit

log = logging.getLogger(__name__)

NAME = "check_in"
BUTTON = "ck"
NO_CHANGE, REPORT = "n", "r"
PROMPT = N_("Any change in your area today?")
# Channels that show a numbered list instead of buttons: there a reply is a flow's answer.
TEXT_ONLY = frozenset({Platform.ZALO.value})


def check_in_prompt(t: Translator, unit_id: int, unit_name: str | None = None) -> Outgoing:
    """The daily question with its two answers; unit_name heads it for people with several."""
    text = t(PROMPT)
    if unit_name:
        text = t("Daily check-in — {unit}", unit=unit_name) + "\n" + text
    return Outgoing(text=text, buttons=(
        Button(t("No change today"), f"{BUTTON}:{unit_id}:{NO_CHANGE}"),
        Button(t("Report a household"), f"{BUTTON}:{unit_id}:{REPORT}"),
    ))


def leader_units(turn: Turn) -> list[Unit]:
    return [grant.unit for grant in turn.grants if grant.role == Role.LEADER]


async def _unit_options(turn: Turn) -> Sequence[Option]:
    return [Option(str(unit.id), unit.name, literal=True) for unit in leader_units(turn)]


async def _finish(turn: Turn) -> None:
    await answer_check_in(turn, int(turn.data["unit"]), turn.data["answer"])


FLOW = register(Flow(
    name=NAME,
    title=N_("the daily check-in"),
    quiet_lapse=True,
    steps=(
        # Asked only by /checkin from someone who leads several units; otherwise the flow is
        # opened at "answer" with the unit already known (open_at_answer).
        Step("unit", "choice", N_("Which unit are you answering for?"), options=_unit_options),
        Step("answer", "choice", PROMPT, options=(
            Option(NO_CHANGE, N_("No change today")),
            Option(REPORT, N_("Report a household")))),
    ),
    finish=_finish,
))


# --- answering -------------------------------------------------------------------------------

async def answer_check_in(turn: Turn, unit_id: int, answer: str) -> None:
    """Record the answer for the unit's local day, or go on to /report."""
    if answer == REPORT:
        await start_report(turn)
        return
    unit = await turn.session.get(Unit, unit_id)
    row = None
    if unit is not None and answer == NO_CHANGE and _leads(turn, unit):
        row = await store.answer_check_in(turn.session, unit.id,
                                          store.local_day(turn.now, turn.settings.tz),
                                          turn.person.id if turn.person else None, turn.now)
    if unit is None or row is None:
        # A unit one does not lead answers as a missing one: a forged id reveals no name.
        if unit is not None and answer == NO_CHANGE:
            log.info("refused check-in for unit %s by account %s", unit.id, turn.account.id)
        turn.say(turn.t("This question is no longer open."))
        return
    if row.answer == store.CheckInAnswer.REPORTED:
        turn.say(turn.t("Thank you. A report was already filed for {unit} today, so today "
                        "stays recorded as reported.", unit=unit.name))
        return
    turn.say(turn.t("Thank you: no change recorded for {unit} today.", unit=unit.name))


def _leads(turn: Turn, unit: Unit | None) -> bool:
    """The unit's own leader: leading the quarter above a group does not answer for it
    (storage.reports.answer_check_in, which records the answer, asks the same)."""
    return unit is not None and any(grant.role == Role.LEADER and grant.unit.id == unit.id
                                    for grant in turn.grants)


async def on_button(turn: Turn, payload: str) -> None:
    """A tap on a check-in prompt's button ("ck:<unit>:n|r"), whatever flow is open."""
    parsed = id_and_action(payload, (NO_CHANGE, REPORT))
    if parsed is None:
        turn.say(turn.t("This question is no longer open."))
        return
    unit_id, answer = parsed
    if turn.incoming.message_ref is not None and (  # answered: its buttons go, as a flow's do
            answer == REPORT or _leads(turn, await turn.session.get(Unit, unit_id))):
        turn.say("", extra={EDIT: turn.incoming.message_ref, KEYBOARD_ONLY: True})
    conversation = await engine.current(turn)
    if conversation is not None and conversation.flow == NAME:
        # The tap answers the open check-in itself: close it quietly.
        await turn.session.delete(conversation)
        await turn.session.flush()
    elif conversation is not None and answer == REPORT:
        await engine.abandon(turn, conversation)
    await answer_check_in(turn, unit_id, answer)


# --- asking ----------------------------------------------------------------------------------

async def start(turn: Turn) -> None:
    """/checkin: answer on one's own initiative."""
    led = leader_units(turn)
    if not led:
        refuse(turn, "/checkin", LEADERS)
        return
    if len(led) > 1:
        await engine.begin(turn, FLOW)
        return
    unit = led[0]
    await open_at_answer(turn.session, turn.account, unit.id, turn.now)
    prompt = check_in_prompt(turn.t, unit.id)
    turn.say(prompt.text, prompt.buttons)


async def open_at_answer(session: AsyncSession, account: ChatAccount, unit_id: int,
                         now: datetime) -> bool:
    """Open the check-in at its answer question, unless the account is in another
    conversation (that one is never clobbered). True when it is open now."""
    if await conversations.of_account(session, account.id) is not None:
        return False
    session.add(Conversation(chat_account_id=account.id, flow=NAME, step="answer",
                             question_token=secrets.token_hex(3), data={"unit": str(unit_id)},
                             history=empty_history(), started_at=now, updated_at=now))
    await session.flush()
    return True


async def catch_up(turn: Turn, unit: Unit) -> bool:
    """A leader who joins after today's question went out to their ward gets it with the
    welcome, unless their unit has answered already (another leader, a report): otherwise
    their first day would go unasked, and unanswered. True when it was queued."""
    ward = await schedules.ward_of(turn.session, unit)
    if ward is None or ward.id == unit.id:  # the daily question goes to units below a ward
        return False
    day = store.local_day(turn.now, turn.settings.tz)
    if not await schedules.ran(turn.session, schedules.PROMPT, ward.id,
                               schedules.period_of(day)):
        return False  # it goes out at its time, as to everyone
    if unit.id in await schedules.checked_in(turn.session, [unit.id], day):
        return False
    if turn.account.channel in TEXT_ONLY:  # a number answers it: registration has closed
        await open_at_answer(turn.session, turn.account, unit.id, turn.now)
    message = check_in_prompt(turn.t, unit.id, unit.name)
    # After the turn's own replies, as a directive's card owed to a newcomer: welcome first.
    outbox.reply(turn.session, turn.account, message.to_payload(), outbox.BULK)
    return True


async def send_check_in(session: AsyncSession, settings: Settings, person: Person, unit: Unit,
                        now: datetime, priority: int = outbox.BULK) -> int:
    """Queue the daily prompt to every chat account of the person (the scheduler's call).

    On a text-only channel the answer must reach a flow, so the check-in is opened there; if
    the person is mid-conversation, they are asked to send /checkin afterwards instead of
    getting numbers that would answer the other question. Returns the messages queued.
    """
    accounts = await people.accounts_of(session, person)
    for account in accounts:
        t = Translator(pick_locale(person.locale, account.locale,
                                   default=settings.default_locale), settings.tz)
        message = check_in_prompt(t, unit.id, unit.name)
        if account.channel in TEXT_ONLY and not await open_at_answer(session, account,
                                                                     unit.id, now):
            message = Outgoing(text=t("Daily check-in — {unit}", unit=unit.name) + "\n" + t(
                "When you have finished your current question, send /checkin to tell us "
                "whether anything changed in your area today."))
        outbox.enqueue(session, account, message.to_payload(), priority)
    return len(accounts)
