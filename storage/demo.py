"""A demo ward to try the bot on: one real HCMC ward, three quarters, six groups, and a
roster: each post held by an invented person (one group's head left vacant), an invite per
person, so that redeeming one claims that person and every figure the demo shows adds up;
and a few invented households with reports, so its first digest and dashboard show some.

Running it again reuses the units, posts and people and re-issues their invites (the earlier
unused ones are revoked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import households, invites, people, reports, roster, units
from storage.models import Household, Person, Post, Report, Role, Unit, UnitPost, utcnow
from storage.official_units import province_rows
from storage.unit_import import UnitRow, apply_rows
from wording import normalize

if TYPE_CHECKING:
    from vietnam_provinces import Ward

DEMO_PROVINCE = "79"
DEMO_WARD_NAME = "Phường Bến Thành"
QUARTERS = 3
GROUPS_PER_QUARTER = 2

# (name, post key, unit code suffix). Invented people, no chat accounts.
SAMPLE_HOLDERS = (
    ("Nguyễn Văn An", "truong_khu_pho", "-KP1"),
    ("Trần Thị Bình", "truong_khu_pho", "-KP2"),
    ("Lê Văn Cường", "truong_khu_pho", "-KP3"),
    ("Võ Thị Hoa", "to_truong", "-KP1-T1"),
    ("Đặng Văn Giang", "to_truong", "-KP1-T2"),
    ("Bùi Thị Hạnh", "to_truong", "-KP2-T1"),
    ("Đỗ Văn Khoa", "to_truong", "-KP2-T2"),
    ("Ngô Thị Lan", "to_truong", "-KP3-T1"),
)
VACANT_POST = ("to_truong", "-KP3-T2")  # a post still to fill: its invite makes a holder
# The ward's own people hold a role on the ward, not a post of a quarter or group.
SAMPLE_WARD_PEOPLE = (
    ("Phạm Thị Dung", Role.WARD_STAFF),
    ("Hoàng Văn Em", Role.MONITOR),
)

# Invented households (code, head, members, flags) and a few reports on them (household,
# situation, urgent, hours ago, resolved), so a new officer's first digest and dashboard
# have something to read. Seeded once: a ward that has households keeps its own.
SAMPLE_HOUSEHOLDS = (
    ("-KP1-T1", "12 Lê Lợi", "Trần Văn Tâm", 4, ("poor",)),
    ("-KP1-T2", "5 Pasteur", "Nguyễn Thị Mai", 1, ("elderly_alone",)),
    ("-KP2-T1", "30 Lý Tự Trọng", "Phạm Văn Hùng", 5, ("young_children",)),
    ("-KP2-T2", "8 Nam Kỳ Khởi Nghĩa", "Lê Thị Thu", 3, ("pregnant", "near_poor")),
    ("-KP3-T1", "21 Hàm Nghi", "Đỗ Văn Phúc", 2, ("disability",)),
)
SAMPLE_REPORTS = (
    (0, "f0", True, 20, False),
    (1, "short_food", False, 3, False),
    (2, "f1", False, 50, True),
    (4, "medical_visit", True, 6, False),
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
    made = await _roster(session, ward, expires_in)
    await _households(session, ward)
    return DemoResult(ward, made)


async def _households(session: AsyncSession, ward: Unit) -> None:
    below = select(Unit.id).where(Unit.path.startswith(ward.path))
    if (await session.execute(select(Household.id).where(Household.unit_id.in_(below))
                              .limit(1))).first() is not None:
        return
    homes = []
    for suffix, code, head, members, flags in SAMPLE_HOUSEHOLDS:
        unit = await units.by_code(session, ward.code + suffix)
        assert unit is not None
        homes.append(await households.add(session, unit, code, head_name=head,
                                          members=members, flags=flags))
    now = utcnow()
    for index, key, urgent, hours, resolved in SAMPLE_REPORTS:
        home = homes[index]
        created = now - timedelta(hours=hours)
        await reports.add_recorded(session, Report(
            household_id=home.id, unit_id=home.unit_id, category_key=key, people_count=1,
            urgent=urgent, created_at=created, updated_at=created,
            status="resolved" if resolved else "open",
            resolved_at=now - timedelta(hours=2) if resolved else None))


async def _roster(session: AsyncSession, ward: Unit, expires_in: timedelta
                  ) -> list[invites.NewInvite]:
    """The posts and people, and a fresh invite for each person and the vacant post; then
    the admin's bare role invite."""
    created = []
    for name, post_key, suffix in SAMPLE_HOLDERS:
        unit_post = await _seat(session, ward.code + suffix, post_key)
        person = await _person(session, name)
        await roster.assign(session, unit_post, person)
        created.append(await roster.invite_person(session, person, expires_in))
    vacant = await _seat(session, ward.code + VACANT_POST[1], VACANT_POST[0])
    if await roster.open_holding(session, vacant) is None:
        created.append(await roster.invite_post(session, vacant, expires_in))
    for name, role in SAMPLE_WARD_PEOPLE:
        person = await _person(session, name)
        await people.assign(session, person, ward, role)
        created.append(await roster.invite_person(session, person, expires_in))
    created += await invites.create(session, ward, Role.ADMIN, expires_in)
    return created


async def _seat(session: AsyncSession, unit_code: str, post_key: str) -> UnitPost:
    unit = await units.by_code(session, unit_code)
    post = await session.get(Post, post_key)
    assert unit is not None and post is not None
    unit_post = await roster.seat(session, unit, post, create=True)
    assert unit_post is not None
    return unit_post


async def _person(session: AsyncSession, name: str) -> Person:
    query = select(Person).where(Person.full_name == name, Person.active.is_(True))
    person = (await session.execute(query.limit(1))).scalar_one_or_none()
    if person is None:
        person = Person(full_name=name)
        session.add(person)
        await session.flush()
    return person
