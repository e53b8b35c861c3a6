"""GET /metrics in Prometheus' text format, through the official prometheus-client.

The counters below are counted whether or not COSO_METRICS serves them (a counter costs about
a microsecond); the modules that count call the one-line hooks here, so this file is the
only one that knows the metric names. Labels are channel, priority, job, outcome and error
kind only: never a person, a chat or a unit.

COSO_METRICS=on serves /metrics on a listener of its own, COSO_METRICS_HOST:COSO_METRICS_PORT
(127.0.0.1:9108 by default), away from the public web server that takes webhooks;
COSO_METRICS=public serves it on the public web server too, for a proxy that keeps it private.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from bot.channels.base import DeliveryError
from bot.messages import Incoming
from storage import health
from storage.db import Database
from storage.outbox import BULK, INTERACTIVE

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

UPDATES = Counter("coso_updates", "Updates received, by channel and outcome: handled, "
                  "duplicate (a redelivery, refused by the ledger) or failed (not committed; "
                  "the platform delivers it again)", ["channel", "outcome"], registry=REGISTRY)
TURN_SECONDS = Histogram("coso_turn_seconds", "From an update reaching the core to its "
                         "effects and replies committed", ["channel"], registry=REGISTRY,
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
OUTBOX_DEPTH = Gauge("coso_outbox_depth", "Messages waiting to be sent (pending or being "
                     "sent), by channel and priority", ["channel", "priority"],
                     registry=REGISTRY)
SENDS = Counter("coso_sends", "Send attempts by channel and result: ok, 429, 5xx, blocked, "
                "unreachable, rejected (a permanent refusal other than a block)",
                ["channel", "result"], registry=REGISTRY)
SCHEDULER_RUNS = Counter("coso_scheduler_runs", "Scheduled runs by job and outcome: ok, "
                         "skipped (done already, here or by another process) or failed",
                         ["job", "outcome"], registry=REGISTRY)
DIGEST_SECONDS = Histogram("coso_digest_seconds", "One ward's daily digest, from its claim to "
                           "its messages committed", registry=REGISTRY,
                           buckets=(.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120))
DATABASE_ERRORS = Counter("coso_database_errors", "Statements the database refused or could "
                          "not run, by the driver's error class", ["kind"], registry=REGISTRY)

STATEMENTS = Counter("coso_database_statements", "SQL statements sent to the database, by "
                     "part: turn (handling an update) or other (senders, scheduler, web)",
                     ["part"], registry=REGISTRY)

Handle = Callable[[Incoming], Awaitable[None]]
_turn: ContextVar[list[str] | None] = ContextVar("coso_turn_outcome", default=None)


# --- hooks (one line each where they are called) --------------------------------------------

def counted(handle: Handle) -> Handle:
    """The core's entry point, counted and timed (bot/app.py wraps the router with it)."""
    async def handle_counted(incoming: Incoming) -> None:
        outcome = ["handled"]
        token = _turn.set(outcome)
        started = time.perf_counter()
        try:
            await handle(incoming)
        except Exception:
            outcome[0] = "failed"
            raise
        finally:
            _turn.reset(token)
            UPDATES.labels(incoming.channel, outcome[0]).inc()
            TURN_SECONDS.labels(incoming.channel).observe(time.perf_counter() - started)
    return handle_counted


def duplicate_update() -> None:
    """The router found the update in the ledger already."""
    outcome = _turn.get()
    if outcome is not None:
        outcome[0] = "duplicate"


def sent(channel: str) -> None:
    SENDS.labels(channel, "ok").inc()


def send_failed(channel: str, error: DeliveryError) -> None:
    SENDS.labels(channel, send_result(error)).inc()


def send_result(error: DeliveryError) -> str:
    if error.retry_after is not None:
        return "429"
    if error.blocked:
        return "blocked"
    if error.unreachable:
        return "unreachable"
    if error.permanent:
        return "rejected"
    return "5xx"  # what the channels leave retryable: server errors


@contextmanager
def scheduled_run(job: str) -> Iterator[list[bool]]:
    """Around one claimed run: `with metrics.scheduled_run(job) as ran: ran[0] = await ...`
    (False when the key was claimed already)."""
    ran = [True]
    started = time.perf_counter()
    try:
        yield ran
    except Exception:
        SCHEDULER_RUNS.labels(job, "failed").inc()
        raise
    SCHEDULER_RUNS.labels(job, "ok" if ran[0] else "skipped").inc()
    if job == "digest" and ran[0]:
        DIGEST_SECONDS.observe(time.perf_counter() - started)


RunFn = Callable[..., Awaitable[bool]]


def counted_run(run: RunFn) -> RunFn:
    """Decorates Scheduler.run(self, job, ...) -> bool (False: claimed already)."""
    async def run_counted(scheduler: Any, job: str, *args: Any) -> bool:
        with scheduled_run(job) as ran:
            ran[0] = await run(scheduler, job, *args)
        return ran[0]
    return run_counted


def watch_database(db: Database) -> None:
    """Count every error the database raises, from any part of the bot."""
    def on_error(context: ExceptionContext) -> None:
        DATABASE_ERRORS.labels(type(context.original_exception).__name__).inc()

    event.listen(db.engine.sync_engine, "handle_error", on_error)
    # One increment per statement (an executemany is one): what `python -m bench load`
    # divides by the updates handled for its statements per update.
    in_turn, other = STATEMENTS.labels("turn"), STATEMENTS.labels("other")

    def on_statement(*_: Any) -> None:
        (in_turn if _turn.get() is not None else other).inc()

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)


# --- serving ---------------------------------------------------------------------------------

def priority_label(priority: int) -> str:
    return {INTERACTIVE: "interactive", BULK: "bulk"}.get(priority, str(priority))


class Metrics:
    """The /metrics route of one running bot; the outbox depth is read at each scrape."""

    def __init__(self, db: Database, channels: list[str]) -> None:
        self.db = db
        self.channels = channels
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/metrics", self.scrape)]

    async def scrape(self, request: web.Request) -> web.Response:
        await self.read_outbox()
        return web.Response(body=generate_latest(REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST,
                                     "Cache-Control": "no-store"})

    async def read_outbox(self) -> None:
        try:
            async with self.db.read() as session:
                depth = await health.outbox_depth(session)
        except Exception:  # counted by watch_database; the rest of the page still serves
            return
        for channel in self.channels:  # an empty queue shows as 0, not as a missing series
            for priority in (INTERACTIVE, BULK):
                depth.setdefault((channel, priority), 0)
        OUTBOX_DEPTH.clear()
        for (channel, priority), count in depth.items():
            OUTBOX_DEPTH.labels(channel, priority_label(priority)).set(count)

    async def serve_private(self, host: str, port: int, extra: list[web.RouteDef]) -> None:
        """The metrics listener of its own (with /healthz and /readyz beside /metrics)."""
        app = web.Application()
        app.add_routes([*self.routes(), *extra])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets: Any = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
