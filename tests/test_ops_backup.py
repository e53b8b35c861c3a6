"""Backups that restore: `coso backup` of a live SQLite database under load, `coso restore`
into a fresh directory, the checks a restore makes, and the nightly job."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.ops.backup import run_nightly
from storage import backup
from storage.db import Database
from storage.migrate import current_heads
from storage.models import ProcessedUpdate
from tests.conftest import Coso, StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import eventually, start_telegram

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def sqlite_only(db_url: str) -> Path:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's backup; PostgreSQL's answer is tested in "
                    "test_postgres_is_sent_to_pg_dump")
    path = backup.sqlite_file(db_url)
    assert path is not None
    return path


async def ledger(db: Database) -> set[str]:
    async with db.read() as session:
        return set((await session.scalars(select(ProcessedUpdate.update_id))).all())


def ledger_of(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT update_id FROM processed_updates")}
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_drill_backup_under_load_restores_everything_committed_before_it(
        start_bot: StartBot, tg: TelegramDouble, coso: Coso, db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sqlite_only(db_url)
    runtime = await start_telegram(start_bot, tg)
    await seed_ward(runtime.db)
    sent: list[int] = []
    stop = asyncio.Event()

    async def load() -> None:  # 40 people writing at once, without waiting for replies
        n = 0
        while not stop.is_set():
            sent.append(await tg.send_text(7000 + n % 40, f"xin chào {n}"))
            n += 1
            await asyncio.sleep(0.002)

    writer = asyncio.create_task(load())
    async def busy() -> bool:  # the bot is busy when the backup starts
        return len(await ledger(runtime.db)) >= 150

    await eventually(busy, 60)
    committed = await ledger(runtime.db)
    copy = tmp_path / "backups" / "drill.db"
    code, out, err = await coso("backup", "--to", str(copy))
    after_backup = len(sent)
    await asyncio.sleep(0.5)  # and it goes on after
    stop.set()
    await writer

    async def all_handled() -> bool:  # every update handled before the bot stops
        return len(await ledger(runtime.db)) >= len(sent)

    await eventually(all_handled, 60)

    assert code == 0, err
    assert "integrity ok" in out and len(sent) > after_backup
    assert mode(copy) == 0o600
    fresh = tmp_path / "fresh" / "coso.db"
    monkeypatch.setenv("COSO_DATABASE_URL", f"sqlite+aiosqlite:///{fresh}")
    code, out, err = await coso("restore", str(copy))

    assert code == 0, err
    assert f"into {fresh}" in out
    assert integrity(fresh) == "ok" and mode(fresh) == 0o600
    restored = ledger_of(fresh)
    assert committed <= restored, f"{len(committed - restored)} committed updates lost"
    with capsys.disabled():  # the figure for docs/reliability.md (pytest -s)
        print(f"\nbackup drill: {len(committed)} updates committed at the backup's start, "
              f"{len(restored)} in the copy, {len(sent)} sent in all")


async def test_restore_refuses_a_running_bot_and_bad_files(
        start_bot: StartBot, coso: Coso, db_url: str, tmp_path: Path) -> None:
    database = sqlite_only(db_url)
    good = tmp_path / "good.db"
    assert (await coso("backup", "--to", str(good)))[0] == 0
    runtime = await start_bot()

    code, _, err = await coso("restore", str(good))
    assert code == 1 and "a bot is running on" in err
    assert (await coso("backup", "--to", str(good)))[0] == 1  # never over an existing file

    await runtime.stop()
    not_a_database = tmp_path / "notes.db"
    await asyncio.to_thread(not_a_database.write_text, "dân số khu phố 1\n" * 500)
    code, _, err = await coso("restore", str(not_a_database))
    assert code == 1 and "is not a SQLite database" in err

    newer = tmp_path / "newer.db"
    await asyncio.to_thread(_copy_with_revision, good, newer, "0099_future")
    code, _, err = await coso("restore", str(newer))
    assert code == 1 and "newer than this Coso" in err

    code, out, err = await coso("restore", str(good))
    assert code == 0, err
    [kept] = backup.earlier_kept(database)
    assert kept.name.startswith(database.name + ".before-restore-")
    assert kept.is_file() and mode(kept) == 0o600
    assert f"The database it replaced is kept as {kept}." in out
    assert integrity(database) == "ok"

    # Twice: the first restore's copy (maybe the only good database) is not overwritten,
    # and the output says where this one went and that the earlier one is still there.
    first = kept.read_bytes()
    code, out, err = await coso("restore", str(good))
    assert code == 0, err
    [older, newer] = backup.earlier_kept(database)
    assert older == kept and older.read_bytes() == first and mode(newer) == 0o600
    assert f"The database it replaced is kept as {newer}." in out
    assert (f"1 database replaced by an earlier restore is kept too, beside it ({kept.name})"
            in out)

    behind = tmp_path / "behind.db"
    await asyncio.to_thread(_copy_with_revision, good, behind, "0003")
    code, out, _ = await coso("restore", str(behind))
    assert code == 0 and "coso db upgrade" in out


def test_a_replaced_database_gets_a_new_name_each_time(tmp_path: Path) -> None:
    database = tmp_path / "coso.db"
    now = datetime(2026, 12, 4, 20, 41, 5, tzinfo=UTC)
    first = backup.kept_name(database, now)
    assert first.name == "coso.db.before-restore-20261204-204105Z"
    first.write_bytes(b"")
    second = backup.kept_name(database, now)  # within the same second
    assert second.name == "coso.db.before-restore-20261204-204105Z-2"
    second.write_bytes(b"")
    assert backup.earlier_kept(database) == [first, second]


def _copy_with_revision(source: Path, target: Path, revision: str) -> None:
    backup.backup(source, target)
    conn = sqlite3.connect(target)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.close()


async def test_postgres_is_sent_to_pg_dump(coso: Coso, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSO_DATABASE_URL",
                       "postgresql+asyncpg://coso:s3cret@db.example:5432/coso")
    code, out, err = await coso("backup", "--to", str(tmp_path / "city.dump"))
    assert code == 1 and "pg_dump" in err
    assert out == (f"pg_dump --format=custom --file={tmp_path / 'city.dump'} "
                   "postgresql://coso@db.example:5432/coso\n")
    assert "s3cret" not in out + err
    code, out, err = await coso("restore", str(tmp_path / "city.dump"))
    assert code == 1 and out.startswith("pg_restore ")


async def test_nightly_backup_is_claimed_once_and_keeps_n_days(
        db: Database, db_url: str, tmp_path: Path) -> None:
    sqlite_only(db_url)
    folder = tmp_path / "nightly"
    settings = make_settings(db_url, COSO_BACKUP_DIR=str(folder), COSO_BACKUP_KEEP_DAYS=3)
    await seed_ward(db)
    folder.mkdir()
    for day in ("2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"):
        (folder / f"coso-{day}.db").write_bytes(b"old")
    (folder / "keep-me.db").write_bytes(b"not ours")

    assert not await run_nightly(db, settings, datetime(2026, 11, 24, 1, 59, tzinfo=HCM))
    assert await run_nightly(db, settings, datetime(2026, 11, 24, 2, 5, tzinfo=HCM))
    assert not await run_nightly(db, settings, datetime(2026, 11, 24, 2, 10, tzinfo=HCM))

    names = sorted(p.name for p in folder.iterdir())
    assert names == ["coso-2026-11-22.db", "coso-2026-11-23.db", "coso-2026-11-24.db",
                     "keep-me.db"]
    tonight = folder / "coso-2026-11-24.db"
    assert mode(tonight) == 0o600
    assert backup.check(tonight).revisions == current_heads()
    assert backup.check(tonight).ok
