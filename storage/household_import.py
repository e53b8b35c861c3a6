"""Households from a CSV file, for one unit's subtree: parse, check every row, write in one go.

The same rules as the unit import: a file is taken whole or not at all; the first bad row is
named by its line and reason. A code already in the unit (compared without case or
diacritics) is updated, not duplicated. Columns:

    code,head_name,members,elderly_alone,disability,poor,near_poor,young_children,pregnant
    [,unit_code]   a sub-unit of --unit the row belongs to (default: --unit itself)

Flags read 1/0, x/blank, có/không, yes/no, true/false. A flag or head_name column that is
absent leaves a re-imported household's value alone; a present, blank cell clears it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage import households, units
from storage.csv_import import CsvImportError, records
from storage.households import MAX_CODE, MAX_MEMBERS, MAX_NAME, MIN_MEMBERS
from storage.models import HOUSEHOLD_FLAGS, Household, Unit
from wording import N_, fold, normalize

COLUMNS = ("code", "head_name", "members", *HOUSEHOLD_FLAGS)
REQUIRED_COLUMNS = ("code", "members")
KNOWN_COLUMNS = (*COLUMNS, "unit_code")
TRUE_WORDS = {"1", "x", "co", "yes", "y", "true"}
FALSE_WORDS = {"0", "", "khong", "no", "n", "false"}


class HouseholdImportError(CsvImportError):
    """A row that cannot be imported; `msgid` and `values` let the caller translate it."""


@dataclass(frozen=True)
class HouseholdRow:
    code: str
    members: int
    line: int
    head_name: str | None = None  # meaningful only when has_name
    has_name: bool = False
    flags: dict[str, bool] = field(default_factory=dict)  # only the columns present
    unit_code: str | None = None


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated


# --- reading ---------------------------------------------------------------------------------

def read_csv(path: Path) -> list[HouseholdRow]:
    return parse_csv(path.read_bytes())


def parse_csv(data: bytes) -> list[HouseholdRow]:
    """Every row, checked; raises HouseholdImportError at the first bad one."""
    return [_row(header, cells, line) for line, header, cells in records(
        data, REQUIRED_COLUMNS, COLUMNS, HouseholdImportError, known=KNOWN_COLUMNS)]


def _row(header: list[str], record: list[str], line: int) -> HouseholdRow:
    if len(record) > len(header):
        raise HouseholdImportError(line, N_("more cells than the header has columns"))
    cells = {name: normalize(value) for name, value in zip(header, record, strict=False)}
    code = cells.get("code", "")
    if not code:
        raise HouseholdImportError(line, N_("{column} is empty"), column="code")
    if len(code) > MAX_CODE:
        raise HouseholdImportError(line, N_("code is longer than {limit} characters"),
                                   limit=MAX_CODE)
    name = cells.get("head_name") or None
    if name is not None and len(name) > MAX_NAME:
        raise HouseholdImportError(line, N_("head_name is longer than {limit} characters"),
                                   limit=MAX_NAME)
    # A short row leaves its last cells blank, as spreadsheets save them.
    flags = {flag: _flag(cells.get(flag, ""), flag, line)
             for flag in HOUSEHOLD_FLAGS if flag in header}
    return HouseholdRow(code=code, members=_members(cells.get("members", ""), line), line=line,
                        head_name=name, has_name="head_name" in header, flags=flags,
                        unit_code=cells.get("unit_code") or None)


def _members(value: str, line: int) -> int:
    if not value.isdigit() or not MIN_MEMBERS <= int(value) <= MAX_MEMBERS:
        raise HouseholdImportError(line, N_("members must be a whole number from {min} to "
                                            "{max}, not “{value}”"),
                                   min=MIN_MEMBERS, max=MAX_MEMBERS, value=value[:20])
    return int(value)


def _flag(value: str, column: str, line: int) -> bool:
    word = fold(value)
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise HouseholdImportError(line, N_("{column} must be 1/0, x/blank, có/không, yes/no or "
                                        "true/false, not “{value}”"),
                               column=column, value=value[:20])


# --- writing ---------------------------------------------------------------------------------

async def apply_rows(session: AsyncSession, unit: Unit, rows: Sequence[HouseholdRow]
                     ) -> ImportResult:
    """Create or update the households; the caller owns the transaction (all or nothing).

    Every row's unit is resolved and every duplicate found before the first write.
    """
    targets = await _targets(session, unit, rows)
    existing = {(h.unit_id, fold(h.code)): h for h in await households.in_subtree(session, unit)}
    result = ImportResult()
    for row in rows:
        target = targets[row.line]
        household = existing.get((target.id, fold(row.code)))
        if household is None:
            household = await households.add(session, target, row.code, members=row.members,
                                             flush=False)
            existing[(target.id, fold(row.code))] = household
            result.created += 1
        else:
            result.updated += 1
        _fill(household, row)
    await session.flush()
    return result


def _fill(household: Household, row: HouseholdRow) -> None:
    fields: dict[str, Any] = {"code": row.code, "members": row.members, **row.flags}
    if row.has_name:
        fields["head_name"] = row.head_name
    households.update(household, **fields)


async def _targets(session: AsyncSession, unit: Unit, rows: Sequence[HouseholdRow]
                   ) -> dict[int, Unit]:
    """line -> the unit each row lands on; refuses units outside --unit and repeated codes."""
    inside = {sub.code: sub for sub in await units.subtree(session, unit)}
    targets: dict[int, Unit] = {}
    seen: dict[tuple[int, str], int] = {}
    for row in rows:
        target = inside.get(row.unit_code) if row.unit_code else unit
        if target is None:
            raise HouseholdImportError(row.line, N_("unit {code} is not {unit} or one of its "
                                                    "sub-units"),
                                       code=row.unit_code, unit=unit.code)
        key = (target.id, fold(row.code))
        if key in seen:
            raise HouseholdImportError(row.line, N_("code {code} already appears on line "
                                                    "{first}"), code=row.code, first=seen[key])
        seen[key] = row.line
        targets[row.line] = target
    return targets
