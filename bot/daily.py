"""What the daily jobs queue for one ward: the check-in question, the reminder, the escalation
to ward staff, and the digest. Each runs inside the scheduler's transaction that also holds
the run's claim, so its messages and the claim commit together or not at all."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import notify
from bot.flows import check_in
from bot.i18n import Translator, pick_locale
from bot.messages import Outgoing
from bot.settings import Settings
from storage import conversations, directives, outbox, people, schedules, units
from storage.db import Database
from storage.models import ChatAccount, Person, Role, Unit
from storage.schedules import DIGEST, ESCALATION, PROMPT, REMINDER

SendDigest = Callable[[Database, Settings, int, date], Awaitable[int]]


@dataclass
class Run:
    """One claimed run: the ward, its local day, and the transaction it writes in."""

    session: AsyncSession
    db: Database
    settings: Settings
    ward: Unit
    day: date
    now: datetime
    send_digest: SendDigest | None = None  # None: bot.digest.send_digest


# --- the check-in question and its reminder -------------------------------------------------

async def prompt(run: Run) -> int:
    """Every active leader below the ward gets the question, once for each unit they lead,
    unless the unit already answered today (/checkin, or a report its own leader filed:
    storage.reports): asking again would only teach them to ignore it. The digest counts
    those answers as on time."""
    queued = 0
    for unit, person in await silent_leaders(run):
        queued += await check_in.send_check_in(run.session, run.settings, person, unit,
                                               run.now)
    return queued


async def silent_leaders(run: Run) -> list[tuple[Unit, Person]]:
    """(unit, leader) for the units that have not answered today."""
    pairs = await schedules.leaders_in(run.session, run.ward)
    answered = await schedules.checked_in(run.session, [unit.id for unit, _ in pairs], run.day)
    return [(unit, person) for unit, person in pairs if unit.id not in answered]


async def remind(run: Run) -> int:
    """Only the leaders of units with no check-in today are asked again."""
    queued = 0
    for unit, person in await silent_leaders(run):
        queued += await send_reminder(run.session, run.settings, person, unit, run.now,
                                      ref=f"reminder:{unit.id}:{run.day.isoformat()}")
    return queued


def reminder_message(t: Translator, unit: Unit) -> Outgoing:
    """The check-in question again, headed as a reminder, with the same one-tap answers."""
    question = check_in.check_in_prompt(t, unit.id)
    heading = t("Reminder: {unit} has not answered today's check-in yet.", unit=unit.name)
    return Outgoing(text=f"{heading}\n{question.text}", buttons=question.buttons)


async def send_reminder(session: AsyncSession, settings: Settings, person: Person, unit: Unit,
                        now: datetime, ref: str | None = None) -> int:
    """Queue the reminder to each of the person's chat accounts; returns the count.

    As with the question itself, on a text-only channel the check-in is opened so that a
    number answers it; another open conversation is never clobbered.
    """
    accounts = await people.accounts_of(session, person)
    for account in accounts:
        t = Translator(pick_locale(person.locale, account.locale,
                                   default=settings.default_locale), settings.tz)
        message = reminder_message(t, unit)
        if account.channel in check_in.TEXT_ONLY and not await _open_check_in(
                session, account, unit.id, now):
            message = Outgoing(text=message.text.split("\n", 1)[0] + "\n" + t(
                "When you have finished your current question, send /checkin to tell us "
                "whether anything changed in your area today."))
        outbox.enqueue(session, account, message.to_payload(), outbox.BULK, ref)
    return len(accounts)


async def _open_check_in(session: AsyncSession, account: ChatAccount, unit_id: int,
                         now: datetime) -> bool:
    """Open the check-in at its answer; an unanswered earlier check-in (today's question) is
    replaced, since it holds nothing but the unit it asks about."""
    open_now = await conversations.of_account(session, account.id)
    if open_now is not None and open_now.flow == check_in.NAME:
        await session.delete(open_now)
        await session.flush()
    return await check_in.open_at_answer(session, account, unit_id, now)


# --- escalation to ward staff ----------------------------------------------------------------

async def escalate(run: Run) -> int:
    """Ward staff get the units still silent after the reminder, with their leaders' names.

    The names go to ward staff in the chat only; logs carry counts and ids.
    """
    silent: dict[int, list[Person]] = {}
    for unit, person in await silent_leaders(run):
        silent.setdefault(unit.id, []).append(person)
    if not silent:
        return 0
    # A leader no chat reaches was never asked nor reminded: staff must phone them.
    reachable = await directives.connected(
        run.session, {person.id for leaders in silent.values() for person in leaders})
    unreachable = sum(person.id not in reachable for leaders in silent.values()
                      for person in leaders)
    names = await _names_in_ward(run.session, run.ward)
    lines = [(names[unit_id], leaders) for unit_id, leaders in silent.items()]
    staff = await notify.holders_over(run.session, run.ward, Role.WARD_STAFF)

    def render(t: Translator) -> Outgoing:
        # "After the reminder" only when every one of them was reminded.
        head = t.plural("{ward}, {day}: {n} unit has not answered the check-in after the "
                        "reminder:",
                        "{ward}, {day}: {n} units have not answered the check-in after the "
                        "reminder:", len(lines), ward=run.ward.name, day=t.date(run.day)
                        ) if not unreachable else t.plural(
            "{ward}, {day}: {n} unit has not answered the check-in:",
            "{ward}, {day}: {n} units have not answered the check-in:", len(lines),
            ward=run.ward.name, day=t.date(run.day))
        def named(person: Person) -> str:
            if person.id in reachable:
                return person.full_name
            return t("{name} (no chat connected)", name=person.full_name)

        body = [t("• {unit} — {leaders}", unit=unit, leaders=", ".join(map(named, leaders)))
                for unit, leaders in lines]
        if unreachable:
            body.append(t.plural("{n} of them has no chat connected: phone them.",
                                 "{n} of them have no chat connected: phone them.",
                                 unreachable))
        return Outgoing(text="\n".join([head, *body]))

    return await notify.notify_people(run.session, run.settings, staff, render,
                                      ref=f"escalation:{run.ward.id}:{run.day.isoformat()}")


async def _names_in_ward(session: AsyncSession, ward: Unit) -> dict[int, str]:
    """Each unit's name from below the ward ('Khu phố 1 › Tổ dân phố 1'): two quarters often
    each have a 'Tổ dân phố 1'."""
    found = {unit.id: unit for unit in await units.subtree(session, ward)}
    names = {}
    for unit in found.values():
        ids = [int(part) for part in unit.path[len(ward.path):].strip("/").split("/") if part]
        names[unit.id] = " › ".join(found[i].name for i in ids if i in found)
    return names


# --- the digest ------------------------------------------------------------------------------

class BoundDatabase(Database):
    """The Database handed to the digest: its read() and transaction() are the run's own open
    transaction, so the digest's messages commit with the claim (and on SQLite the digest
    does not wait for the write lock this transaction already holds)."""

    def __init__(self, db: Database, session: AsyncSession) -> None:
        self.__dict__.update(db.__dict__)
        self._session = session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        yield self._session

    @asynccontextmanager
    async def transaction(self, *, inline: bool = False) -> AsyncIterator[AsyncSession]:
        yield self._session
        await self._session.flush()


def load_digest() -> SendDigest:
    """bot.digest.send_digest, imported when first needed (it carries matplotlib)."""
    module = importlib.import_module("bot.digest")
    send: SendDigest = module.send_digest
    return send


async def digest(run: Run) -> int:
    send = run.send_digest or load_digest()
    return await send(BoundDatabase(run.db, run.session), run.settings, run.ward.id, run.day)


JOBS: dict[str, Callable[[Run], Awaitable[int]]] = {
    PROMPT: prompt, REMINDER: remind, ESCALATION: escalate, DIGEST: digest}
