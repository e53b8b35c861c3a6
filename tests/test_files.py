"""Files under COSO_DATA_DIR go by folder: exports (household records) after two days, digest
charts after eight, so that a chart's 7-day link still finds its file."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from bot.files import KEEP, LINK_LIFE, remove_old_files, remove_older
from storage.db import Database
from storage.models import utcnow
from tests.conftest import make_settings


def _aged(path: Path, days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - timedelta(days=days).total_seconds()
    os.utime(path, (then, then))
    return path


def test_only_files_older_than_the_limit_go(tmp_path: Path) -> None:
    _aged(tmp_path / "old.xlsx", 3)
    _aged(tmp_path / "fresh.png", 0)
    assert remove_older(tmp_path, KEEP["exports"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["fresh.png"]
    assert remove_older(tmp_path / "missing", KEEP["exports"]) == 0


async def test_each_folder_keeps_its_files_as_long_as_their_links_work(tmp_path: Path) -> None:
    for folder in ("charts", "exports"):  # a file outlives the link to it
        assert KEEP[folder] > LINK_LIFE[folder]
    data = tmp_path / "data"
    week_old_chart = _aged(data / "charts" / "digest-1-2026-11-20-vi.png", 6.5)
    stale_chart = _aged(data / "charts" / "digest-1-2026-11-10-vi.png", 9)
    stale_export = _aged(data / "exports" / "coso-1.xlsx", 3)
    attachment = _aged(data / "directives" / "a.pdf", 30)  # the directive's own record
    settings = make_settings("sqlite+aiosqlite:///unused.db", COSO_DATA_DIR=str(data))
    await remove_old_files(cast(Database, cast(Any, None)), settings, utcnow())
    assert week_old_chart.exists() and attachment.exists()
    assert not stale_chart.exists() and not stale_export.exists()
