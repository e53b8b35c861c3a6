"""Hostile cells in every export: text that a person typed in chat or a file carried, which a
spreadsheet would evaluate (`=HYPERLINK(...)`, `+1`, `@SUM(A1)`...), comes out as text in the
.xlsx (never a formula) and with OWASP's leading apostrophe in the CSV; numbers stay numbers.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from bot.export import write_csv, write_xlsx
from bot.i18n import Translator
from storage.export import Sheet
from tests.conftest import Coso, StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import data_for, register, say, start_telegram, tap

HYPERLINK = '=HYPERLINK("http://evil.example/?x","Open")'
# Imported from a file: codes and head names that start like formulas.
IMPORTED = [("=1+2", "+1"), ("+1", "-2+3"), ("-2+3", "@SUM(A1)"), ("@SUM(A1)", "=1+2"),
            ("\t=1", "\r=1")]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _household_file(folder: Path) -> Path:
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(["code", "head_name", "members"])
    for index, (code, name) in enumerate(IMPORTED, start=1):
        out.writerow([code, name, index])
    path = folder / "hostile.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


async def _typed_in_chat(tg: TelegramDouble, leader: int) -> None:
    """A leader adds a household whose code is a HYPERLINK formula and head name =1+2."""
    await say(tg, leader, "/household")
    [menu] = tg.messages_to(leader)[-1:]
    [units] = await tap(tg, leader, data_for(menu, "Add a household"))
    await tap(tg, leader, data_for(units, "Khu phố 1"))
    await say(tg, leader, HYPERLINK)
    await say(tg, leader, "=1+2")
    [flags] = await say(tg, leader, "4")
    [confirm] = await tap(tg, leader, data_for(flags, "Done"))
    [saved] = await tap(tg, leader, data_for(confirm, "Confirm"))
    assert "Saved" in (saved.text or ""), saved.describe()


def _text_cells(book_bytes: bytes) -> list[tuple[str, object, str]]:
    book = load_workbook(io.BytesIO(book_bytes))
    return [(page.title, cell.value, cell.data_type)
            for page in book for row in page.iter_rows() for cell in row]


def _assert_xlsx_safe(book_bytes: bytes, stored: set[str]) -> None:
    cells = _text_cells(book_bytes)
    assert not [cell for cell in cells if cell[2] == "f"], "a formula cell"
    strings = {value for _, value, kind in cells if kind == "s"}
    dangerous = {text for text in stored if text.startswith(DANGEROUS)}
    assert dangerous and dangerous <= strings  # the original text, as a string cell
    book = load_workbook(io.BytesIO(book_bytes))
    members = [row[4].value for row in book.worksheets[0].iter_rows(min_row=2)]
    assert members and all(isinstance(value, int) for value in members)  # numbers stay numbers


async def test_typed_and_imported_formulas_come_out_as_text_in_every_export(
        tg: TelegramDouble, start_bot: StartBot, coso: Coso, tmp_path: Path) -> None:
    runtime = await start_telegram(start_bot, tg, COSO_DATA_DIR=str(tmp_path / "data"))
    seeded = await seed_ward(runtime.db)
    staff, leader = 601, 602
    await register(tg, staff, seeded.codes["ward_staff:WARD"],
                   unit="Phường Bến Thành, Thành phố Hồ Chí Minh")
    await register(tg, leader, seeded.codes["leader:KP1"])
    code, out, err = await coso("households", "import", "--unit", "26734-KP2",
                                str(_household_file(tmp_path)))
    assert code == 0, err
    await _typed_in_chat(tg, leader)
    code, out, err = await coso("households", "list", "--unit", "26734", "--json")
    assert code == 0, err
    listed = json.loads(out)
    stored = {h["code"] for h in listed} | {h["head_name"] for h in listed}
    assert HYPERLINK in stored and "=1+2" in stored and "@SUM(A1)" in stored

    # /export in chat: the workbook sent over the Telegram double.
    [question] = await say(tg, staff, "/export")
    [document] = await tap(tg, staff, data_for(question, "The last 7 days"))
    assert isinstance(document.document, bytes)
    _assert_xlsx_safe(document.document, stored)

    # `coso export`, both formats.
    today = date.today().isoformat()
    span = ("--unit", "26734", "--from", today, "--to", today)
    code, out, err = await coso("export", *span, "--out", str(tmp_path / "e.xlsx"))
    assert code == 0, err
    _assert_xlsx_safe(await asyncio.to_thread((tmp_path / "e.xlsx").read_bytes), stored)
    code, out, err = await coso("export", *span, "--format", "csv", "--out",
                                str(tmp_path / "csv"))
    assert code == 0, err
    raw = (tmp_path / "csv" / "households.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw)))
    cells = [cell for row in rows[1:] for cell in row]
    assert f"'{HYPERLINK}" in cells and "'=1+2" in cells and "'@SUM(A1)" in cells
    assert not [cell for cell in cells if cell.startswith(DANGEROUS)]
    assert sorted(int(row[4]) for row in rows[1:]) == [1, 2, 3, 4, 4, 5]


def test_the_writers_neutralise_tab_and_carriage_return_and_keep_negative_numbers(
        tmp_path: Path) -> None:
    """Tab and CR cannot reach storage (names are trimmed), but a writer must not rely on it."""
    sheet = Sheet("Households", ("Household code", "Members"),
                  [("\t=1", -5), ("\r=1", 3), ("-2+3", -2), ("plain", 0)])
    t = Translator("en", ZoneInfo("Asia/Ho_Chi_Minh"))
    book = load_workbook(write_xlsx([sheet], t, tmp_path / "x.xlsx"))
    cells = [(c.value, c.data_type) for row in book.active.iter_rows(min_row=2) for c in row]
    # XML reads a carriage return back as a line feed (its own end-of-line rule).
    assert cells == [("\t=1", "s"), (-5, "n"), ("\n=1", "s"), (3, "n"), ("-2+3", "s"),
                     (-2, "n"), ("plain", "s"), (0, "n")]
    assert [c.quotePrefix for c in book.active["A"][1:]] == [True, True, True, False]
    [path] = write_csv([sheet], t, tmp_path / "csv")
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[1:] == [["'\t=1", "-5"], ["'\r=1", "3"], ["'-2+3", "-2"], ["plain", "0"]]
