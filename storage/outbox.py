"""The outbox: rows written with their cause, claimed and settled by the channel's sender."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import OUTBOX_CHANNELS
from storage.models import ChatAccount, OutboxMessage, OutboxStatus, utcnow

FLOW_BUTTON = "f:"  # a flow question's buttons; answered by the engine, not the menu
INTERACTIVE = 0  # a reply to someone in a conversation
BULK = 10  # broadcasts, prompts, digests


def enqueue(session: AsyncSession, account: ChatAccount, payload: dict[str, Any],
            priority: int = INTERACTIVE, ref: str | None = None) -> OutboxMessage:
    row = OutboxMessage(channel=account.channel, chat_account_id=account.id,
                        payload=payload, priority=priority, ref=ref)
    session.add(row)
    buttons = payload.get("buttons") or []
    if buttons and not any(str(data).startswith(FLOW_BUTTON) for _, data in buttons):
        account.menu = [list(button) for button in buttons]
    session.info.setdefault(OUTBOX_CHANNELS, set()).add(account.channel)
    return row


async def claim(session: AsyncSession, channel: str, limit: int, lease: timedelta,
                holding: Collection[int] = ()) -> Sequence[tuple[OutboxMessage, str]]:
    """Take up to `limit` due rows for sending, with the chat id each goes to.

    A claimed row carries a lease; if its sender dies, the row is due again when the lease
    runs out. SKIP LOCKED lets several senders share one PostgreSQL outbox. `holding`: the
    rows the caller is still sending, never taken again by it however old their lease (a
    send may wait its turn for the chat longer than the lease).
    """
    now = utcnow()
    due = or_(
        (OutboxMessage.status == OutboxStatus.PENDING) & (OutboxMessage.available_at <= now),
        (OutboxMessage.status == OutboxStatus.SENDING) & (OutboxMessage.lease_until < now),
    )
    query = (
        select(OutboxMessage, ChatAccount.external_id)
        .join(ChatAccount, ChatAccount.id == OutboxMessage.chat_account_id)
        .where(OutboxMessage.channel == channel, due)
        .where(OutboxMessage.id.not_in(holding) if holding else true())
        .order_by(OutboxMessage.priority, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxMessage)
    )
    rows = [(row, external_id) for row, external_id in (await session.execute(query)).all()]
    for row, _ in rows:
        row.status, row.lease_until = OutboxStatus.SENDING, now + lease
        row.attempts += 1
    return rows


async def release_claims(session: AsyncSession) -> int:
    """Free every claimed row at once: for a SQLite outbox, whose one sender just started, so
    the rows it held when it stopped need not wait out their lease."""
    result = await session.execute(update(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.SENDING).values(
        status=OutboxStatus.PENDING, lease_until=None))
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_sent(session: AsyncSession, row_ids: Sequence[int]) -> None:
    await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(row_ids)).values(
        status=OutboxStatus.SENT, sent_at=utcnow(), lease_until=None, error=None))


async def mark_retry(session: AsyncSession, row_id: int, at: datetime, error: str,
                     *, count_attempt: bool = True) -> None:
    """Due again at `at`. count_attempt=False gives back the try claim() counted: the
    platform never answered, so an outage of any length does not use up a row's tries."""
    values: dict[str, Any] = {"status": OutboxStatus.PENDING, "available_at": at,
                              "lease_until": None, "error": error[:500]}
    if not count_attempt:
        values["attempts"] = OutboxMessage.attempts - 1
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                          .values(**values))


async def mark_failed(session: AsyncSession, row_id: int, error: str) -> None:
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
        status=OutboxStatus.FAILED, lease_until=None, error=error[:500]))


async def next_due(session: AsyncSession, channel: str) -> datetime | None:
    """When the earliest waiting row of this channel becomes due (to sleep until then)."""
    query = select(OutboxMessage.available_at).where(
        OutboxMessage.channel == channel, OutboxMessage.status == OutboxStatus.PENDING
    ).order_by(OutboxMessage.available_at).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


# Everything but failed rows: for the web chat a row is in the mailbox once it is committed.
MAILBOX = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT)


async def mailbox(session: AsyncSession, account_id: int, after_id: int, limit: int = 50
                  ) -> Sequence[OutboxMessage]:
    """One account's messages after `after_id`, oldest first (the web chat's history)."""
    query = select(OutboxMessage).where(
        OutboxMessage.chat_account_id == account_id, OutboxMessage.id > after_id,
        OutboxMessage.status.in_(MAILBOX),
    ).order_by(OutboxMessage.id).limit(limit)
    return (await session.execute(query)).scalars().all()
