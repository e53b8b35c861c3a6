"""The contract every channel keeps with the rest of the bot."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.messages import Incoming, Outgoing
from storage.db import unavailable

log = logging.getLogger(__name__)

# The core's entry point: commits the update's effects (or raises), then returns.
HandleIncoming = Callable[[Incoming], Awaitable[None]]

# A polled update is gone from the platform once fetched, so the channel retries a failed
# one itself (the ledger makes that safe): an error is tried POLLED_TRIES times, but a
# database that is away (restarting, locked, refusing writes) is waited for this long, so a
# restart of PostgreSQL loses no update.
POLLED_TRIES = 3
POLLED_WAIT_SECONDS = 300.0
RETRY_PAUSE, MAX_RETRY_PAUSE = 0.5, 5.0


def frames(exc: BaseException) -> str:
    """Where it failed, without the exception's text (it may quote the update's content)."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


async def handle_polled(handle: HandleIncoming, incoming: Incoming) -> bool:
    """Handle a polled update, retrying as above; False when it was given up (logged).

    Log lines name the update and the kind of failure only, never the exception's text."""
    where = f"{incoming.channel}: update {incoming.update_id}"
    deadline = time.monotonic() + POLLED_WAIT_SECONDS
    waited_since: float | None = None
    attempt = 0
    while True:
        attempt += 1
        try:
            await handle(incoming)
        except Exception as exc:
            reason = unavailable(exc)
            pause = min(RETRY_PAUSE * 2 ** (attempt - 1), MAX_RETRY_PAUSE)
            if reason is not None and time.monotonic() + pause < deadline:
                if waited_since is None:  # one clear line per update, not one per try
                    waited_since = time.monotonic()
                    log.warning("%s not handled: %s; retrying every %.0fs at most for %.0f "
                                "minutes", where, reason, MAX_RETRY_PAUSE,
                                POLLED_WAIT_SECONDS / 60)
            elif reason is None and attempt < POLLED_TRIES:
                log.error("%s failed (try %d of %d): %s\n%s", where, attempt, POLLED_TRIES,
                          type(exc).__name__, frames(exc))
            else:
                log.error("%s given up after %d tries: %s", where, attempt,
                          reason or type(exc).__name__)
                return False
            await asyncio.sleep(pause)
            continue
        if waited_since is not None:
            log.info("%s handled after waiting %.0fs for the database", where,
                     time.monotonic() - waited_since)
        return True


class DeliveryError(Exception):
    """A send failed. permanent: retrying cannot help (blocked, chat gone, bad request).
    parts_sent: of a message the channel sends in parts (a long text, a photo then text),
    how many went out before this failure, those skipped included: the retry skips them."""

    def __init__(self, reason: str, *, permanent: bool = False,
                 retry_after: float | None = None, blocked: bool = False,
                 unreachable: bool = False, parts_sent: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent or blocked
        self.retry_after = retry_after
        self.blocked = blocked  # the person blocked the bot
        # No answer at all (connection refused or dropped, timeout): the platform is away,
        # which says nothing about this message, so the try does not count against it.
        self.unreachable = unreachable
        self.parts_sent = parts_sent


@dataclass(frozen=True)
class SendRate:
    """A platform's sending limits; None: no limit (the web chat only writes to the database)."""

    per_second: float | None = None
    per_chat_per_second: float | None = None
    # Rows marked paid (Telegram's allow_paid_broadcast) go at this rate instead.
    paid_per_second: float | None = None


UNLIMITED = SendRate()


class Channel(Protocol):
    name: str

    def routes(self) -> list[web.RouteDef]:
        """aiohttp routes this channel serves on the shared web server (webhooks, pages)."""
        ...

    async def start(self, handle: HandleIncoming) -> None:
        """Begin receiving updates (polling task, or webhook set-up) and feed them to handle."""
        ...

    async def stop(self) -> None: ...

    async def deliver(self, external_id: str, message: Outgoing, skip_parts: int = 0) -> None:
        """Send one message, but its first `skip_parts` parts (sent by an earlier try, as
        its DeliveryError.parts_sent said); raise DeliveryError when it did not all go."""
        ...
