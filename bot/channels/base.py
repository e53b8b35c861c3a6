"""The contract every channel keeps with the rest of the bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.messages import Incoming, Outgoing

# The core's entry point: commits the update's effects (or raises), then returns.
HandleIncoming = Callable[[Incoming], Awaitable[None]]


class DeliveryError(Exception):
    """A send failed. permanent: retrying cannot help (blocked, chat gone, bad request)."""

    def __init__(self, reason: str, *, permanent: bool = False,
                 retry_after: float | None = None, blocked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent or blocked
        self.retry_after = retry_after
        self.blocked = blocked  # the person blocked the bot


@dataclass(frozen=True)
class SendRate:
    """A platform's sending limits; None: no limit (the web chat only writes to the database)."""

    per_second: float | None = None
    per_chat_per_second: float | None = None


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

    async def deliver(self, external_id: str, message: Outgoing) -> None:
        """Send one message; raise DeliveryError when it did not go."""
        ...
