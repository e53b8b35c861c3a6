"""Directives: who a directive goes to, their acknowledgements and "done" reports, the
reminders owed, and the status counts by unit.

A recipient is one person for one unit they hold the role on, so a person leading two units
answers for each. Delivery figures come from the outbox rows whose ref names the directive.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ChatAccount,
    Directive,
    DirectiveRecipient,
    OutboxMessage,
    OutboxStatus,
    Person,
    RoleAssignment,
    Unit,
)
from storage.units import short_paths
from wording import name_order

MAX_TEXT = 3500
MAX_NOTE = 500  # a unit's note with its "done"
MAX_REMINDERS = 3
# Staff may nudge those still missing by hand, but not more often than this, whoever asks.
REMIND_BY_HAND_EVERY = timedelta(hours=1)
# A chat connected after a send gets the directives still owed of at most this age.
CATCH_UP = timedelta(days=30)
MB = 1024 * 1024
# Bot API limits for uploads by a bot. Zalo's bot API takes photos by URL only, so a file
# from this machine never goes to Zalo (its recipients get a note instead) and has no limit.
TELEGRAM_PHOTO_LIMIT = 10 * MB
TELEGRAM_DOCUMENT_LIMIT = 50 * MB
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
DOCUMENT_SUFFIXES = (".pdf",)


class Refusal(enum.StrEnum):
    """Why a directive was not sent; the caller words it."""

    EMPTY_SCOPE = "empty_scope"
    TOO_LONG = "too_long"
    EMPTY_TEXT = "empty_text"
    PAST_DEADLINE = "past_deadline"
    ATTACHMENT_TYPE = "attachment_type"
    ATTACHMENT_TOO_BIG = "attachment_too_big"


class Press(enum.StrEnum):
    MOVED = "moved"
    ALREADY = "already"  # a double tap, a redelivered number
    NOT_YOURS = "not_yours"


def ref(directive_id: int, unit_id: int) -> str:
    return f"directive:{directive_id}:{unit_id}"


def attachment_kind(filename: str) -> str | None:
    """"photo", "document" (a PDF), or None when the file is neither."""
    name = filename.casefold()
    if name.endswith(PHOTO_SUFFIXES):
        return "photo"
    if name.endswith(DOCUMENT_SUFFIXES):
        return "document"
    return None


def attachment_refusal(filename: str, size: int) -> Refusal | None:
    """A file from this machine, checked against Telegram's upload limits."""
    kind = attachment_kind(filename)
    if kind is None:
        return Refusal.ATTACHMENT_TYPE
    return Refusal.ATTACHMENT_TOO_BIG if size > upload_limit(kind) else None


def upload_limit(kind: str | None) -> int:
    return TELEGRAM_DOCUMENT_LIMIT if kind == "document" else TELEGRAM_PHOTO_LIMIT


async def recipients(session: AsyncSession, scope: Unit, role: str | None
                     ) -> list[tuple[int, int]]:
    """(person id, unit id) for each active holder of the role (any role when None) on a unit
    in the scope's subtree."""
    query = (select(RoleAssignment.person_id, RoleAssignment.unit_id, Unit.path)
             .join(Unit, Unit.id == RoleAssignment.unit_id)
             .join(Person, Person.id == RoleAssignment.person_id)
             .where(Unit.path.startswith(scope.path), RoleAssignment.active.is_(True),
                    Person.active.is_(True))
             .order_by(Unit.path, RoleAssignment.person_id).distinct())
    if role is not None:
        query = query.where(RoleAssignment.role == role)
    return [(person_id, unit_id) for person_id, unit_id, _ in await session.execute(query)]


@dataclass(frozen=True)
class Draft:
    scope: Unit
    role: str | None
    text: str
    attachment: str | None = None  # the stored file's path
    attachment_name: str | None = None
    requires_ack: bool = True
    deadline: datetime | None = None  # UTC
    remind_after_minutes: int = 120


