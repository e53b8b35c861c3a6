"""The files the bot writes under COSO_DATA_DIR, and how long they stay.

Digest charts and exports are made to be sent at once; an export holds household records
(Decree 13/2023/ND-CP), so neither outlives a couple of days. Directive attachments stay:
they are the directive's own record. All of it is personal data: the folders are 0700 and the
files 0600 (storage/private.py).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from bot.jobs import periodic
from bot.settings import Settings
from storage.db import Database
from storage.private import private_dir

log = logging.getLogger(__name__)

SHORT_LIVED = ("charts", "exports")
FOLDERS = (*SHORT_LIVED, "directives")
KEEP = timedelta(days=2)


def prepare_data_dir(settings: Settings) -> Path:
    """COSO_DATA_DIR and its folders, 0700 (an older, world-readable one is closed too)."""
    root = private_dir(settings.data_dir)
    for folder in FOLDERS:
        private_dir(root / folder)
    return root


@periodic("old-files", timedelta(hours=1))
async def remove_old_files(db: Database, settings: Settings, now: datetime) -> None:
    removed = sum([await asyncio.to_thread(remove_older, settings.data_dir / folder, KEEP)
                   for folder in SHORT_LIVED])
    if removed:
        log.info("removed %d old chart and export files", removed)


def remove_older(folder: Path, age: timedelta) -> int:
    """Delete the files in `folder` (and the folders of CSV exports) last written more than
    `age` ago; returns how many."""
    if not folder.is_dir():
        return 0
    cutoff = time.time() - age.total_seconds()
    old = [path for path in folder.iterdir() if path.stat().st_mtime < cutoff]
    for path in old:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(old)
