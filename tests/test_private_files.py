"""Personal data on disk (Decree 13/2023/ND-CP): under a permissive umask (022) the data
directory and its folders are 0700 and every file the bot writes 0600 (exports, attachments,
the SQLite database and its -wal/-shm), and `coso export` defaults to COSO_DATA_DIR/exports.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.files import KEEP, remove_older
from tests.conftest import Coso, StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import data_for, register, say, start_telegram, tap

TODAY = date.today().isoformat()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask of a shell that forgot `umask 077`: files 0644, folders 0755."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_chat_export_data_dir_and_sqlite_files_are_private(
        open_umask: None, db_url: str, tg: TelegramDouble, start_bot: StartBot,
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "exports").mkdir(parents=True)  # left world-readable by an older version
    os.chmod(data, 0o755)
    runtime = await start_telegram(start_bot, tg, COSO_DATA_DIR=str(data))
    seeded = await seed_ward(runtime.db)
    staff = 701
    await register(tg, staff, seeded.codes["ward_staff:WARD"],
                   unit="Phường Bến Thành, Thành phố Hồ Chí Minh")
    [question] = await say(tg, staff, "/export")
    await tap(tg, staff, data_for(question, "The last 7 days"))
    [export] = (data / "exports").iterdir()
    assert mode(export) == 0o600
    assert {folder.name: mode(folder) for folder in [data, *data.iterdir()]} == {
        "data": 0o700, "charts": 0o700, "exports": 0o700, "directives": 0o700, "cards": 0o700,
        "photos": 0o700, "relayed": 0o700}
    if db_url.startswith("sqlite"):
        database = tmp_path / "coso.db"
        files = [database, *(database.with_name(f"coso.db-{end}") for end in ("wal", "shm"))]
        assert {path.name: mode(path) for path in files if path.exists()} == {
            "coso.db": 0o600, "coso.db-wal": 0o600, "coso.db-shm": 0o600}


async def test_cli_export_writes_0600_where_the_admin_asked(
        open_umask: None, coso: Coso, db_url: str, start_bot: StartBot,
        tmp_path: Path) -> None:
    runtime = await start_bot()
    await seed_ward(runtime.db)
    span = ("export", "--unit", "26734", "--from", TODAY, "--to", TODAY)
    mine = tmp_path / "mine"
    mine.mkdir()  # the admin's own folder keeps its mode
    code, out, err = await coso(*span, "--out", str(mine / "ward.xlsx"))
    assert code == 0, err
    assert out.strip() == str(mine / "ward.xlsx")
    assert mode(mine / "ward.xlsx") == 0o600 and mode(mine) == 0o755
    code, out, err = await coso(*span, "--format", "csv", "--out", str(mine / "csv"))
    assert code == 0, err
    assert mode(mine / "csv") == 0o700  # a folder made for the files
    assert {mode(Path(line)) for line in out.splitlines()} == {0o600}
    # A path it cannot write: one line, no traceback.
    code, out, err = await coso(*span, "--out", str(mine / "ward.xlsx" / "inside.xlsx"))
    assert (code, out) == (1, "") and err.strip() == (
        f"coso: cannot write {mine / 'ward.xlsx' / 'inside.xlsx'}: File exists"), err


async def test_cli_export_defaults_to_the_data_dir(
        open_umask: None, coso: Coso, db_url: str, start_bot: StartBot,
        tmp_path: Path) -> None:
    runtime = await start_bot()
    await seed_ward(runtime.db)
    span = ("export", "--unit", "26734", "--from", TODAY, "--to", TODAY)
    code, out, err = await coso(*span)
    assert code == 0, err
    [printed] = out.splitlines()
    exports = (tmp_path / "data" / "exports").resolve()
    assert Path(printed).parent == exports and Path(printed).suffix == ".xlsx"
    assert mode(Path(printed)) == 0o600 and mode(exports) == 0o700
    assert not [name for name in os.listdir(tmp_path) if name.startswith("coso-")]  # not here
    code, out, err = await coso(*span, "--format", "csv")
    assert code == 0, err
    folders = {Path(line).parent for line in out.splitlines()}
    assert [folder.parent for folder in folders] == [exports]
    assert mode(folders.pop()) == 0o700
    assert {mode(Path(line)) for line in out.splitlines()} == {0o600}


async def test_directive_attachment_is_private(
        open_umask: None, coso: Coso, tg: TelegramDouble, start_bot: StartBot,
        tmp_path: Path) -> None:
    runtime = await start_telegram(start_bot, tg, COSO_DATA_DIR=str(tmp_path / "data"))
    seeded = await seed_ward(runtime.db)
    await register(tg, 702, seeded.codes["leader:KP1"])
    text, pdf = tmp_path / "d.txt", tmp_path / "plan.pdf"
    text.write_text("Họp tổ lúc 19:00.", encoding="utf-8")
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    code, out, err = await coso("directive", "send", "--scope", "26734-KP1", "--text-file",
                                str(text), "--attach", str(pdf))
    assert code == 0, err
    [stored] = (tmp_path / "data" / "directives").iterdir()
    assert mode(stored) == 0o600 and mode(stored.parent) == 0o700


def test_old_csv_export_folders_go_too(tmp_path: Path) -> None:
    old = tmp_path / "coso-26734-2026-11-01-2026-11-30"
    old.mkdir()
    (old / "households.csv").write_text("x")
    three_days_ago = time.time() - timedelta(days=3).total_seconds()
    os.utime(old, (three_days_ago, three_days_ago))
    assert remove_older(tmp_path, KEEP["exports"]) == 1 and not old.exists()
