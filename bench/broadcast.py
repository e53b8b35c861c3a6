"""A broadcast straight into the outbox: the workload both the delivery test and bench share."""

from __future__ import annotations

from sqlalchemy import select

from bot.messages import PAID_BROADCAST
from storage import outbox
from storage.db import Database
from storage.models import ChatAccount

FIRST_CHAT = 10_000_000  # chat ids of broadcast recipients: FIRST_CHAT, FIRST_CHAT + 1, ...


async def enqueue_broadcast(db: Database, count: int, channel: str = "telegram",
                            ref: str = "bench", paid: bool = False) -> None:
    """`count` recipients (made if missing), one bulk message each, in one transaction."""
    async with db.transaction() as session:
        ids = [str(FIRST_CHAT + n) for n in range(count)]
        known = set((await session.execute(select(ChatAccount.external_id).where(
            ChatAccount.channel == channel))).scalars())
        session.add_all(ChatAccount(channel=channel, external_id=chat, locale="vi")
                        for chat in ids if chat not in known)
        await session.flush()
        accounts = (await session.execute(select(ChatAccount).where(
            ChatAccount.channel == channel, ChatAccount.external_id.in_(ids)))).scalars()
        payload: dict[str, object] = {"text": f"Thông báo {ref}"}
        if paid:  # an urgent directive with Telegram's paid broadcast
            payload["extra"] = {PAID_BROADCAST: True}
        for account in accounts:
            outbox.enqueue(session, account, payload,
                           priority=outbox.BULK, ref=ref)
