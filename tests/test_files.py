"""Charts and exports under COSO_DATA_DIR are removed once they are two days old."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from bot.files import KEEP, remove_older


def test_only_files_older_than_the_limit_go(tmp_path: Path) -> None:
    old, fresh = tmp_path / "old.xlsx", tmp_path / "fresh.png"
    for path in (old, fresh):
        path.write_bytes(b"x")
    three_days_ago = time.time() - timedelta(days=3).total_seconds()
    os.utime(old, (three_days_ago, three_days_ago))
    assert remove_older(tmp_path, KEEP) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["fresh.png"]
    assert remove_older(tmp_path / "missing", KEEP) == 0
