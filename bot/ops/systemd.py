"""sd_notify for `Type=notify` and `WatchdogSec=` (deploy/coso.service), without libsystemd.

systemd passes NOTIFY_SOCKET (a datagram socket; "@name" is an abstract one) and, with a
watchdog, WATCHDOG_USEC. The bot says READY=1 once it serves, STOPPING=1 when it stops, and
WATCHDOG=1 twice per watchdog interval from a task on its event loop: a loop stuck for the
whole interval (a blocking call, a deadlock) misses the pings and systemd restarts it.
Without NOTIFY_SOCKET (not under systemd) everything here does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None, watchdog_seconds: float | None) -> None:
        self.address = address
        self.watchdog_seconds = watchdog_seconds
        self._pinger: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Notifier:
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        watchdog = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1_000_000
        return cls(address, watchdog)

    def notify(self, state: str) -> bool:
        """Send one state line; False when there is no socket or it cannot be reached."""
        if not self.address:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), target)
        except OSError as exc:
            log.warning("systemd notify (%s) failed: %s", state.split("=")[0], exc.strerror)
            return False
        return True

    def ready(self) -> None:
        self.notify("READY=1")
        if self.address and self.watchdog_seconds:
            self._pinger = asyncio.create_task(self._ping(), name="systemd-watchdog")

    async def _ping(self) -> None:
        assert self.watchdog_seconds
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_seconds / 2)

    async def stopping(self) -> None:
        self.notify("STOPPING=1")
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
            self._pinger = None
