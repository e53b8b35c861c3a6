"""People, their chat accounts and their roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from storage.models import (
    ChatAccount,
    Conversation,
    OutboxMessage,
    Person,
    RoleAssignment,
    Unit,
    WebSession,
    utcnow,
)


@dataclass(frozen=True)
class Grant:
    """One active role on one unit (and so on its subtree)."""

    role: str
    unit: Unit


async def account_for(session: AsyncSession, channel: str, external_id: str, *,
                      lock: bool = False) -> ChatAccount:
    """The chat account for this sender, created on first contact.

    lock=True holds the row for the rest of the transaction (PostgreSQL), so two updates
    of one person handled by two processes take turns on that person's conversation.
    """
    # The person comes in the same query: every update needs them (person_of then reads
    # the session's identity map, not the database).
    query = (select(ChatAccount).where(ChatAccount.channel == channel,
                                       ChatAccount.external_id == external_id)
             .options(joinedload(ChatAccount.person)))
    if lock:
        query = query.with_for_update(of=ChatAccount)
    account = (await session.execute(query)).scalar_one_or_none()
    if account is None:
        account = ChatAccount(channel=channel, external_id=external_id)
        session.add(account)
        await session.flush()
    return account


async def person_of(session: AsyncSession, account: ChatAccount) -> Person | None:
    if account.person_id is None:
        return None
    person = await session.get(Person, account.person_id)
    return person if person is not None and person.active else None


async def grants(session: AsyncSession, person: Person | None) -> list[Grant]:
    if person is None:
        return []
    query = (
        select(RoleAssignment)
        .where(RoleAssignment.person_id == person.id, RoleAssignment.active.is_(True))
        .options(joinedload(RoleAssignment.unit, innerjoin=True))
        .order_by(RoleAssignment.id)
    )
    rows = (await session.execute(query)).scalars().all()
    return [Grant(row.role, row.unit) for row in rows]


async def assign(session: AsyncSession, person: Person, unit: Unit, role: str) -> RoleAssignment:
    """Give the role on the unit unless the person already holds exactly that."""
    query = select(RoleAssignment).where(
        RoleAssignment.person_id == person.id, RoleAssignment.unit_id == unit.id,
        RoleAssignment.role == role, RoleAssignment.active.is_(True))
    existing = (await session.execute(query)).scalar_one_or_none()
    if existing is not None:
        return existing
    assignment = RoleAssignment(person_id=person.id, unit_id=unit.id, role=role)
    session.add(assignment)
    await session.flush()
    return assignment


async def deactivate(session: AsyncSession, person: Person) -> None:
    """End the person's roles; their accounts then count as strangers. History stays."""
    now = utcnow()
    person.active, person.deactivated_at = False, now
    roles = (await session.execute(select(RoleAssignment).where(
        RoleAssignment.person_id == person.id, RoleAssignment.active.is_(True)))).scalars()
    for role in roles:
        role.active, role.ended_at = False, now


async def list_people(session: AsyncSession, *, include_inactive: bool = False
                      ) -> Sequence[Person]:
    query = select(Person).options(
        selectinload(Person.roles).selectinload(RoleAssignment.unit),
        selectinload(Person.accounts),
    ).order_by(Person.id)
    if not include_inactive:
        query = query.where(Person.active.is_(True))
    return (await session.execute(query)).scalars().all()


async def purge_strangers(session: AsyncSession, idle_since: datetime, limit: int = 1000
                          ) -> int:
    """Delete chat accounts that never registered and were idle since `idle_since`: created
    before it, with no message to them and no conversation moving since. A failed login or a
    passing stranger otherwise leaves a row (and its replies) forever. The ledger is keyed by
    the update, not the account, so a redelivered old update is still recognised.

    The accounts are locked first, skipping any an update is being handled for right now
    (the router holds its account's row), so no reply can be written to a deleted account.
    """
    recent_message = exists().where(OutboxMessage.chat_account_id == ChatAccount.id,
                                    OutboxMessage.created_at >= idle_since)
    recent_talk = exists().where(Conversation.chat_account_id == ChatAccount.id,
                                 Conversation.updated_at >= idle_since)
    logged_in = exists().where(WebSession.chat_account_id == ChatAccount.id)
    query = (select(ChatAccount.id)
             .where(ChatAccount.person_id.is_(None), ChatAccount.created_at < idle_since,
                    ~recent_message, ~recent_talk, ~logged_in)
             .order_by(ChatAccount.id).limit(limit)
             .with_for_update(skip_locked=True))
    ids = list((await session.execute(query)).scalars())
    if not ids:
        return 0
    for table in (Conversation, OutboxMessage, WebSession):
        await session.execute(delete(table).where(table.chat_account_id.in_(ids)))
    await session.execute(delete(ChatAccount).where(ChatAccount.id.in_(ids)))
    return len(ids)
