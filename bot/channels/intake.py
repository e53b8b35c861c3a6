"""Intake: updates queue per chat, so one chat holds at most one of the handling slots.

Before this, the Telegram poller's 64 slots were taken in arrival order; one chat sending
1,000 messages in a few seconds filled all 64 with its own updates, each waiting its turn on
that chat's lock, and another chat's `/help` waited behind them (`python -m bench flood` on
PostgreSQL: p99 2.7 s). Here an update first waits in its chat's queue (a FIFO lock: no
slot held, nothing opened in the database), and only its chat's head takes a slot. A
flooding chat thus takes one slot of `slots`; the others stay free for everyone else.

Order and exactly-once are unchanged: one update per chat at a time, in the order they came
(asyncio.Lock wakes its waiters first come, first served); the ledger still decides whether
an update takes effect. An update cancelled while it waits (the process stopping) raises
CancelledError out of here, as it would from inside the handler, so the spool in front of
this (bot/channels/spool.py) keeps it for the next start.
"""

from __future__ import annotations

import asyncio
import weakref

from bot.channels.base import HandleIncoming
from bot.messages import Incoming

# Chats handled at once. Waiting updates beyond it hold no database connection.
HANDLED_AT_ONCE = 64


class Intake:
    """Wraps the core's handle: per-chat FIFO queues, at most `slots` chats at once."""

    def __init__(self, handle: HandleIncoming, slots: int = HANDLED_AT_ONCE) -> None:
        self._handle = handle
        self._slots = asyncio.Semaphore(slots)
        self._chats: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary())

    async def __call__(self, incoming: Incoming) -> None:
        chat = self._chats.setdefault((incoming.channel, incoming.external_id), asyncio.Lock())
        async with chat, self._slots:
            await self._handle(incoming)
