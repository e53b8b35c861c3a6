"""What the operator's checks and metrics read from the database (bot/ops)."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, OutboxStatus


async def ping(session: AsyncSession) -> None:
    """Raises when the database does not answer."""
    await session.execute(text("SELECT 1"))


async def applied_revisions(session: AsyncSession) -> set[str]:
    """The Alembic revisions the database is at; empty when it was never migrated."""
    try:
        rows = await session.execute(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # no alembic_version table: a database never migrated
        await session.rollback()
        return set()
    return {str(row[0]) for row in rows}


async def outbox_depth(session: AsyncSession) -> dict[tuple[str, int], int]:
    """Messages waiting to go (pending or being sent), by (channel, priority)."""
    query = (select(OutboxMessage.channel, OutboxMessage.priority, func.count())
             .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
             .group_by(OutboxMessage.channel, OutboxMessage.priority))
    return {(channel, priority): count
            for channel, priority, count in (await session.execute(query)).all()}
