"""GET /healthz (the process is up) and GET /readyz (it can do its work).

/readyz answers 200 with each check's result, or 503 naming the checks that failed, for a
load balancer (take the process out of rotation) and for an operator's monitoring. No
personal data: only states, revisions and ages in seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from storage import health
from storage.db import Database, unavailable
from storage.migrate import current_heads

# A channel whose API has not answered for this long is asked once (getMe) before /readyz
# calls it failing: a webhook-mode bot that nobody wrote to for an hour is still fine. A
# long-polling channel gets an answer every poll (10-30 s), so it never needs the probe.
API_FRESH_SECONDS = 120.0
PROBE_SECONDS = 5.0
DATABASE_SECONDS = 5.0


@runtime_checkable
class ApiWatched(Protocol):
    """A channel that talks to a platform's API (the web chat does not)."""

    name: str
    last_api_success: float | None  # time.monotonic() of the last call that succeeded

    async def probe_api(self) -> None: ...


class Runnable(Protocol):
    @property
    def running(self) -> bool: ...


@dataclass
class Check:
    name: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


CheckFn = Callable[[], Awaitable[Check]]


def database_check(db: Database) -> CheckFn:
    async def check() -> Check:
        try:
            async with asyncio.timeout(DATABASE_SECONDS), db.read() as session:
                await health.ping(session)
        except Exception as exc:
            return Check("database", False, {"error": _reason(exc)})
        return Check("database", True)
    return check


def migrations_check(db: Database) -> CheckFn:
    async def check() -> Check:
        heads = set(current_heads())
        try:
            async with asyncio.timeout(DATABASE_SECONDS), db.read() as session:
                applied = await health.applied_revisions(session)
        except Exception as exc:
            return Check("migrations", False, {"error": _reason(exc)})
        detail: dict[str, Any] = {"database": sorted(applied), "code": sorted(heads)}
        if applied != heads:
            detail["error"] = "run `coso db upgrade`"
        return Check("migrations", applied == heads, detail)
    return check


def channel_check(channel: ApiWatched) -> CheckFn:
    async def check() -> Check:
        key = getattr(channel, "bot_key", "")  # one check per bot (TELEGRAM_BOT_TOKENS)
        name = f"channel:{channel.name}" + (f"-{key}" if key else "")
        age = _age(channel.last_api_success)
        if age is None or age > API_FRESH_SECONDS:
            try:
                async with asyncio.timeout(PROBE_SECONDS):
                    await channel.probe_api()
            except Exception as exc:
                detail: dict[str, Any] = {"error": f"API not answering ({type(exc).__name__})"}
                if age is not None:
                    detail["last_success_seconds_ago"] = round(age)
                return Check(name, False, detail)
            age = _age(channel.last_api_success)
        return Check(name, True, {"last_success_seconds_ago": round(age or 0.0)})
    return check


def sender_check(name: str, sender: Runnable) -> CheckFn:
    async def check() -> Check:
        if sender.running:
            return Check(f"sender:{name}", True)
        return Check(f"sender:{name}", False, {"error": "not running"})
    return check


class Health:
    """The checks of one running bot, and the two routes that report them."""

    def __init__(self, checks: Iterable[CheckFn]) -> None:
        self.checks = list(checks)

    async def run(self) -> list[Check]:
        return list(await asyncio.gather(*(check() for check in self.checks)))

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz)]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, headers=NO_STORE)

    async def readyz(self, request: web.Request) -> web.Response:
        results = await self.run()
        failed = [check.name for check in results if not check.ok]
        body = {"status": "failing" if failed else "ok", "failed": failed,
                "checks": {check.name: {"ok": check.ok, **check.detail} for check in results}}
        return web.json_response(body, status=503 if failed else 200, headers=NO_STORE)


NO_STORE = {"Cache-Control": "no-store"}


def for_runtime(db: Database, channels: Iterable[object],
                senders: Mapping[str, Runnable]) -> Health:
    checks = [database_check(db), migrations_check(db)]
    checks += [channel_check(c) for c in channels if isinstance(c, ApiWatched)]
    checks += [sender_check(name, sender) for name, sender in senders.items()]
    return Health(checks)


def _age(at: float | None) -> float | None:
    return None if at is None else time.monotonic() - at


def _reason(exc: BaseException) -> str:
    """A loggable reason: the known kinds of database trouble, else the class name only (a
    database's message can quote the statement's data)."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return unavailable(exc) or type(exc).__name__
