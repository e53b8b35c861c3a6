"""A demo ward to try the bot on: one real HCMC ward, three quarters, six groups, invites.

Running it again reuses the units and people and adds fresh invites.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from vietnam_provinces import Ward

from storage import invites, people, units
from storage.models import Person, Role, Unit
from storage.official_units import province_rows
from storage.unit_import import UnitRow, apply_rows
from wording import normalize

DEMO_PROVINCE = "79"
DEMO_WARD_NAME = "Phường Bến Thành"
QUARTERS = 3
GROUPS_PER_QUARTER = 2

# (name, role, unit code suffix: "" for the ward itself). Invented people, no chat accounts.
SAMPLE_PEOPLE = (
    ("Nguyễn Văn An", Role.LEADER, "-KP1"),
    ("Trần Thị Bình", Role.LEADER, "-KP2"),
    ("Lê Văn Cường", Role.LEADER, "-KP3"),
    ("Võ Thị Hoa", Role.LEADER, "-KP1-T1"),
    ("Phạm Thị Dung", Role.WARD_STAFF, ""),
    ("Hoàng Văn Em", Role.MONITOR, ""),
)


@dataclass(frozen=True)
class DemoResult:
    ward: Unit
    invites: list[invites.NewInvite]


def pick_ward(wards: list[Ward]) -> list[Ward]:
    """Phường Bến Thành when the official list has it, else its first ward."""
    named = [w for w in wards if normalize(w.name) == DEMO_WARD_NAME]
    return named[:1] or wards[:1]


def quarter_rows(ward_code: str) -> list[UnitRow]:
    rows = []
    for q in range(1, QUARTERS + 1):
        quarter = f"{ward_code}-KP{q}"
        rows.append(UnitRow(quarter, f"Khu phố {q}", "quarter", ward_code))
        rows += [UnitRow(f"{quarter}-T{g}", f"Tổ dân phố {g}", "group", quarter)
                 for g in range(1, GROUPS_PER_QUARTER + 1)]
    return rows


async def build(session: AsyncSession, expires_in: timedelta) -> DemoResult:
    """Create (or reuse) the demo units and people, and add fresh invites."""
    official = province_rows(DEMO_PROVINCE, wards=pick_ward)
    await apply_rows(session, official)
    ward = await units.by_code(session, official[-1].code)
    assert ward is not None
    await apply_rows(session, quarter_rows(ward.code))
    await _sample_people(session, ward.code)
    return DemoResult(ward, await _fresh_invites(session, ward, expires_in))


async def _sample_people(session: AsyncSession, ward_code: str) -> None:
    for name, role, suffix in SAMPLE_PEOPLE:
        unit = await units.by_code(session, ward_code + suffix)
        assert unit is not None
        await people.assign(session, await _person(session, name), unit, role)


async def _person(session: AsyncSession, name: str) -> Person:
    query = select(Person).where(Person.full_name == name, Person.active.is_(True))
    person = (await session.execute(query.limit(1))).scalar_one_or_none()
    if person is None:
        person = Person(full_name=name)
        session.add(person)
        await session.flush()
    return person


async def _fresh_invites(session: AsyncSession, ward: Unit, expires_in: timedelta
                         ) -> list[invites.NewInvite]:
    created = []
    for q in range(1, QUARTERS + 1):
        quarter = await units.by_code(session, f"{ward.code}-KP{q}")
        assert quarter is not None
        created += await invites.create(session, quarter, Role.LEADER, expires_in)
    for role in (Role.WARD_STAFF, Role.ADMIN, Role.MONITOR):
        created += await invites.create(session, ward, role, expires_in)
    return created
