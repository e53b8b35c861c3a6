"""Messages to people other than the one in the turn (ward staff, recipients of a directive),
each rendered in the recipient's own language and queued in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator, pick_locale
from bot.messages import Outgoing
from bot.settings import Settings
from storage import outbox
from storage.models import ChatAccount, Person, RoleAssignment, Unit

Render = Callable[[Translator], Outgoing]


async def notify_people(session: AsyncSession, settings: Settings, person_ids: Iterable[int],
                        render: Render, priority: int = outbox.BULK,
                        ref: str | None = None) -> int:
    """Queue render(t) to every chat account of the given active people; returns the count."""
    found = await accounts_of(session, settings, person_ids)
    for account, t in found:
        outbox.enqueue(session, account, render(t).to_payload(), priority, ref)
    return len(found)


async def accounts_of(session: AsyncSession, settings: Settings, person_ids: Iterable[int]
                      ) -> list[tuple[ChatAccount, Translator]]:
    """Every chat account of the given active people, each with its reader's Translator:
    for messages shaped by the channel (a digest split to Zalo's limit)."""
    ids = set(person_ids)
    if not ids:
        return []
    query = (select(ChatAccount, Person).join(Person, Person.id == ChatAccount.person_id)
             .where(Person.id.in_(ids), Person.active.is_(True)).order_by(ChatAccount.id))
    return [(account, Translator(pick_locale(person.locale, account.locale,
                                             default=settings.default_locale), settings.tz))
            for account, person in (await session.execute(query)).all()]


async def holders_over(session: AsyncSession, unit: Unit, role: str) -> list[int]:
    """People holding `role` on this unit or any unit above it (who oversee it)."""
    ancestor_ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    query = select(RoleAssignment.person_id).where(
        RoleAssignment.unit_id.in_(ancestor_ids), RoleAssignment.role == role,
        RoleAssignment.active.is_(True)).distinct()
    return list((await session.execute(query)).scalars())


async def holders_within(session: AsyncSession, unit: Unit, role: str) -> list[int]:
    """People holding `role` on this unit or anywhere in its subtree."""
    query = (select(RoleAssignment.person_id).join(Unit, Unit.id == RoleAssignment.unit_id)
             .where(Unit.path.startswith(unit.path), RoleAssignment.role == role,
                    RoleAssignment.active.is_(True)).distinct())
    return list((await session.execute(query)).scalars())


async def holders_on(session: AsyncSession, unit: Unit, role: str) -> list[int]:
    """People holding `role` on exactly this unit (its leaders, say)."""
    query = select(RoleAssignment.person_id).where(
        RoleAssignment.unit_id == unit.id, RoleAssignment.role == role,
        RoleAssignment.active.is_(True)).distinct()
    return list((await session.execute(query)).scalars())