def refusal(draft: Draft, now: datetime) -> Refusal | None:
    if not draft.text.strip():
        return Refusal.EMPTY_TEXT
    if len(draft.text) > MAX_TEXT:
        return Refusal.TOO_LONG
    if draft.deadline is not None and draft.deadline <= now:
        return Refusal.PAST_DEADLINE
    return None


async def create(session: AsyncSession, draft: Draft, person_id: int | None, now: datetime
                 ) -> tuple[Directive, list[DirectiveRecipient]] | Refusal:
    """The directive and its recipients, or why not (nothing written then)."""
    problem = refusal(draft, now)
    if problem is not None:
        return problem
    found = await recipients(session, draft.scope, draft.role)
    if not found:
        return Refusal.EMPTY_SCOPE
    directive = Directive(scope_unit_id=draft.scope.id, role=draft.role, text=draft.text,
                          attachment=draft.attachment, attachment_name=draft.attachment_name,
                          requires_ack=draft.requires_ack, deadline=draft.deadline,
                          remind_after_minutes=draft.remind_after_minutes,
                          created_by_person_id=person_id, created_at=now)
    session.add(directive)
    await session.flush()
    rows = [DirectiveRecipient(directive_id=directive.id, person_id=person, unit_id=unit,
                               reminders=0) for person, unit in found]
    session.add_all(rows)
    await session.flush()
    return directive, rows


async def recipient(session: AsyncSession, directive_id: int, unit_id: int, person_id: int
                    ) -> DirectiveRecipient | None:
    query = select(DirectiveRecipient).where(
        DirectiveRecipient.directive_id == directive_id, DirectiveRecipient.unit_id == unit_id,
        DirectiveRecipient.person_id == person_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def press(session: AsyncSession, entry: DirectiveRecipient, action: str, now: datetime,
                note: str | None = None) -> Press:
    """"a" acknowledges; "d" reports the unit done (for every recipient on that unit)."""
    if action == "a":
        if entry.acknowledged_at is not None:
            return Press.ALREADY
        entry.acknowledged_at = now
        return Press.MOVED
    if entry.done_at is not None:
        return Press.ALREADY
    query = select(DirectiveRecipient).where(
        DirectiveRecipient.directive_id == entry.directive_id,
        DirectiveRecipient.unit_id == entry.unit_id).with_for_update()
    for row in (await session.execute(query)).scalars():
        row.done_at, row.done_note = now, note
        row.acknowledged_at = row.acknowledged_at or (now if row.id == entry.id else None)
    return Press.MOVED


async def latest_done(session: AsyncSession, person_id: int) -> DirectiveRecipient | None:
    query = (select(DirectiveRecipient).where(DirectiveRecipient.person_id == person_id,
                                              DirectiveRecipient.done_at.is_not(None))
             .order_by(DirectiveRecipient.done_at.desc(), DirectiveRecipient.id.desc()).limit(1))
    return (await session.execute(query)).scalar_one_or_none()


async def add_done_note(session: AsyncSession, entry: DirectiveRecipient, note: str) -> None:
    """The note is the unit's, like its "done": on every recipient row of that unit."""
    await session.execute(update(DirectiveRecipient).where(
        DirectiveRecipient.directive_id == entry.directive_id,
        DirectiveRecipient.unit_id == entry.unit_id).values(done_note=note))


@dataclass(frozen=True)
class Missing:
    """A recipient who has not acknowledged: whom to phone when `connected` is False (no
    chat account the bot can reach). `phone` as stored, None where unknown: personal data,
    shown to staff in scope, never logged."""

    person_id: int
    name: str
    connected: bool
    phone: str | None = None


@dataclass
class UnitStatus:
    unit_id: int
    code: str
    name: str
    path: str = ""
    label: str = ""  # the shortest path that tells it from the other units listed
    missing: list[Missing] = field(default_factory=list)
    recipients: int = 0
    acknowledged: int = 0
    done: bool = False
    sent: int = 0
    delivered: int = 0
    failed: int = 0

    @property
    def outstanding(self) -> int:
        return self.recipients - self.acknowledged


@dataclass
class Status:
    directive: Directive
    units: list[UnitStatus] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(unit, name)) for unit in self.units)

    def missing(self, *, connected: bool) -> list[Missing]:
        """Those not acknowledged yet whom a chat reaches (a reminder), or not (a call)."""
        return [m for unit in self.units for m in unit.missing if m.connected == connected]


