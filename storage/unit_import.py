"""Units from a CSV file (code,name,level,parent_code): parse, validate, write in one go.

A file is taken whole or not at all: every row is checked before anything is written, and
the write is one transaction, so a bad row leaves the database as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import units
from storage.csv_import import CsvImportError, records
from storage.models import Unit
from wording import N_, normalize

COLUMNS = ("code", "name", "level", "parent_code")
REQUIRED_COLUMNS = ("code", "name", "level")
MAX_CODE = 64
MAX_NAME = 200
MAX_LEVEL = 32
_LEVEL = re.compile(r"^[a-z][a-z0-9_]*$")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class UnitRow:
    """One unit as a file (or the official list) describes it; line 0 when not from a file."""

    code: str
    name: str
    level: str
    parent_code: str | None
    line: int = 0


class UnitImportError(CsvImportError):
    """A row that cannot be imported; `msgid` and `values` let the caller translate it."""


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    codes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated


# --- reading a file -------------------------------------------------------------------------

def read_csv(path: Path) -> list[UnitRow]:
    """Every row of the file, checked one by one; raises UnitImportError at the first bad one."""
    return parse_csv(path.read_bytes())


def parse_csv(data: bytes) -> list[UnitRow]:
    rows: list[UnitRow] = []
    seen: dict[str, int] = {}
    for line, header, cells in records(data, REQUIRED_COLUMNS, COLUMNS, UnitImportError):
        row = _row(dict(zip(header, cells, strict=False)), line)
        _not_duplicate(row, seen)
        rows.append(row)
    return rows


def _row(cells: dict[str, str], line: int) -> UnitRow:
    code, name = normalize(cells.get("code") or ""), normalize(cells.get("name") or "")
    level = normalize(cells.get("level") or "").lower()
    parent = normalize(cells.get("parent_code") or "") or None
    for column, value in (("code", code), ("name", name), ("level", level)):
        if not value:
            raise UnitImportError(line, N_("{column} is empty"), column=column)
    _check_lengths(code, name, level, line)
    if parent == code:
        raise UnitImportError(line, N_("unit {code} cannot be its own parent"), code=code)
    return UnitRow(code, name, level, parent, line)


def _check_lengths(code: str, name: str, level: str, line: int) -> None:
    if len(code) > MAX_CODE:
        raise UnitImportError(line, N_("code is longer than {limit} characters"), limit=MAX_CODE)
    if len(name) > MAX_NAME:
        raise UnitImportError(line, N_("name is longer than {limit} characters"), limit=MAX_NAME)
    if len(level) > MAX_LEVEL or not _LEVEL.match(level):
        raise UnitImportError(line, N_("level {level} is not a short lowercase word like ward "
                                       "or quarter"), level=level)


def _not_duplicate(row: UnitRow, seen: dict[str, int]) -> None:
    if row.code in seen:
        raise UnitImportError(row.line, N_("code {code} already appears on line {first}"),
                              code=row.code, first=seen[row.code])
    seen[row.code] = row.line


# --- writing ---------------------------------------------------------------------------------

async def apply_rows(session: AsyncSession, rows: Sequence[UnitRow],
                     progress: Progress | None = None) -> ImportResult:
    """Create or update the units, parents first; the caller owns the transaction.

    Parents may come later in the rows or already be in the database. Unknown parents and
    cycles (also through units already stored) are refused before anything is written.
    """
    existing = {unit.code: unit for unit in await units.all_units(session)}
    parents = _final_parents(existing, rows)
    result = ImportResult()
    done = 0
    for batch in _batches(rows, parents, _progress_step(len(rows))):
        for row in batch:
            result.created += _put(session, existing, row)
            result.codes.append(row.code)
        await session.flush()  # new units get their ids: the next depth links to them
        done += len(batch)
        if progress is not None:
            progress(done, len(rows))
    result.updated = len(rows) - result.created
    await repair_paths(session)
    return result


def _put(session: AsyncSession, existing: dict[str, Unit], row: UnitRow) -> bool:
    """Create or update one unit (its path is set afterwards); True when it is new."""
    unit = existing.get(row.code)
    is_new = unit is None
    if unit is None:
        unit = existing[row.code] = Unit(code=normalize(row.code), path="")
        session.add(unit)
    unit.name, unit.level = normalize(row.name), normalize(row.level)
    unit.parent_id = existing[row.parent_code].id if row.parent_code else None
    return is_new


def _batches(rows: Sequence[UnitRow], parents: dict[str, str | None], size: int
             ) -> Iterator[list[UnitRow]]:
    """Rows parents first, in batches that never mix depths (a parent is flushed first)."""
    depth: dict[str, int] = {}
    for row in rows:
        _depth(row, parents, depth)
    ordered = sorted(rows, key=lambda row: depth[row.code])
    for _, same_depth in groupby(ordered, key=lambda row: depth[row.code]):
        level = list(same_depth)
        for start in range(0, len(level), size):
            yield level[start:start + size]


def _final_parents(existing: dict[str, Unit], rows: Sequence[UnitRow]) -> dict[str, str | None]:
    """code -> parent code once the rows are applied; refuses unknown parents."""
    by_id = {unit.id: unit.code for unit in existing.values()}
    parents: dict[str, str | None] = {
        code: by_id.get(unit.parent_id) if unit.parent_id else None
        for code, unit in existing.items()
    }
    parents.update((row.code, row.parent_code) for row in rows)
    for row in rows:
        if row.parent_code is not None and row.parent_code not in parents:
            raise UnitImportError(row.line, N_("parent {parent} is neither in the file nor in "
                                               "the database"), parent=row.parent_code)
    return parents


def _depth(row: UnitRow, parents: dict[str, str | None], depth: dict[str, int]) -> int:
    chain: list[str] = []
    code: str | None = row.code
    while code is not None and code not in depth:
        if code in chain:
            raise UnitImportError(row.line, N_("unit {code} would be its own ancestor: {cycle}"),
                                  code=row.code, cycle=" > ".join([*chain, code]))
        chain.append(code)
        code = parents.get(code)
    base = depth[code] if code is not None else -1
    for offset, link in enumerate(reversed(chain), start=1):
        depth[link] = base + offset
    return depth[row.code]


def _progress_step(total: int) -> int:
    return max(1, min(500, total // 10))


async def repair_paths(session: AsyncSession) -> int:
    """Recompute every materialised path (a moved unit moves its subtree); returns changes."""
    rows = (await session.execute(select(Unit.id, Unit.parent_id, Unit.path))).all()
    parent_of = {row.id: row.parent_id for row in rows}
    paths: dict[int, str] = {}
    changed = 0
    for row in rows:
        expected = _path(row.id, parent_of, paths)
        if expected != row.path:
            unit = await session.get(Unit, row.id)
            assert unit is not None
            unit.path = expected
            changed += 1
    await session.flush()
    return changed


def _path(unit_id: int, parent_of: dict[int, int | None], paths: dict[int, str]) -> str:
    chain: list[int] = []
    current: int | None = unit_id
    while current is not None and current not in paths:
        chain.append(current)
        current = parent_of.get(current)
    prefix = paths[current] if current is not None else "/"
    for link in reversed(chain):
        prefix = paths[link] = f"{prefix}{link}/"
    return paths[unit_id]

