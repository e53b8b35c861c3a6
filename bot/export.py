"""Writing an export (storage/export.py's sheets) as one .xlsx workbook or one CSV file per
sheet, with names and headers in the reader's language and dates as real dates.

Every export goes through here, so every text cell goes through `formula_like`: household
codes, names and notes come from chat and from imported files, and a spreadsheet evaluates
text that starts like a formula (`=HYPERLINK(...)` opens a link, DDE runs a program).
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.i18n import Translator
from storage.export import Cell, Label, Sheet
from storage.private import folder_for, private_dir, private_file

if TYPE_CHECKING:  # openpyxl is imported where a workbook is written (~0.2 s)
    from openpyxl.cell.cell import Cell as XlsxCell
    from openpyxl.worksheet.worksheet import Worksheet

FORMATS = ("xlsx", "csv")
DATE_FORMAT, DATETIME_FORMAT = "DD/MM/YYYY", "DD/MM/YYYY HH:MM"
_UNSAFE = re.compile(r"[^\w.-]+")
# OWASP's CSV-injection rule: a cell starting with one of these is read as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_like(value: object) -> bool:
    """Text a spreadsheet would evaluate; numbers (-5 too) are numbers, never text."""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def file_stem(code: str, start: date, end: date) -> str:
    """coso-26734-2026-11-01-2026-11-24: what the file is, without characters a phone mangles."""
    return _UNSAFE.sub("-", f"coso-{code}-{start.isoformat()}-{end.isoformat()}")


def write_xlsx(sheets: list[Sheet], t: Translator, path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        page = book.create_sheet(t(sheet.name)[:31])
        page.append([t(header) for header in sheet.headers])
        for cell in page[1]:
            cell.font = Font(bold=True)
        page.freeze_panes = "A2"
        for row in sheet.rows:
            page.append([_value(t, value) for value in row])
        for line in page.iter_rows():
            for cell in line:
                _as_text(cell)
        _formats(page, sheet)
    folder_for(path)
    book.save(private_file(path))
    return path


def write_csv(sheets: list[Sheet], t: Translator, folder: Path) -> list[Path]:
    """One UTF-8 file per sheet, with a BOM so that Excel reads the Vietnamese right."""
    if not folder.is_dir():
        private_dir(folder)
    written = []
    for sheet in sheets:
        path = private_file(folder / f"{_UNSAFE.sub('-', sheet.name.lower())}.csv")
        with path.open("w", encoding="utf-8-sig", newline="") as file:
            out = csv.writer(file)
            out.writerow([_csv_text(t(header)) for header in sheet.headers])
            out.writerows([_csv_text(_text(t, value)) if isinstance(value, str)
                           else _text(t, value) for value in row] for row in sheet.rows)
        written.append(path)
    return written


def _as_text(cell: XlsxCell) -> None:
    """A str stays a string cell (openpyxl makes "=..." a formula); one that looks like a
    formula also gets Excel's quote prefix, so that editing the cell keeps it text."""
    if isinstance(cell.value, str):
        cell.data_type = "s"
        if formula_like(cell.value):
            cell.quotePrefix = True


def _csv_text(text: str) -> str:
    """CSV cannot say "text": OWASP's neutralisation, a leading apostrophe."""
    return f"'{text}" if formula_like(text) else text


def _value(t: Translator, value: Cell) -> Cell:
    return t(value) if isinstance(value, Label) else value


def _text(t: Translator, value: Cell) -> str:
    """CSV has no types: ISO dates, which every spreadsheet and script reads."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(_value(t, value))


def _formats(page: Worksheet, sheet: Sheet) -> None:
    """Date formats on date columns, and widths that fit the header and the longest value."""
    from openpyxl.utils import get_column_letter

    for index in range(1, len(sheet.headers) + 1):
        column = [row[index - 1] for row in sheet.rows]
        letter = get_column_letter(index)
        number_format = (DATETIME_FORMAT if any(isinstance(v, datetime) for v in column)
                         else DATE_FORMAT if any(isinstance(v, date) for v in column) else None)
        cells = page[letter][1:]
        if number_format:
            for cell in cells:
                cell.number_format = number_format
        longest = max([len(str(cell.value or "")) for cell in page[letter]] + [10])
        page.column_dimensions[letter].width = min(longest + 2, 60)