def within(path: str, scope_paths: Sequence[str] | None) -> bool:
    """None means no limit (the command line); otherwise the path lies under one of them."""
    return scope_paths is None or any(path.startswith(scope) for scope in scope_paths)


async def status(session: AsyncSession, directive_id: int,
                 scope_paths: Sequence[str] | None = None) -> Status | None:
    """The directive's counts by unit and who has not acknowledged, or None when there is no
    such directive within the scope (scope_paths None: any, for the command line)."""
    found = (await session.execute(select(Directive, Unit.path).join(
        Unit, Unit.id == Directive.scope_unit_id).where(Directive.id == directive_id))).first()
    if found is None or not within(found[1], scope_paths):
        return None
    directive = found[0]
    result = Status(directive)
    by_unit: dict[int, UnitStatus] = {}
    query = (select(DirectiveRecipient, Unit, Person)
             .join(Unit, Unit.id == DirectiveRecipient.unit_id)
             .join(Person, Person.id == DirectiveRecipient.person_id)
             .where(DirectiveRecipient.directive_id == directive_id)
             .order_by(Unit.path, Person.full_name, Person.id))
    rows = (await session.execute(query)).all()
    reachable = await connected(session, {person.id for _, _, person in rows})
    for entry, unit, person in rows:
        unit_status = by_unit.setdefault(unit.id, UnitStatus(unit.id, unit.code, unit.name,
                                                             unit.path))
        unit_status.recipients += 1
        unit_status.acknowledged += entry.acknowledged_at is not None
        unit_status.done = unit_status.done or entry.done_at is not None
        if pending(directive, entry):
            unit_status.missing.append(Missing(person.id, person.full_name,
                                               person.id in reachable, person.phone))
    sent = (select(OutboxMessage.ref, OutboxMessage.status, func.count())
            .where(OutboxMessage.ref.startswith(f"directive:{directive_id}:"))
            .group_by(OutboxMessage.ref, OutboxMessage.status))
    for row_ref, row_status, count in await session.execute(sent):
        owner = by_unit.get(int(str(row_ref).rsplit(":", 1)[1]))
        if owner is None:
            continue
        owner.sent += count
        owner.delivered += count if row_status == OutboxStatus.SENT else 0
        owner.failed += count if row_status == OutboxStatus.FAILED else 0
    result.units = list(by_unit.values())
    labels = await short_paths(session, [unit.path for unit in result.units])
    for unit_status in result.units:
        unit_status.label = labels[unit_status.path]
    return result


def pending(directive: Directive, entry: DirectiveRecipient) -> bool:
    """Still owed: the acknowledgement, or (a directive that asks none) the unit's "done"."""
    return (entry.acknowledged_at is None) if directive.requires_ack else entry.done_at is None


async def owed_to(session: AsyncSession, person_id: int, now: datetime
                  ) -> Sequence[tuple[Directive, DirectiveRecipient]]:
    """This person's directives still owed, not past their deadline nor older than
    CATCH_UP, oldest first: what a chat they connect now must still show them."""
    query = (select(Directive, DirectiveRecipient)
             .join(DirectiveRecipient, DirectiveRecipient.directive_id == Directive.id)
             .where(DirectiveRecipient.person_id == person_id,
                    Directive.created_at > now - CATCH_UP,
                    or_(Directive.deadline.is_(None), Directive.deadline > now))
             .order_by(Directive.id, DirectiveRecipient.id))
    return [(directive, entry) for directive, entry in (await session.execute(query)).all()
            if pending(directive, entry)]


