"""Units from a CSV file (code,name,level,parent_code): parse, validate, write in one go.

A file is taken whole or not at all: every row is checked before anything is written, and
the write is one transaction, so a bad row leaves the database as it was. Every level is one
of storage/units.py's LEVEL_TIERS and every parent sits above its child there; an existing
unit gets a new parent (its subtree, households and people moving with it) only when the
caller says `move`, and the result lists each move with what changes scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.text import normalize
from storage import units
from storage.csv_import import CsvImportError, records
from storage.models import Household, RoleAssignment, Unit

COLUMNS = ("code", "name", "level", "parent_code")
REQUIRED_COLUMNS = ("code", "name", "level")
MAX_CODE = 64
MAX_NAME = 200
MAX_LEVEL = 32

Progress = Callable[[int, int], None]
MOVE_REFUSAL = N_("{code} would move from under {old} to under {new} (units: {units}, "
                  "households: {households}, people: {people} would change scope); run "
                  "again with --move to move it")


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


@dataclass(frozen=True)
class Move:
    """An existing unit given a new parent, and what changes scope with it."""

    code: str
    old_parent: str | None
    new_parent: str | None
    units: int  # the unit and its subtree
    households: int
    people: int  # holding an active role on one of those units


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    codes: list[str] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)

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
    if level not in units.LEVEL_RANK:
        raise UnitImportError(line, N_("level {level} is not one of the tree's levels: "
                                       "{order}"), level=level[:MAX_LEVEL],
                              order=units.LEVEL_ORDER)


def _not_duplicate(row: UnitRow, seen: dict[str, int]) -> None:
    if row.code in seen:
        raise UnitImportError(row.line, N_("code {code} already appears on line {first}"),
                              code=row.code, first=seen[row.code])
    seen[row.code] = row.line


# --- writing ---------------------------------------------------------------------------------

async def apply_rows(session: AsyncSession, rows: Sequence[UnitRow],
                     progress: Progress | None = None, move: bool = False) -> ImportResult:
    """Create or update the units, parents first; the caller owns the transaction.

    Parents may come later in the rows or already be in the database. Unknown parents,
    cycles (also through units already stored), a parent not above its child in the level
    order and, without `move`, a new parent for an existing unit are refused before anything
    is written.
    """
    existing = {unit.code: unit for unit in await units.all_units(session)}
    parents = _final_parents(existing, rows)
    depth: dict[str, int] = {}
    for row in rows:
        _depth(row, parents, depth)
    _check_levels(existing, rows, parents)
    result = ImportResult(moves=await _moves(session, existing, rows, move))
    done = 0
    for batch in _batches(rows, depth, _progress_step(len(rows))):
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


def _batches(rows: Sequence[UnitRow], depth: dict[str, int], size: int
             ) -> Iterator[list[UnitRow]]:
    """Rows parents first, in batches that never mix depths (a parent is flushed first)."""
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


def _check_levels(existing: dict[str, Unit], rows: Sequence[UnitRow],
                  parents: dict[str, str | None]) -> None:
    """Each row's parent above it, and each row above the children it keeps or gains."""
    levels = {code: unit.level for code, unit in existing.items()}
    levels.update((row.code, row.level) for row in rows)
    line_of = {row.code: row.line for row in rows}
    for code, parent in parents.items():
        touched = code in line_of or parent in line_of
        if parent is not None and touched and not units.may_hold(levels[parent], levels[code]):
            raise UnitImportError(line_of[code] if code in line_of else line_of[parent],
                                  units.LEVEL_REFUSAL,
                                  code=code, level=levels[code], parent=parent,
                                  parent_level=levels[parent], order=units.LEVEL_ORDER)


async def _moves(session: AsyncSession, existing: dict[str, Unit], rows: Sequence[UnitRow],
                 move: bool) -> list[Move]:
    """The stored units the rows give another parent; refused without `move`."""
    by_id = {unit.id: unit.code for unit in existing.values()}
    moves = []
    for row in rows:
        unit = existing.get(row.code)
        old = by_id.get(unit.parent_id) if unit is not None and unit.parent_id else None
        if unit is None or old == row.parent_code:
            continue
        found = Move(row.code, old, row.parent_code, *await _scope_counts(session, unit))
        if not move:
            raise UnitImportError(row.line, MOVE_REFUSAL, code=row.code, old=old or "-",
                                  new=row.parent_code or "-", units=found.units,
                                  households=found.households, people=found.people)
        moves.append(found)
    return moves


async def _scope_counts(session: AsyncSession, unit: Unit) -> tuple[int, int, int]:
    """Units, households and people (active roles) in the unit's stored subtree."""
    inside = select(Unit.id).where(Unit.path.startswith(unit.path)).scalar_subquery()
    count_units = select(func.count()).select_from(Unit).where(Unit.path.startswith(unit.path))
    homes = select(func.count()).select_from(Household).where(Household.unit_id.in_(inside))
    people = select(func.count(func.distinct(RoleAssignment.person_id))).where(
        RoleAssignment.unit_id.in_(inside), RoleAssignment.active.is_(True))
    return (int(await session.scalar(count_units) or 0), int(await session.scalar(homes) or 0),
            int(await session.scalar(people) or 0))


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

