"""The nightly backup of a SQLite database into COSO_BACKUP_DIR, kept COSO_BACKUP_KEEP_DAYS.

A periodic job (bot/jobs.py) that, from COSO_BACKUP_AT local time on, claims the day's
("backup", root unit, date) key like the daily jobs do, and copies the database in the
claim's transaction: a copy that fails leaves no claim and is tried again at the next turn,
and a restart later that day does not copy twice. The copy reads a snapshot while the bot
writes; other writes wait behind the claim's transaction for the copy's duration (well under
a second for a ward's database, a few seconds for a city's; at 02:00).
PostgreSQL is backed up with pg_dump (docs/deploy.md), so the job does nothing there.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from bot.jobs import periodic
from bot.settings import Settings
from storage import backup, schedules
from storage.db import Database

log = logging.getLogger(__name__)

JOB = "backup"


@periodic("nightly-backup", timedelta(minutes=5))
async def nightly_backup(db: Database, settings: Settings, now: datetime) -> None:
    await run_nightly(db, settings, now)


async def run_nightly(db: Database, settings: Settings, now: datetime) -> bool:
    """Take today's copy when its time has come and nobody took it; True when this did."""
    source = backup.sqlite_file(settings.database_url)
    if settings.backup_dir is None or source is None:
        return False
    local = now.astimezone(settings.tz)
    if local.strftime("%H:%M") < settings.backup_at:
        return False
    day = local.date()
    target = settings.backup_dir / backup.nightly_name(day)
    async with db.transaction() as session:
        unit = await backup.claim_unit(session)
        if unit is None:
            return False
        if not await schedules.claim(session, JOB, unit, schedules.period_of(day)):
            return False
        checked = await asyncio.to_thread(backup.backup, source, target)
        await schedules.finish(session, JOB, unit, schedules.period_of(day))
    removed = await asyncio.to_thread(backup.prune, settings.backup_dir, day,
                                      settings.backup_keep_days)
    log.info("nightly backup written: %s (%d bytes); %d older removed", target.name,
             checked.size, len(removed))
    return True
