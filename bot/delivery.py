"""The sender: drains one channel's outbox rows through that channel, with retries.

Woken in-process when a transaction that queued messages for the channel commits, so a reply
goes out at once; otherwise it polls, to pick up rows written by other processes and rows
whose retry time has come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta

from bot.channels.base import Channel, DeliveryError
from bot.messages import Outgoing
from storage import outbox
from storage.db import Database
from storage.models import ChatAccount, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 20
IDLE_POLL_SECONDS = 2.0
MAX_ATTEMPTS = 8


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds before the next try: the platform's word if it gave one, else exponential."""
    if retry_after is not None:
        return retry_after
    base = min(60.0, 0.5 * 2 ** (attempt - 1))
    return base * random.uniform(0.75, 1.25)


class Sender:
    def __init__(self, db: Database, channel: Channel) -> None:
        self.db = db
        self.channel = channel
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sender-{self.channel.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                sent_any = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox drain failed on %s; retrying", self.channel.name)
                sent_any = False
            if not sent_any:
                await self._sleep()

    async def _sleep(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL_SECONDS)

    async def drain_once(self) -> bool:
        """Send one batch of due rows; True when there was anything to send."""
        async with self.db.transaction() as session:
            claimed = await outbox.claim(session, self.channel.name, BATCH, LEASE)
            work = [(row.id, row.attempts, row.chat_account_id, external_id, row.payload)
                    for row, external_id in claimed]
        for row_id, attempts, account_id, external_id, payload in work:
            await self._send_one(row_id, attempts, account_id, external_id, payload)
        return bool(work)

    async def _send_one(self, row_id: int, attempts: int, account_id: int, external_id: str,
                        payload: dict[str, object]) -> None:
        try:
            await self.channel.deliver(external_id, Outgoing.from_payload(payload))
        except DeliveryError as exc:
            await self._settle_failure(row_id, attempts, account_id, exc)
            return
        except Exception as exc:  # a channel bug must not stop the queue
            log.exception("delivery raised on %s row %s", self.channel.name, row_id)
            await self._settle_failure(row_id, attempts, account_id,
                                       DeliveryError(type(exc).__name__))
            return
        async with self.db.transaction() as session:
            await outbox.mark_sent(session, row_id)

    async def _settle_failure(self, row_id: int, attempts: int, account_id: int,
                              exc: DeliveryError) -> None:
        async with self.db.transaction() as session:
            if exc.permanent or attempts >= MAX_ATTEMPTS:
                log.warning("outbox row %s on %s failed for good: %s",
                            row_id, self.channel.name, exc.reason)
                await outbox.mark_failed(session, row_id, exc.reason)
                if exc.blocked:
                    account = await session.get(ChatAccount, account_id)
                    if account is not None and account.blocked_at is None:
                        account.blocked_at = utcnow()
                return
            delay = backoff(attempts, exc.retry_after)
            log.info("outbox row %s on %s retry in %.1fs: %s",
                     row_id, self.channel.name, delay, exc.reason)
            await outbox.mark_retry(session, row_id, utcnow() + timedelta(seconds=delay),
                                    exc.reason)
