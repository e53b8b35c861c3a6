"""The clock: each ward's daily runs (check-in question, reminder, escalation, digest) and the
periodic jobs of bot/jobs.py, driven by APScheduler in COSO_TIMEZONE.

Design: one cron trigger fires a tick at the start of every minute, and a tick does whatever
is due today and not yet done: for each ward, each job whose time has come (by the ward's
schedule, read afresh from the database) and whose (job, ward, local date) key is not claimed.
One rule covers the regular run, the catch-up after a restart (a tick runs at start: the same
day's missed runs happen once, in order; yesterday's do not) and a schedule changed by chat or
by `coso schedule set` in another process (seen at the next tick, no reload). The escalation
runs COSO_ESCALATION_AFTER_MINUTES after the reminder (never after the digest), and a reminder
or escalation keeps its gap after the run it follows up, so a question caught up late is not
chased in the same minute.

Each run claims its key in the transaction that queues its messages, so a run happens once
across restarts and across several processes on one PostgreSQL; a run that fails leaves no
claim and is tried again at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import daily
from bot.daily import SendDigest
from bot.jobs import PERIODIC, Periodic
from bot.ops import metrics
from bot.settings import Settings
from storage import schedules
from storage.db import Database
from storage.models import Unit, utcnow
from storage.schedules import JOBS, Times

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Due:
    """A run whose time has come; sorting gives the order to run them in."""

    at: str  # HH:MM local
    order: int  # prompt, reminder, escalation, digest when due at the same minute
    ward_id: int
    job: str


class Scheduler:
    def __init__(self, db: Database, settings: Settings,
                 send_digest: SendDigest | None = None) -> None:
        self.db = db
        self.settings = settings
        self.send_digest = send_digest  # None: bot.digest.send_digest, imported when needed
        self._aps: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()  # one tick at a time in this process
        self._tasks: set[asyncio.Task[object]] = set()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the triggers; the first tick runs at once (today's missed runs)."""
        # APScheduler logs every job added and every execution at INFO: noise in the bot's log
        # (its warnings, a missed run, still show).
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        tz = self.settings.tz
        aps = AsyncIOScheduler(timezone=tz)
        options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 50}
        aps.add_job(self._tracked, CronTrigger(second=0, timezone=tz), args=[self.tick],
                    id="daily", **options)
        aps.add_job(self._tracked, args=[self.tick], id="catch-up")  # now, once
        for job in PERIODIC.values():
            aps.add_job(self._tracked, IntervalTrigger(seconds=job.every.total_seconds(),
                                                       timezone=tz),
                        args=[self._periodic_runner(job)], id=f"periodic:{job.name}",
                        **options)
        aps.start()
        self._aps = aps

    async def stop(self) -> None:
        """Stop the triggers and cancel runs in flight (their claims roll back with them)."""
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _tracked(self, work: Callable[[], Awaitable[object]]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await work()
        except Exception:
            log.exception("a scheduled job failed; it is tried again at its next turn")
        except asyncio.CancelledError:  # only stop() cancels a run: its claim rolled back, and
            pass  # APScheduler would log the cancellation as a job failure with a traceback
        finally:
            if task is not None:
                self._tasks.discard(task)

    def _periodic_runner(self, job: Periodic) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            with metrics.scheduled_run(job.name):
                await job.run(self.db, self.settings, utcnow())
        return run

    # --- the daily runs ----------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> list[Due]:
        """Run everything due today and not yet done; returns the runs this process did."""
        now = now or utcnow()
        async with self._lock:
            done: list[Due] = []
            failed: set[int] = set()  # a ward's later runs wait for the failed one
            day = now.astimezone(self.settings.tz).date()
            for due in await self.due(now):
                if due.ward_id in failed:
                    continue
                try:
                    if await self.run(due.job, due.ward_id, day, now):
                        done.append(due)
                except Exception:
                    failed.add(due.ward_id)
                    log.exception("%s for ward %s on %s failed; it is tried again at the next "
                                  "tick", due.job, due.ward_id, day.isoformat())
            return done

    async def due(self, now: datetime) -> list[Due]:
        """Today's runs whose time has come, not yet claimed, in the order to run them."""
        local = now.astimezone(self.settings.tz)
        day, minute = local.date(), local.hour * 60 + local.minute
        async with self.db.read() as session:
            plans = await schedules.schedules(session, self.settings)
            claimed = await schedules.claimed(session, schedules.period_of(day))
            found = sorted(due for ward, times in plans if times.runs_on(day)
                           for due in self._due_in(ward.id, times, claimed, minute))
            live = await schedules.active(session, sorted({d.ward_id for d in found}))
        return [d for d in found if d.ward_id in live]

    def _due_in(self, ward_id: int, times: Times, claimed: dict[tuple[str, int], datetime],
                minute: int) -> list[Due]:
        """One ward's due runs. A chasing job (the reminder, the escalation) runs at its time
        but never sooner after the job it chases than the schedule's gap: when the question
        goes out late, at a catch-up, its reminder still leaves leaders time to answer. A
        job pushed past midnight this way is not done that day."""
        tz = self.settings.tz
        ran = {job: at.astimezone(tz) for (job, unit), at in claimed.items() if unit == ward_id}
        found = []
        for job in JOBS:
            if job in ran:
                continue
            at = times.minute(job)
            chased = schedules.CHASES.get(job)
            if chased is not None:
                if chased not in ran:  # it runs this tick at the earliest: wait the gap
                    continue
                gap = at - times.minute(chased)
                at = max(at, ran[chased].hour * 60 + ran[chased].minute + gap)
            if at <= minute:
                found.append(Due(schedules.clock_of(at), JOBS.index(job), ward_id, job))
        return found

    @metrics.counted_run
    async def run(self, job: str, ward_id: int, day: date, now: datetime) -> bool:
        """Claim and do one run; False when it was done already (here or elsewhere)."""
        period = schedules.period_of(day)
        async with self.db.transaction() as session:
            if not await schedules.claim(session, job, ward_id, period):
                return False
            ward = await session.get(Unit, ward_id)
            assert ward is not None  # a claimed key's unit exists (foreign key)
            context = daily.Run(session, self.db, self.settings, ward, day, now,
                                self.send_digest)
            queued = await daily.JOBS[job](context)
            await schedules.finish(session, job, ward_id, period, utcnow())
        log.info("%s for ward %s on %s: %d messages queued", job, ward_id, period, queued)
        return True
