"""People, their chat accounts and their roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from storage.models import (
    ChatAccount,
    Person,
    PostHolding,
    RoleAssignment,
    Unit,
    UnitPost,
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
    # Holding two posts may give the same role on the same unit twice: one grant.
    seen: set[tuple[str, int]] = set()
    found = []
    for row in rows:
        if (row.role, row.unit_id) not in seen:
            seen.add((row.role, row.unit_id))
            found.append(Grant(row.role, row.unit))
    return found


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
    # Their posts fall vacant from now (storage/roster.py keeps who held them when).
    holdings = (await session.execute(select(PostHolding).where(
        PostHolding.person_id == person.id, PostHolding.ended_at.is_(None)))).scalars()
    for holding in holdings:
        holding.ended_at = now
        seat = await session.get(UnitPost, holding.unit_post_id)
        if seat is not None:
            seat.vacant_since = now


async def list_people(session: AsyncSession, *, include_inactive: bool = False
                      ) -> Sequence[Person]:
    query = select(Person).options(
        selectinload(Person.roles).selectinload(RoleAssignment.unit),
        selectinload(Person.accounts),
    ).order_by(Person.id)
    if not include_inactive:
        query = query.where(Person.active.is_(True))
    return (await session.execute(query)).scalars().all()
