"""The outbox: rows written with their cause, claimed and settled by the channel's sender."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import OUTBOX_CHANNELS, PENDING_ROWS
from storage.models import (
    UNSETTLED_SQL,
    ChatAccount,
    OutboxMessage,
    OutboxStatus,
    UTCDateTime,
    utcnow,
)

FLOW_BUTTON = "f:"  # a flow question's buttons; answered by the engine, not kept as latest_buttons
INTERACTIVE = 0  # a reply to someone in a conversation
BULK = 10  # broadcasts, prompts, digests


def enqueue(session: AsyncSession, account: ChatAccount, payload: dict[str, Any],
            priority: int = INTERACTIVE, ref: str | None = None) -> OutboxMessage:
    row = OutboxMessage(channel=account.channel, bot=account.bot or "",
                        chat_account_id=account.id, payload=payload, priority=priority,
                        ref=ref)
    session.add(row)
    _queued(session, account, payload)
    return row


def reply(session: AsyncSession, account: ChatAccount, payload: dict[str, Any],
          priority: int = INTERACTIVE, ref: str | None = None) -> None:
    """A reply in the turn's transaction, as enqueue() but without an ORM object: the row is
    inserted with Core at the commit (storage.db.PENDING_ROWS), the turn's replies in one
    executemany. A turn's replies go to its own chat, so their order among themselves is
    all that matters, and it is kept (the web chat shows them by id: a directive's card
    owed to a newcomer comes after their welcome). The account must have its id."""
    pending = session.info.setdefault(PENDING_ROWS, {})
    pending.setdefault(_OUTBOX, []).append(
        {"channel": account.channel, "bot": account.bot or "", "chat_account_id": account.id,
         "payload": payload, "priority": priority, "ref": ref})
    _queued(session, account, payload)


_OUTBOX = cast(Table, OutboxMessage.__table__)


def _queued(session: AsyncSession, account: ChatAccount, payload: dict[str, Any]) -> None:
    buttons = payload.get("buttons") or []
    if buttons and not any(str(button[1]).startswith(FLOW_BUTTON) for button in buttons):
        account.latest_buttons = [list(button) for button in buttons]
    session.info.setdefault(OUTBOX_CHANNELS, set()).add(account.channel)


# How many unsettled rows a claim looks at, oldest first, to find each chat's first: the rows
# of chats the sender skips are not among them, so this only needs to cover a few rows per
# chat of the chats it can take (a chat's queue is short: bot/handlers/flood.py).
CLAIM_SCAN = 256


def _due(row: Any) -> ColumnElement[bool]:
    now: BindParameter[datetime] = bindparam("now", type_=UTCDateTime())
    return or_((row.status == OutboxStatus.PENDING) & (row.available_at <= now),
               (row.status == OutboxStatus.SENDING) & (row.lease_until < now))


def _claim_query() -> Select[OutboxMessage, str]:
    """Built once, run with its parameters: the sender claims after nearly every send, on the
    event loop that also paces the sends, so the statement is not rebuilt each time."""
    scan = (
        select(OutboxMessage.id, OutboxMessage.chat_account_id, OutboxMessage.priority,
               OutboxMessage.status, OutboxMessage.available_at, OutboxMessage.lease_until)
        # Spelled as the index's condition: SQLite uses a partial index only for a query
        # whose WHERE contains that very term (not one with bound parameters).
        .where(OutboxMessage.channel == bindparam("channel"),
               OutboxMessage.bot == bindparam("bot"), text(UNSETTLED_SQL))
        .where(OutboxMessage.chat_account_id.not_in(bindparam("skip", expanding=True)))
        .order_by(OutboxMessage.priority, OutboxMessage.id)
        .limit(CLAIM_SCAN)
        .subquery("scan")
    )
    first = func.row_number().over(partition_by=scan.c.chat_account_id,
                                   order_by=(scan.c.priority, scan.c.id))
    ranked = select(scan, first.label("place")).subquery("ranked")
    heads = select(ranked.c.id).where(ranked.c.place == 1, _due(ranked.c))
    return (
        select(OutboxMessage, ChatAccount.external_id)
        .join(ChatAccount, ChatAccount.id == OutboxMessage.chat_account_id)
        .where(OutboxMessage.id.in_(heads), _due(OutboxMessage))
        .order_by(OutboxMessage.priority, OutboxMessage.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True, of=OutboxMessage)
    )


CLAIM = _claim_query()


async def claim(session: AsyncSession, channel: str, limit: int, lease: timedelta,
                skip_chats: Collection[int] = (), bot: str = "", claimant: int | None = None
                ) -> Sequence[tuple[OutboxMessage, str]]:
    """Take up to `limit` due rows for sending, at most one per chat, with the chat id each
    goes to.

    Fair across chats: only each chat's first unsettled row (by priority, then age) is
    taken, and only when it is due, so a chat's rows go out in order, one at a time across
    every sender, and a chat with a thousand rows queued takes one place in the claim, not
    all of them. `skip_chats`: chat accounts the caller is sending to, or that must wait for
    their next turn (per-chat rate); their rows are not even looked at.

    A claimed row carries a lease and its claimant (storage.claimants: the process's key);
    if its sender dies, the row is due again as soon as another process sees the claimant
    gone, or when the lease runs out. SKIP LOCKED lets several senders share one PostgreSQL
    outbox (FOR UPDATE cannot go with a window function, so the lock is taken by the outer
    query, which checks again that each row is still due).
    """
    now = utcnow()
    result = await session.execute(CLAIM, {"channel": channel, "bot": bot,
                                           "skip": list(skip_chats),
                                           "now": now, "limit": limit})
    rows = [(row, external_id) for row, external_id in result.all()]
    for row, _ in rows:
        row.status, row.lease_until = OutboxStatus.SENDING, now + lease
        row.claimed_by = claimant
        row.attempts += 1
    return rows


async def release_claims(session: AsyncSession) -> int:
    """Free every claimed row at once: for a SQLite outbox, whose one sender just started, so
    the rows it held when it stopped need not wait out their lease."""
    result = await session.execute(update(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.SENDING).values(
        status=OutboxStatus.PENDING, lease_until=None, claimed_by=None))
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_sent(session: AsyncSession, row_ids: Sequence[int]) -> None:
    await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(row_ids)).values(
        status=OutboxStatus.SENT, sent_at=utcnow(), lease_until=None, error=None,
        claimed_by=None))


async def mark_retry(session: AsyncSession, row_id: int, at: datetime, error: str,
                     *, count_attempt: bool = True, parts_sent: int = 0) -> None:
    """Due again at `at`. count_attempt=False gives back the try claim() counted: the
    platform never answered, so an outage of any length does not use up a row's tries.
    parts_sent: how many parts of the message are out; the retry sends the rest."""
    values: dict[str, Any] = {"status": OutboxStatus.PENDING, "available_at": at,
                              "lease_until": None, "claimed_by": None, "error": error[:500],
                              "parts_sent": parts_sent}
    if not count_attempt:
        values["attempts"] = OutboxMessage.attempts - 1
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                          .values(**values))


async def mark_failed(session: AsyncSession, row_id: int, error: str) -> None:
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
        status=OutboxStatus.FAILED, lease_until=None, error=error[:500],
        claimed_by=None))


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


async def mailbox_message(session: AsyncSession, account_id: int, row_id: int
                          ) -> OutboxMessage | None:
    """One message of this account's mailbox by id (a photo or file the web chat shows);
    None for a missing row, a failed one, or one of another account, alike, so an id
    reveals nothing of other people's messages."""
    row = await session.get(OutboxMessage, row_id)
    mine = row is not None and row.chat_account_id == account_id
    return row if row is not None and mine and row.status in MAILBOX else None
