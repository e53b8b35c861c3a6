"""`coso export` and /export: the workbook opened back with openpyxl and checked cell by cell,
the CSV files, the period and scope limits, and the file sent over the Telegram double."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.cli import main as cli_main
from bot.settings import get_settings
from storage import households, reports, support, units
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Household
from storage.reports import CheckInAnswer
from tests.conftest import Seeded, StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import data_for, register, say, start_telegram, tap

# 10:00 in Ho Chi Minh City on 3 November 2026 (UTC+7).
NOV_3 = datetime(2026, 11, 3, 3, 0, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, 3, 0, tzinfo=UTC)


async def _household(db: Database, unit_code: str, code: str, **extra: object) -> Household:
    async with db.transaction() as session:
        unit = await units.by_code(session, unit_code)
        assert unit is not None
        return await households.add(session, unit, code, **extra)  # type: ignore[arg-type]


async def _world(db: Database) -> Seeded:
    """In ward 26734: two households, a report in the period and one before it, a check-in,
    a delivery; in ward 26737 one household with a report, which no export of 26734 shows."""
    seeded = await seed_ward(db)
    first = await _household(db, "26734-KP1", "12 Lê Lợi", head_name="Nguyễn Văn An",
                             members=4, flags=("poor", "elderly_alone"))
    await _household(db, "26734-KP2", "3 Pasteur", members=2)
    elsewhere = await _household(db, "26737-KP1", "9 Hàm Nghi", members=1)
    async with db.transaction() as session:
        report = await reports.create(session, household=first, category_key="f0",
                                      people_count=3, urgent=True, note="Sốt cao",
                                      photo=None, person_id=None, now=NOV_3)
        await reports.resolve(session, report, person_id=None, now=NOV_3.replace(hour=9))
        await reports.create(session, household=first, category_key="short_food",
                             people_count=4, urgent=False, note=None, photo=None,
                             person_id=None, now=OCT_20)
        await reports.create(session, household=elsewhere, category_key="f0", people_count=1,
                             urgent=False, note=None, photo=None, person_id=None, now=NOV_3)
        await reports.record_check_in(session, first.unit_id, date(2026, 11, 3),
                                      CheckInAnswer.NO_CHANGE, None, NOV_3)
        await support.record_delivery(session, household=first, policy_key="food_bag",
                                      amount=2, status="delivered",
                                      delivered_on=date(2026, 11, 4), photo=None,
                                      person_id=None, now=NOV_3)
    return seeded


Run = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
async def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> AsyncIterator[Run]:
    await asyncio.to_thread(upgrade, db_url)
    db = Database(db_url)
    await _world(db)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COSO_DATABASE_URL", db_url)
    monkeypatch.setenv("COSO_DEFAULT_LOCALE", "vi")
    get_settings.cache_clear()

    async def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli_main, ["export", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    yield invoke
    get_settings.cache_clear()
    await db.dispose()


async def test_xlsx_has_a_sheet_per_kind_with_vietnamese_headers_and_real_dates(
        run: Run, tmp_path: Path) -> None:
    code, out, err = await run("--unit", "26734", "--from", "2026-11-01", "--to",
                               "2026-11-30", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rows"] == {"Households": 2, "Reports": 1, "Daily check-ins": 1,
                               "Support deliveries": 1}
    [path] = summary["files"]
    assert Path(path).name == "coso-26734-2026-11-01-2026-11-30.xlsx"
    book = load_workbook(tmp_path / path)
    assert book.sheetnames == ["Hộ gia đình", "Báo cáo", "Báo cáo ngày", "Hỗ trợ đã trao"]

    homes = book["Hộ gia đình"]
    assert [c.value for c in homes[1]][:5] == ["Mã đơn vị", "Đơn vị", "Mã hộ", "Chủ hộ",
                                                "Số người"]
    assert [c.value for c in homes[2]] == ["26734-KP1", "Khu phố 1", "12 Lê Lợi",
                                           "Nguyễn Văn An", 4, "có", None, "có", None, None,
                                           None]
    assert homes.freeze_panes == "A2"

    filed = book["Báo cáo"]
    row = [c.value for c in filed[2]]
    assert row[0] > 0 and row[2:9] == ["26734-KP1", "Khu phố 1", "12 Lê Lợi",
                                       "Ca bệnh xác nhận (F0)", 3, "có", "Đã xử lý xong"]
    assert row[1] == datetime(2026, 11, 3, 10, 0)  # local time, a real Excel date
    assert row[9] == datetime(2026, 11, 3, 16, 0) and row[10] == "Sốt cao"
    assert filed.cell(2, 2).number_format == "DD/MM/YYYY HH:MM"

    check_in = [c.value for c in book["Báo cáo ngày"][2]]
    assert check_in[:4] == [datetime(2026, 11, 3), "26734-KP1", "Khu phố 1",
                            "Hôm nay không có gì thay đổi"]
    assert book["Báo cáo ngày"].cell(2, 1).number_format == "DD/MM/YYYY"
    delivery = [c.value for c in book["Hỗ trợ đã trao"][2]]
    assert delivery[1:] == [datetime(2026, 11, 4), "26734-KP1", "Khu phố 1", "12 Lê Lợi",
                            "Túi an sinh", 2, "túi", "Đã trao", None]


async def test_csv_files_carry_the_same_rows_with_a_bom(
        run: Run, tmp_path: Path) -> None:
    code, out, err = await run("--unit", "26734-KP1", "--from", "2026-10-01",
                               "--to", "2026-11-30", "--format", "csv", "--out", "out")
    assert code == 0, err
    names = sorted(Path(line).name for line in out.splitlines())
    assert names == ["daily-check-ins.csv", "households.csv", "reports.csv",
                     "support-deliveries.csv"]
    raw = (tmp_path / "out" / "reports.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["ID", "Ngày gửi", "Mã đơn vị"]
    assert [(r[1], r[5]) for r in rows[1:]] == [("2026-10-20 10:00", "Thiếu lương thực, thực phẩm"),
                                               ("2026-11-03 10:00", "Ca bệnh xác nhận (F0)")]


async def test_csv_out_naming_a_file_is_refused_not_made_a_folder(
        run: Run, tmp_path: Path) -> None:
    """Found by a new-user trial: `--format csv --out x.csv` created a folder named x.csv."""
    code, out, err = await run("--unit", "26734-KP1", "--from", "2026-10-01",
                               "--to", "2026-11-30", "--format", "csv", "--out", "x.csv")
    assert code != 0 and out == ""
    assert "x.csv" in err and "--out x" in err and "--format xlsx" in err, err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(("argv", "reason"), [
    (("--unit", "NOPE", "--from", "2026-11-01", "--to", "2026-11-30"), "không có đơn vị NOPE"),
    (("--unit", "26734", "--from", "2026-11-30", "--to", "2026-11-01"), "--to"),
    (("--unit", "26734", "--from", "2025-01-01", "--to", "2026-11-30"), "366"),
])
async def test_bad_requests_write_nothing(run: Run, tmp_path: Path,
                                          argv: tuple[str, ...], reason: str) -> None:
    code, out, err = await run(*argv)
    assert code == 1 and reason in err and out == ""
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.xlsx")))


async def test_ward_staff_get_the_workbook_in_chat_and_a_leader_is_refused(
        tg: TelegramDouble, start_bot: StartBot, tmp_path: Path) -> None:
    runtime = await start_telegram(start_bot, tg, COSO_DATA_DIR=str(tmp_path / "data"))
    seeded = await _world(runtime.db)
    staff, leader = 501, 502
    await register(tg, staff, seeded.codes["ward_staff:WARD"],
                   unit="Phường Bến Thành, Thành phố Hồ Chí Minh")
    await register(tg, leader, seeded.codes["leader:KP1"])
    [question] = await say(tg, staff, "/export")
    assert question.button_texts == ["The last 7 days", "The last 30 days", "This month",
                                     "Last month", "Cancel"]
    [document] = await tap(tg, staff, data_for(question, "The last 30 days"))
    assert "Phường Bến Thành" in (document.text or "")  # the caption
    assert document.filename and document.filename.endswith(".xlsx")
    assert isinstance(document.document, bytes)
    book = load_workbook(io.BytesIO(document.document))
    assert book.sheetnames == ["Households", "Reports", "Daily check-ins", "Support deliveries"]
    assert book["Households"].max_row == 3  # the header and this ward's two households
    [refusal] = await say(tg, leader, "/export")
    assert "only for" in (refusal.text or "")

