"""The figures of a ward's daily digest, aggregated in SQL.

One entry point per ward and day: `ward_figures(session, ward, day, settings)`. Every count is a
GROUP BY (or a SUM of CASEs) over the indexed unit_id columns, restricted to the units of the
ward's subtree, so a ward's digest costs a fixed number of queries whatever the city's size.
The only rows brought into Python are short lists a reader sees by name: urgent open cases
(at most URGENT_LISTED), silent units, vacancies, blocked leaders and drill participants.

`rollup(session, unit, day, settings)` sums the wards under a province/city unit.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import schedules
from storage.models import (
    HOUSEHOLD_FLAGS,
    ChatAccount,
    CheckIn,
    Directive,
    DirectiveRecipient,
    Drill,
    DrillParticipant,
    Household,
    Person,
    Report,
    ReportCategory,
    ReportStatus,
    Role,
    RoleAssignment,
    SupportDelivery,
    SupportEligibility,
    SupportPolicy,
    Unit,
)

URGENT_LISTED = 10  # a phone screen; the count says how many more there are
TREND_DAYS = 7
RECENT_DAYS = 7  # drills and directives of the last week count in the digest


class DigestSettings(schedules.Defaults, Protocol):
    @property
    def tz(self) -> ZoneInfo: ...


@dataclass
class CategoryFigures:
    key: str
    label_vi: str
    label_en: str
    new: int
    open: int
    resolved: int
    to_date: int


@dataclass
class UrgentCase:
    report_id: int
    unit: str
    category_key: str
    age_hours: int


@dataclass
class PolicyFigures:
    key: str
    label_vi: str
    label_en: str
    measure: str
    households_today: int
    amount_today: int
    households_to_date: int
    amount_to_date: int
    eligible: int
    coverage: float | None  # households delivered to date ÷ eligible, None when none eligible


@dataclass
class Compliance:
    expected: int
    reported: int
    on_time: int
    late: int
    rate: float | None
    on_time_rate: float | None
    silent: list[dict[str, Any]] = field(default_factory=list)  # {unit, leaders: [names]}


@dataclass
class DrillFigures:
    drills: int
    participants: int
    acknowledged: int
    completed: int
    response_rate: float | None
    median_ack_minutes: float | None
    median_complete_minutes: float | None


@dataclass
class DirectiveFigures:
    directives: int
    recipients: int
    acknowledged: int
    acknowledged_rate: float | None


@dataclass
class TrendDay:
    day: str
    open: int
    compliance: float | None


@dataclass
class WardFigures:
    """Everything the digest says about one ward for one day (and to date)."""

    ward_code: str
    ward_name: str
    day: str
    days: int  # the period: 1 (the day), 7 or 30 days ending with it
    categories: list[CategoryFigures]
    urgent_open: int
    urgent: list[UrgentCase]
    households: int
    flags: dict[str, int]
    policies: list[PolicyFigures]
    compliance: Compliance
    vacancies: list[str]
    blocked: list[str]
    drills: DrillFigures | None
    directives: DirectiveFigures | None
    trend: list[TrendDay]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a UTC [start, end)."""
    start = datetime.combine(day, time(0), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


async def ward_unit_ids(session: AsyncSession, ward: Unit) -> list[int]:
    """The ward and every unit below it. A range on the indexed path (a LIKE prefix cannot
    use the index on SQLite); a ward has a few hundred units, so the ids go inline."""
    query = select(Unit.id).where(Unit.path >= ward.path, Unit.path < ward.path + "\uffff")
    return list((await session.execute(query)).scalars())


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def ward_figures(session: AsyncSession, ward: Unit, day: date,
                       settings: DigestSettings, days: int = 1) -> WardFigures:
    """The digest's figures for `ward` on the local `day`; `days` widens "today" to a period
    ending with the day (the /summary's 7 or 30 days). "To date" is up to the day's end."""
    tz = settings.tz
    start, _ = _bounds(day - timedelta(days=days - 1), tz)
    _, end = _bounds(day, tz)
    units_in = await ward_unit_ids(session, ward)
    expected = await expected_units(session, ward)
    urgent_count, urgent = await _urgent(session, ward, units_in, end)
    households, flags = await _households(session, units_in)
    return WardFigures(
        ward_code=ward.code, ward_name=ward.name, day=day.isoformat(), days=days,
        categories=await _categories(session, units_in, start, end),
        urgent_open=urgent_count, urgent=urgent, households=households, flags=flags,
        policies=await _policies(session, units_in, day - timedelta(days=days - 1), day),
        compliance=await compliance(session, ward, day, settings, expected),
        vacancies=await _vacancies(session, ward),
        blocked=await _blocked(session, ward),
        drills=await _drills(session, ward, start - timedelta(days=RECENT_DAYS - days), end),
        directives=await _directives(session, units_in,
                                     start - timedelta(days=RECENT_DAYS - days), end),
        trend=await _trend(session, units_in, day, settings, set(expected)),
    )


async def _categories(session: AsyncSession, units_in: Sequence[int], start: datetime,
                      end: datetime) -> list[CategoryFigures]:
    new = _count_if(Report.created_at >= start)
    still_open = _count_if(Report.status == ReportStatus.OPEN)
    resolved = _count_if(and_(Report.resolved_at >= start, Report.resolved_at < end))
    query = (select(Report.category_key, new, still_open, resolved, func.count())
             .where(Report.unit_id.in_(units_in), Report.created_at < end)
             .group_by(Report.category_key))
    counts = {row[0]: row[1:] for row in (await session.execute(query)).all()}
    cats = (await session.execute(select(ReportCategory)
                                  .order_by(ReportCategory.position))).scalars()
    return [CategoryFigures(c.key, c.label_vi, c.label_en, *map(int, counts[c.key]))
            for c in cats if c.key in counts]


async def _urgent(session: AsyncSession, ward: Unit, units_in: Sequence[int],
                  end: datetime) -> tuple[int, list[UrgentCase]]:
    where = (Report.unit_id.in_(units_in), Report.urgent.is_(True),
             Report.status == ReportStatus.OPEN, Report.created_at < end)
    count = (await session.execute(select(func.count()).where(*where))).scalar_one()
    query = (select(Report.id, Report.unit_id, Report.category_key, Report.created_at)
             .where(*where).order_by(Report.created_at).limit(URGENT_LISTED))
    rows = (await session.execute(query)).all()
    names = await unit_names(session, ward, [row.unit_id for row in rows])
    cases = [UrgentCase(row.id, names.get(row.unit_id, ""), row.category_key,
                        int((end - row.created_at).total_seconds() // 3600)) for row in rows]
    return int(count), cases


async def _households(session: AsyncSession,
                      units_in: Sequence[int]) -> tuple[int, dict[str, int]]:
    columns = [_count_if(getattr(Household, flag).is_(True)) for flag in HOUSEHOLD_FLAGS]
    query = select(func.count(), *columns).where(Household.unit_id.in_(units_in))
    total, *counts = (await session.execute(query)).one()
    return int(total), {flag: int(n) for flag, n in zip(HOUSEHOLD_FLAGS, counts, strict=True)}


async def _policies(session: AsyncSession, units_in: Sequence[int], first: date,
                    last: date) -> list[PolicyFigures]:
    delivered = and_(SupportDelivery.status == "delivered", SupportDelivery.delivered_on <= last)
    in_period = SupportDelivery.delivered_on >= first
    query = (select(SupportDelivery.policy_key,
                    func.count(distinct(case((in_period, SupportDelivery.household_id)))),
                    func.coalesce(func.sum(case((in_period, SupportDelivery.amount), else_=0)), 0),
                    func.count(distinct(SupportDelivery.household_id)),
                    func.coalesce(func.sum(SupportDelivery.amount), 0))
             .where(SupportDelivery.unit_id.in_(units_in), delivered)
             .group_by(SupportDelivery.policy_key))
    given = {row[0]: [int(v) for v in row[1:]] for row in (await session.execute(query)).all()}
    eligible_q = (select(SupportEligibility.policy_key, func.count())
                  .join(Household, Household.id == SupportEligibility.household_id)
                  .where(Household.unit_id.in_(units_in))
                  .group_by(SupportEligibility.policy_key))
    eligible = {key: int(n) for key, n in (await session.execute(eligible_q)).all()}
    policies = (await session.execute(select(SupportPolicy)
                                      .order_by(SupportPolicy.position))).scalars()
    found = []
    for policy in policies:
        if policy.key not in given and policy.key not in eligible:
            continue
        today_h, today_a, to_date_h, to_date_a = given.get(policy.key, [0, 0, 0, 0])
        n = eligible.get(policy.key, 0)
        found.append(PolicyFigures(policy.key, policy.label_vi, policy.label_en, policy.measure,
                                   today_h, today_a, to_date_h, to_date_a, n,
                                   _rate(min(to_date_h, n), n)))
    return found


async def expected_units(session: AsyncSession, ward: Unit) -> dict[int, list[str]]:
    """The units expected to answer the check-in (an active leader below the ward), each
    with its leaders' names."""
    expected: dict[int, list[str]] = {}
    for unit, person in await schedules.leaders_in(session, ward):
        expected.setdefault(unit.id, []).append(person.full_name)
    return expected


async def compliance(session: AsyncSession, ward: Unit, day: date, settings: DigestSettings,
                     expected: dict[int, list[str]] | None = None) -> Compliance:
    """Units that answered the day's check-in ÷ units expected to (expected_units);
    on time = before the ward's reminder time."""
    if expected is None:
        expected = await expected_units(session, ward)
    if not expected:
        return Compliance(0, 0, 0, 0, None, None)
    times = await schedules.schedule_of(session, settings, ward)
    hour, minute = divmod(schedules.minutes_of(times.reminder_at), 60)
    deadline = datetime.combine(day, time(hour, minute), settings.tz).astimezone(UTC)
    query = (select(CheckIn.unit_id, CheckIn.created_at)
             .where(CheckIn.day == day, CheckIn.unit_id.in_(list(expected))))
    answered = dict((await session.execute(query)).all())
    on_time = sum(1 for at in answered.values() if at < deadline)
    names = await unit_names(session, ward, [u for u in expected if u not in answered])
    silent = [{"unit": names[u], "leaders": leaders_of}
              for u, leaders_of in expected.items() if u not in answered]
    return Compliance(len(expected), len(answered), on_time, len(answered) - on_time,
                      _rate(len(answered), len(expected)), _rate(on_time, len(expected)),
                      silent)


async def _vacancies(session: AsyncSession, ward: Unit) -> list[str]:
    """Units below the ward with no active leader."""
    led = (select(RoleAssignment.id)
           .join(Person, Person.id == RoleAssignment.person_id)
           .where(RoleAssignment.unit_id == Unit.id, RoleAssignment.role == Role.LEADER,
                  RoleAssignment.active.is_(True), Person.active.is_(True)).exists())
    query = (select(Unit.id).where(Unit.path.startswith(ward.path), Unit.id != ward.id, ~led)
             .order_by(Unit.path))
    ids = list((await session.execute(query)).scalars())
    names = await unit_names(session, ward, ids)
    return [names[i] for i in ids]


async def _blocked(session: AsyncSession, ward: Unit) -> list[str]:
    """Leaders below the ward whose chat account blocked the bot."""
    query = (select(Person.full_name).distinct()
             .join(ChatAccount, ChatAccount.person_id == Person.id)
             .join(RoleAssignment, RoleAssignment.person_id == Person.id)
             .join(Unit, Unit.id == RoleAssignment.unit_id)
             .where(ChatAccount.blocked_at.is_not(None), RoleAssignment.role == Role.LEADER,
                    RoleAssignment.active.is_(True), Unit.path.startswith(ward.path))
             .order_by(Person.full_name))
    return list((await session.execute(query)).scalars())


async def _drills(session: AsyncSession, ward: Unit, start: datetime,
                  end: datetime) -> DrillFigures | None:
    """Drills of the ward started in the window; medians over their participants (a handful
    of rows per drill, so the median is taken in Python, portable across databases)."""
    query = (select(Drill.id, Drill.started_at, DrillParticipant.acknowledged_at,
                    DrillParticipant.completed_at)
             .join(DrillParticipant, DrillParticipant.drill_id == Drill.id)
             .where(Drill.unit_id == ward.id, Drill.started_at >= start, Drill.started_at < end))
    rows = (await session.execute(query)).all()
    if not rows:
        return None
    acks = [(r.acknowledged_at - r.started_at).total_seconds() / 60 for r in rows
            if r.acknowledged_at is not None]
    dones = [(r.completed_at - r.started_at).total_seconds() / 60 for r in rows
             if r.completed_at is not None]
    return DrillFigures(len({r.id for r in rows}), len(rows), len(acks), len(dones),
                        _rate(len(acks), len(rows)),
                        round(statistics.median(acks), 1) if acks else None,
                        round(statistics.median(dones), 1) if dones else None)


async def _directives(session: AsyncSession, units_in: Sequence[int], start: datetime,
                      end: datetime) -> DirectiveFigures | None:
    query = (select(func.count(distinct(Directive.id)), func.count(),
                    _count_if(DirectiveRecipient.acknowledged_at.is_not(None)))
             .join(Directive, Directive.id == DirectiveRecipient.directive_id)
             .where(DirectiveRecipient.unit_id.in_(units_in), Directive.created_at >= start,
                    Directive.created_at < end, Directive.requires_ack.is_(True)))
    directives, recipients, acked = (int(v) for v in (await session.execute(query)).one())
    if not recipients:
        return None
    return DirectiveFigures(directives, recipients, acked, _rate(acked, recipients))


async def _trend(session: AsyncSession, units_in: Sequence[int], day: date,
                 settings: DigestSettings,
                 expected: set[int]) -> list[TrendDay]:
    """Open cases at the end of each of the last TREND_DAYS days, and that day's compliance
    rate (against today's expected units): one query each."""
    days = [day - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
    ends = [_bounds(d, settings.tz)[1] for d in days]
    open_at = [_count_if(and_(Report.created_at < e,
                              (Report.resolved_at.is_(None)) | (Report.resolved_at >= e)))
               for e in ends]
    # Reports resolved before the window never count: skipping them spares most rows.
    query = select(*open_at).where(Report.unit_id.in_(units_in),
                                   Report.created_at < ends[-1],
                                   Report.resolved_at.is_(None) | (Report.resolved_at >= ends[0]))
    opens = [int(v) for v in (await session.execute(query)).one()]
    per_day: dict[date, int] = {}
    if expected:
        checked = (select(CheckIn.day, func.count()).where(
            CheckIn.unit_id.in_(list(expected)), CheckIn.day >= days[0], CheckIn.day <= day)
            .group_by(CheckIn.day))
        per_day = {d: int(n) for d, n in (await session.execute(checked)).all()}
    return [TrendDay(d.isoformat(), n, _rate(per_day.get(d, 0), len(expected)))
            for d, n in zip(days, opens, strict=True)]


async def unit_names(session: AsyncSession, ward: Unit, ids: Sequence[int]) -> dict[int, str]:
    """Each unit's name from below the ward ('Khu phố 1 › Tổ dân phố 1'), for these units."""
    if not ids:
        return {}
    rows = (await session.execute(select(Unit).where(Unit.id.in_(list(ids))))).scalars().all()
    parents = {int(p) for u in rows for p in u.path[len(ward.path):].strip("/").split("/") if p}
    found = {u.id: u.name for u in (await session.execute(
        select(Unit).where(Unit.id.in_(parents)))).scalars()}
    return {u.id: " › ".join(found.get(int(p), "") for p in
                             u.path[len(ward.path):].strip("/").split("/") if p)
            for u in rows}


@dataclass
class Rollup:
    """A province/city unit's wards summed, and ranked."""

    unit_code: str
    unit_name: str
    day: str
    wards: int
    expected: int
    reported: int
    rate: float | None
    urgent_open: int
    open: int
    by_compliance: list[dict[str, Any]]  # {ward, rate, reported, expected}, best first
    by_urgent: list[dict[str, Any]]  # {ward, urgent_open}, most first

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def rollup(session: AsyncSession, unit: Unit, day: date, settings: DigestSettings,
                 days: int = 1) -> Rollup:
    """Sum of the wards under `unit`, ranked by compliance and by open urgent cases."""
    found = [await ward_figures(session, ward, day, settings, days)
             for ward in await schedules.wards(session, [unit])]
    expected = sum(f.compliance.expected for f in found)
    reported = sum(f.compliance.reported for f in found)
    by_rate = sorted(found, key=lambda f: (-(f.compliance.rate or 0), f.ward_name))
    by_urgent = sorted(found, key=lambda f: (-f.urgent_open, f.ward_name))
    return Rollup(unit.code, unit.name, day.isoformat(), len(found), expected, reported,
                  _rate(reported, expected), sum(f.urgent_open for f in found),
                  sum(c.open for f in found for c in f.categories),
                  [{"ward": f.ward_name, "rate": f.compliance.rate,
                    "reported": f.compliance.reported, "expected": f.compliance.expected}
                   for f in by_rate],
                  [{"ward": f.ward_name, "urgent_open": f.urgent_open} for f in by_urgent])
