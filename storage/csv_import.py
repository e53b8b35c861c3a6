"""Reading the CSV files admins import (units, households, eligibility): one set of rules for
encoding, header and line numbers, so that every import names a bad file's line the same way."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from wording import N_, normalize


class CsvImportError(Exception):
    """A row that cannot be imported; `msgid` and `values` let the caller translate it."""

    def __init__(self, line: int, msgid: str, **values: Any) -> None:
        self.line, self.msgid, self.values = line, msgid, values
        super().__init__(f"line {line}: {msgid.format(**values)}")


def records(data: bytes, required: Sequence[str], columns: Sequence[str],
            error: type[CsvImportError], known: Sequence[str] | None = None,
            ) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line, header, cells) for every non-blank row; header names are lower-case NFC.

    Raises `error` for text that is not UTF-8 (a BOM is fine), a header without the required
    columns (or, when `known` is given, with another column), or a line the csv module cannot
    read. `columns` is what the message lists.
    """
    reader = csv.reader(io.StringIO(_decode(data, error), newline=""))
    header = [normalize(cell).lower() for cell in next(reader, None) or []]
    missing = [name for name in required if name not in header]
    if missing:
        raise error(1, N_("the first line must be the header {columns}; missing: {missing}"),
                    columns=",".join(columns), missing=",".join(missing))
    unknown = [name for name in header if known is not None and name and name not in known]
    if unknown:
        raise error(1, N_("unknown column {column}; the columns are {columns}"),
                    column=unknown[0], columns=",".join(known or ()))
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield line, header, cells
            line = reader.line_num + 1
    except csv.Error as exc:
        raise error(reader.line_num, N_("unreadable CSV: {error}"), error=str(exc)) from None


def _decode(data: bytes, error: type[CsvImportError]) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(line, N_("not valid UTF-8 text (save the file as CSV UTF-8)")) from None
