"""The official province and ward/commune list (PyPI `vietnam-provinces`) as unit rows.

Codes are the official ones: provinces two digits ("79"), wards, communes and special zones
five ("26743"). Since July 2025 there is no district level: wards sit right under provinces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from storage.unit_import import ImportResult, Progress, UnitRow, apply_rows

if TYPE_CHECKING:  # the list (~0.1 s to import) is read only when a province is imported
    from vietnam_provinces import ProvinceCode, Ward

PROVINCE_LEVEL = "province"
LEVELS = {"phường": "ward", "xã": "commune", "đặc khu": "special_zone"}

WardFilter = Callable[[list["Ward"]], list["Ward"]]


class UnknownProvince(Exception):
    """No province has this code in the official list."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown province code {code!r}")


def province_code(code: str | int) -> ProvinceCode:
    from vietnam_provinces import ProvinceCode

    try:
        return ProvinceCode(int(str(code).strip()))
    except ValueError:
        raise UnknownProvince(str(code)) from None


def unit_code(code: int, digits: int) -> str:
    return f"{code:0{digits}d}"


def province_rows(code: str | int, wards: WardFilter | None = None) -> list[UnitRow]:
    """The province and its wards/communes/special zones (or the ones `wards` keeps)."""
    from vietnam_provinces import Province, Ward

    official = province_code(code)
    province = Province.from_code(official)
    top = unit_code(int(province.code), 2)
    listed = list(Ward.iter_by_province(official))
    chosen = wards(listed) if wards is not None else listed
    rows = [UnitRow(top, province.name, PROVINCE_LEVEL, None)]
    rows += [UnitRow(unit_code(int(w.code), 5), w.name, ward_level(w), top) for w in chosen]
    return rows


def ward_level(ward: Ward) -> str:
    return LEVELS.get(ward.division_type.value, "ward")


async def import_province(session: AsyncSession, code: str | int,
                          wards: WardFilter | None = None,
                          progress: Progress | None = None) -> ImportResult:
    """Create or update the province and its units; running it again changes nothing."""
    return await apply_rows(session, province_rows(code, wards), progress)
