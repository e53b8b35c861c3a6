"""Which process claimed an outbox row, and whether it still lives (PostgreSQL).

Several `coso run` processes share one PostgreSQL outbox. A row a sender claimed carries a
lease; when the process dies (kill -9, a crash) its rows used to wait the lease out (60 s:
docs/reliability.md §6), its restarted successor knowing no more than the others which rows
were its own. Now each process holds a session advisory lock of its own key on a connection
kept for its lifetime, and writes the key into the rows it claims (`claimed_by`).
PostgreSQL drops a session's locks with its connection, so a process that can take another's
lock knows that process is gone, and frees its claimed rows at once.

SQLite has one sender per database, the process itself (bot.app frees its claims at start).
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.db import OUTBOX_CHANNELS
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

SPACE = 0x636F736F  # 'coso': the first key of the two-key advisory locks held here
_HOLD = text("SELECT pg_advisory_lock(:space, :key)")
_GONE = text("SELECT pg_try_advisory_xact_lock(:space, :key)")


class Claimant:
    """This process as the other processes see it: `key` while its lock is held (None on
    SQLite, where nothing else claims)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.key: int | None = None if engine.dialect.name == "sqlite" else \
            secrets.randbelow(2 ** 31 - 1) + 1
        self._connection: AsyncConnection | None = None

    async def hold(self) -> None:
        """Take (or take again, after the connection was lost) this process's lock; before
        the senders claim anything, and from then on every few seconds (keep)."""
        if self.key is None:
            return
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                return
            except Exception:  # the server dropped it (a restart): hold again below
                await self.let_go()
        connection = await self.engine.connect()
        try:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(_HOLD, {"space": SPACE, "key": self.key})
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        log.info("outbox claimant %d holds its lock", self.key)

    async def let_go(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection.close()
            except Exception:
                await connection.invalidate()


async def free_dead_claims(session: AsyncSession, own: int | None) -> int:
    """Make the rows claimed by processes that are gone due again; how many. A process is
    gone when its lock can be taken (held to this transaction's end, so it cannot come back
    under us: a process whose connection was cut takes it again once this commits)."""
    if own is None:
        return 0
    claims = (await session.execute(
        select(OutboxMessage.claimed_by, OutboxMessage.channel).distinct().where(
            OutboxMessage.status == OutboxStatus.SENDING,
            OutboxMessage.claimed_by.is_not(None), OutboxMessage.claimed_by != own))).all()
    freed = 0
    for key in sorted({key for key, _ in claims if key is not None}):
        if not await session.scalar(_GONE, {"space": SPACE, "key": key}):
            continue  # alive
        result = await session.execute(update(OutboxMessage).where(
            OutboxMessage.claimed_by == key, OutboxMessage.status == OutboxStatus.SENDING
        ).values(status=OutboxStatus.PENDING, lease_until=None, claimed_by=None))
        freed += int(getattr(result, "rowcount", 0) or 0)
        session.info.setdefault(OUTBOX_CHANNELS, set()).update(
            channel for owner, channel in claims if owner == key)
    return freed
