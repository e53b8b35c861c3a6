"""Eligibility from a CSV file (household_code,policy_key[,unit_code]) under one unit.

As with the unit import, a file is taken whole or not at all: every row is checked against
the database before anything is written, and the write is one transaction, so a bad row
names its line and reason and leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage import support
from storage.csv_import import CsvImportError, records
from storage.models import Household, Unit
from wording import N_, normalize

COLUMNS = ("household_code", "policy_key", "unit_code")
REQUIRED_COLUMNS = ("household_code", "policy_key")


@dataclass(frozen=True)
class EligibilityRow:
    household_code: str
    policy_key: str
    unit_code: str | None
    line: int


class EligibilityImportError(CsvImportError):
    """A row that cannot be imported; `msgid` and `values` let the caller translate it."""


@dataclass
class EligibilityResult:
    added: int = 0
    already: int = 0

    @property
    def total(self) -> int:
        return self.added + self.already


# --- reading a file -------------------------------------------------------------------------

def read_csv(path: Path) -> list[EligibilityRow]:
    return parse_csv(path.read_bytes())


def parse_csv(data: bytes) -> list[EligibilityRow]:
    rows: list[EligibilityRow] = []
    seen: dict[tuple[str | None, str, str], int] = {}
    for line, header, cells in records(data, REQUIRED_COLUMNS, COLUMNS,
                                       EligibilityImportError):
        row = _row(dict(zip(header, cells, strict=False)), line)
        _not_duplicate(row, seen)
        rows.append(row)
    return rows


def _row(cells: dict[str, str], line: int) -> EligibilityRow:
    code = normalize(cells.get("household_code") or "")
    key = normalize(cells.get("policy_key") or "").lower()
    unit_code = normalize(cells.get("unit_code") or "") or None
    for column, value in (("household_code", code), ("policy_key", key)):
        if not value:
            raise EligibilityImportError(line, N_("{column} is empty"), column=column)
    return EligibilityRow(code, key, unit_code, line)


def _not_duplicate(row: EligibilityRow, seen: dict[tuple[str | None, str, str], int]) -> None:
    key = (row.unit_code, row.household_code, row.policy_key)
    if key in seen:
        raise EligibilityImportError(row.line, N_("the same household and policy already "
                                                  "appear on line {first}"), first=seen[key])
    seen[key] = row.line


# --- checking against the database and writing ----------------------------------------------

async def apply_rows(session: AsyncSession, root: Unit, rows: Sequence[EligibilityRow]
                     ) -> EligibilityResult:
    """Check every row, then mark the households eligible; the caller owns the transaction."""
    policies = {item.key for item in await support.policies(session, active_only=False)}
    index = await _households_under(session, root)
    pairs: list[tuple[Household, str]] = []
    for row in rows:
        if row.policy_key not in policies:
            raise EligibilityImportError(row.line, N_("unknown policy {policy}"),
                                         policy=row.policy_key)
        pairs.append((_household(row, root, index), row.policy_key))
    result = EligibilityResult()
    for household, policy_key in dict.fromkeys(pairs):  # one household twice by two names
        if await support.mark_eligible(session, household, policy_key):
            result.added += 1
        else:
            result.already += 1
    return result


async def _households_under(session: AsyncSession, root: Unit
                            ) -> dict[str, list[Household]]:
    query = (select(Household).join(Unit, Unit.id == Household.unit_id)
             .where(Unit.path.startswith(root.path)).options(selectinload(Household.unit)))
    index: dict[str, list[Household]] = {}
    for household in (await session.execute(query)).scalars():
        index.setdefault(household.code, []).append(household)
    return index


def _household(row: EligibilityRow, root: Unit, index: dict[str, list[Household]]
               ) -> Household:
    found = index.get(row.household_code, [])
    if row.unit_code is not None:
        found = [h for h in found if h.unit.code == row.unit_code]
        if not found:
            raise EligibilityImportError(
                row.line, N_("household {household} is not in unit {unit} under {root}"),
                household=row.household_code, unit=row.unit_code, root=root.code)
        return found[0]
    if not found:
        raise EligibilityImportError(row.line, N_("household {household} is not under {root}"),
                                     household=row.household_code, root=root.code)
    if len(found) > 1:
        raise EligibilityImportError(
            row.line, N_("household code {household} is used in several units under {root}; "
                         "add a unit_code column"), household=row.household_code,
            root=root.code)
    return found[0]