async def connected(session: AsyncSession, person_ids: set[int]) -> set[int]:
    """Those of these people with a chat account that has not blocked the bot."""
    if not person_ids:
        return set()
    query = select(ChatAccount.person_id).where(ChatAccount.person_id.in_(person_ids),
                                                ChatAccount.blocked_at.is_(None)).distinct()
    return {person_id for person_id in (await session.execute(query)).scalars()
            if person_id is not None}


async def unconnected(session: AsyncSession, person_ids: set[int]) -> list[tuple[int, str]]:
    """(id, name) of those of these people no chat reaches yet (none connected, or all
    blocked the bot), by name: they get the directive when they connect (catch-up)."""
    reachable = await connected(session, person_ids)
    missing = person_ids - reachable
    if not missing:
        return []
    query = (select(Person.id, Person.full_name).where(Person.id.in_(missing))
             .order_by(Person.id))
    return sorted(((person_id, name) for person_id, name in await session.execute(query)),
                  key=lambda row: (*name_order(row[1]), row[0]))


async def last_reminded(session: AsyncSession, directive_id: int) -> datetime | None:
    """When anyone of this directive was last nudged (by the clock or by hand)."""
    query = select(func.max(DirectiveRecipient.reminded_at)).where(
        DirectiveRecipient.directive_id == directive_id)
    return (await session.execute(query)).scalar_one_or_none()


async def to_remind(session: AsyncSession, directive: Directive, now: datetime
                    ) -> Sequence[DirectiveRecipient] | datetime:
    """The recipients still missing, stamped as reminded now; or, when a nudge went out less
    than REMIND_BY_HAND_EVERY ago, the time the next one may go. Locked against a second
    press racing this one."""
    await session.execute(select(Directive.id).where(Directive.id == directive.id)
                          .with_for_update())
    last = await last_reminded(session, directive.id)
    if last is not None and last > now - REMIND_BY_HAND_EVERY:
        return last + REMIND_BY_HAND_EVERY
    query = (select(DirectiveRecipient).where(DirectiveRecipient.directive_id == directive.id)
             .order_by(DirectiveRecipient.id))
    entries = [entry for entry in (await session.execute(query)).scalars()
               if pending(directive, entry)]
    for entry in entries:
        entry.reminded_at = now
    return entries


async def latest(session: AsyncSession, scope_paths: Sequence[str], limit: int = 3
                 ) -> Sequence[Directive]:
    """The newest directives sent to a scope within these units."""
    if not scope_paths:
        return []
    within = [Unit.path.startswith(path) for path in scope_paths]
    query = (select(Directive).join(Unit, Unit.id == Directive.scope_unit_id)
             .where(or_(*within)).order_by(Directive.id.desc()).limit(limit))
    return (await session.execute(query)).scalars().all()


async def due_reminders(session: AsyncSession, now: datetime
                        ) -> Sequence[tuple[DirectiveRecipient, Directive]]:
    """Recipients owed a nudge: not acknowledged after remind_after_minutes (since the send or
    the last nudge), or, with a deadline passed, their unit not done. Locked so that two
    processes cannot both remind."""
    query = (select(DirectiveRecipient, Directive)
             .join(Directive, Directive.id == DirectiveRecipient.directive_id)
             .where(DirectiveRecipient.reminders < MAX_REMINDERS,
                    DirectiveRecipient.done_at.is_(None))
             .with_for_update(of=DirectiveRecipient, skip_locked=True))
    due = []
    for entry, directive in await session.execute(query):
        every = timedelta(minutes=directive.remind_after_minutes)
        last = entry.reminded_at or directive.created_at
        unacknowledged = directive.requires_ack and entry.acknowledged_at is None
        late = directive.deadline is not None and directive.deadline <= now
        if (unacknowledged or late) and last <= now - every:
            due.append((entry, directive))
    return due
