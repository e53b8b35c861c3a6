"""A demo ward to try the bot on: one real HCMC ward, three quarters, six groups, and a
roster: each post held by an invented person (one group's head left vacant), an invite per
person, so that redeeming one claims that person and every figure the demo shows adds up;
and a few invented households with a month of history: its leaders in post for weeks, their
daily check-ins (mostly on time, some late, a few missed) and reports opened and resolved over
the past 30 days, so its first digest and the dashboard's 7- and 30-day charts have a point
each day. The history is fixed (no randomness): the same days and figures on every build.

Running it again reuses the units, posts and people and re-issues their invites (the earlier
unused ones are revoked).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import households, invites, people, reports, roster, units
from storage.models import (
    CheckIn,
    Household,
    Person,
    Post,
    Report,
    Role,
    Unit,
    UnitPost,
    utcnow,
)
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
# The month before (household, situation, urgent, days ago, local hour, resolved so many days
# later or None: still open), so the open count rises and falls over the charts' 30 days.
# Every urgent one is resolved: the two urgent cases open are today's above.
PAST_REPORTS = (
    (0, "f1", False, 28, 9, 3),
    (2, "short_food", False, 26, 15, 2),
    (1, "alone_vulnerable", False, 25, 10, 6),
    (3, "short_medicine", False, 23, 14, 1),
    (4, "hospital", True, 21, 8, 4),
    (0, "home_isolation", False, 19, 11, 7),
    (2, "lost_income", False, 17, 16, 5),
    (3, "f0", True, 15, 9, 2),
    (1, "short_food", False, 13, 10, 3),
    (4, "medical_visit", True, 11, 15, 1),
    (2, "f1", False, 9, 9, 4),
    (0, "lost_income", False, 8, 14, None),
    (3, "short_medicine", False, 6, 10, 2),
    (1, "home_isolation", False, 4, 16, None),
)
IN_POST_DAYS = 45  # how long the demo's people have held their posts (the vacancy: as long)
CHECK_IN_DAYS = 30  # the check-ins answered before today: the dashboard's longest chart
HCMC = ZoneInfo("Asia/Ho_Chi_Minh")


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


async def build(session: AsyncSession, expires_in: timedelta, *, tz: tzinfo = HCMC,
                now: datetime | None = None) -> DemoResult:
    """Create (or reuse) the demo units and people, and add fresh invites; the first time,
    its history too, up to `now` (the ward's days in `tz`)."""
    now = now or utcnow()
    official = province_rows(DEMO_PROVINCE, wards=pick_ward)
    await apply_rows(session, official)
    ward = await units.by_code(session, official[-1].code)
    assert ward is not None
    await apply_rows(session, quarter_rows(ward.code))
    # A ward that has households keeps its own: its people, posts and figures stay as they are.
    first = not await _has_households(session, ward)
    since = now - timedelta(days=IN_POST_DAYS) if first else None
    made = await _roster(session, ward, expires_in, since)
    if first:
        homes = await _households(session, ward, now, tz)
        await _check_ins(session, ward, homes, now, tz)
    return DemoResult(ward, made)


async def _has_households(session: AsyncSession, ward: Unit) -> bool:
    below = select(Unit.id).where(Unit.path.startswith(ward.path))
    return (await session.execute(select(Household.id).where(Household.unit_id.in_(below))
                                  .limit(1))).first() is not None


def _local(day: date, hour: int, minute: int, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(hour, minute), tz)


async def _households(session: AsyncSession, ward: Unit, now: datetime, tz: tzinfo
                      ) -> list[Household]:
    homes = []
    for suffix, code, head, members, flags in SAMPLE_HOUSEHOLDS:
        unit = await units.by_code(session, ward.code + suffix)
        assert unit is not None
        homes.append(await households.add(session, unit, code, head_name=head,
                                          members=members, flags=flags))
    for index, key, urgent, hours, resolved in SAMPLE_REPORTS:
        home = homes[index]
        created = now - timedelta(hours=hours)
        await reports.add_recorded(session, Report(
            household_id=home.id, unit_id=home.unit_id, category_key=key, people_count=1,
            urgent=urgent, created_at=created, updated_at=created,
            status="resolved" if resolved else "open",
            resolved_at=now - timedelta(hours=2) if resolved else None))
    today = now.astimezone(tz).date()
    for index, key, urgent, days_ago, hour, resolved_after in PAST_REPORTS:
        home = homes[index]
        created = _local(today - timedelta(days=days_ago), hour, 20, tz)
        closed = None if resolved_after is None else created + timedelta(days=resolved_after,
                                                                          hours=2)
        await reports.add_recorded(session, Report(
            household_id=home.id, unit_id=home.unit_id, category_key=key, people_count=1,
            urgent=urgent, created_at=created, updated_at=closed or created,
            status="open" if closed is None else "resolved", resolved_at=closed))
    return homes


async def _check_ins(session: AsyncSession, ward: Unit, homes: list[Household], now: datetime,
                     tz: tzinfo) -> None:
    """Each held post's unit answered the check-in on the days before today: on time (before
    the 18:00 reminder) mostly, some late, a few days not at all; "reported" on a day its
    households had a report. Fixed by the unit and the day (a checksum, not a random draw)."""
    today = now.astimezone(tz).date()
    reported = {(homes[index].unit_id, today - timedelta(days=days_ago))
                for index, _, _, days_ago, _, _ in PAST_REPORTS}
    for _, post_key, suffix in SAMPLE_HOLDERS:
        unit = await units.by_code(session, ward.code + suffix)
        assert unit is not None
        unit_post = await _seat(session, ward.code + suffix, post_key)
        holding = await roster.open_holding(session, unit_post)
        assert holding is not None
        for days_ago in range(1, CHECK_IN_DAYS):
            day = today - timedelta(days=days_ago)
            draw = zlib.crc32(f"{suffix}:{days_ago}".encode()) % 100
            if draw >= 93:  # not answered that day
                continue
            hour = 16 if draw < 82 else 18 + draw % 2  # asked at 16:00, reminded at 18:00
            answer = "reported" if (unit.id, day) in reported else "no_change"
            session.add(CheckIn(unit_id=unit.id, day=day, answer=answer,
                                person_id=holding.person_id,
                                created_at=_local(day, hour, 5 + draw % 50, tz)))


async def _roster(session: AsyncSession, ward: Unit, expires_in: timedelta,
                  since: datetime | None) -> list[invites.NewInvite]:
    """The posts and people, and a fresh invite for each person and the vacant post; then
    the admin's bare role invite. On the first build (`since`), the people have held their
    posts and roles since then, and the vacant post has been vacant as long."""
    created = []
    for name, post_key, suffix in SAMPLE_HOLDERS:
        unit_post = await _seat(session, ward.code + suffix, post_key)
        person = await _person(session, name)
        await roster.assign(session, unit_post, person, now=since)
        created.append(await roster.invite_person(session, person, expires_in))
    vacant = await _seat(session, ward.code + VACANT_POST[1], VACANT_POST[0])
    if await roster.open_holding(session, vacant) is None:
        if since is not None:
            vacant.created_at = vacant.vacant_since = since
        created.append(await roster.invite_post(session, vacant, expires_in))
    for name, role in SAMPLE_WARD_PEOPLE:
        person = await _person(session, name)
        grant = await people.assign(session, person, ward, role)
        if since is not None:
            grant.created_at = since
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
