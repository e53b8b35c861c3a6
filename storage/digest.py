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

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import drills, schedules
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
    Post,
    PostHolding,
    Report,
    ReportCategory,
    ReportStatus,
    Role,
    RoleAssignment,
    SupportDelivery,
    SupportEligibility,
    SupportPolicy,
    Unit,
    UnitPost,
)
from storage.units import natural, unique_tails
from wording import name_order

URGENT_LISTED = 10  # a phone screen; the count says how many more there are
DIRECTIVE_NAMES = 8  # who has not acknowledged a directive, named; the count says the rest
DIRECTIVE_TITLE = 40  # characters of a directive's text that tell it from the others
TREND_DAYS = 7
RECENT_DAYS = 7  # drills and directives of the last week count in the digest
# Check-in compliance reads as good (✅ in the digest, green on the dashboard) from this rate;
# below it "low" (⚠️, amber), and nobody answered "none" (⚠️, red): a quarter is no success.
GOOD_COMPLIANCE = 0.9


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
class Vacancy:
    """A post with no holder: the unit's short path, the post, and the days it has been vacant."""

    unit: str
    post_key: str
    label_vi: str
    label_en: str
    days: int


@dataclass
class Unconnected:
    """A post whose holder has not connected a chat yet: who to phone, and for which post."""

    unit: str
    post_key: str
    label_vi: str
    label_en: str
    person: str


@dataclass
class UrgentCase:
    report_id: int
    unit: str  # the shortest path that tells its unit from the others listed
    category_key: str
    age_hours: int
    household: str = ""  # the household's code in its unit
    reported_by: str | None = None  # who filed it (None: recorded from the command line)
    taken_by: str | None = None  # the ward staff member who took it from its alert, if any


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
    """Check-ins over the period: `expected` is units × days (units alone for one day), so
    a 7-day figure is for the 7 days. `silent` is the period's last day only: who to chase."""

    expected: int
    reported: int
    on_time: int
    late: int
    rate: float | None
    on_time_rate: float | None
    # {unit, leaders: [names], unconnected: [those of the leaders with no chat yet]}
    silent: list[dict[str, Any]] = field(default_factory=list)
    units: int = 0  # units expected to answer each day


def compliance_level(value: float | None) -> str:
    """"good" (≥ GOOD_COMPLIANCE), "low", "none" (nobody answered) or "" (nobody expected):
    one rule for the digest's mark and the dashboard's colour."""
    if value is None:
        return ""
    return "good" if value >= GOOD_COMPLIANCE else "low" if value > 0 else "none"


@dataclass
class DrillFigures:
    drills: int
    participants: int
    acknowledged: int
    completed: int
    response_rate: float | None
    median_ack_minutes: float | None
    median_complete_minutes: float | None
    # The latest drill against the previous drill of its scenario (storage.drills.changes):
    # per step run both times, the change of its median in seconds (negative: faster).
    latest: int | None = None
    previous: int | None = None
    step_changes: list[StepChange] = field(default_factory=list)


@dataclass
class StepChange:
    step: int
    seconds: float


@dataclass
class Unacknowledged:
    """One directive of the window with recipients who have not acknowledged it: its number,
    its first words, how many, and the first DIRECTIVE_NAMES of them as (unit, name) in tree
    order, so staff can phone them."""

    directive_id: int
    title: str
    missing: int
    people: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DirectiveFigures:
    directives: int
    recipients: int
    acknowledged: int
    acknowledged_rate: float | None
    pending: list[Unacknowledged] = field(default_factory=list)  # oldest directive first


@dataclass
class TrendDay:
    """One day of the chart; None where the ward had no leader yet (a gap, not a zero)."""

    day: str
    open: int | None
    compliance: float | None


@dataclass
class WardFigures:
    """Everything the digest says about one ward for one day (and to date)."""

    ward_code: str
    ward_name: str
    day: str
    days: int  # the period: 1 (the day), 7 or 30 days ending with it
    recent_days: int  # the window of the drills and directives counted: at least a week
    categories: list[CategoryFigures]
    urgent_open: int
    urgent: list[UrgentCase]
    households: int
    flags: dict[str, int]
    policies: list[PolicyFigures]
    compliance: Compliance
    vacancies: list[Vacancy]
    blocked: list[str]
    drills: DrillFigures | None
    directives: DirectiveFigures | None
    trend: list[TrendDay]
    unconnected: list[Unconnected] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a UTC [start, end): what every "on the day" and "to date" counts."""
    start = datetime.combine(day, time(0), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


@dataclass
class WardUnits:
    """The ward and every unit below it, read once per digest: their ids bound every query,
    and their names ('Khu phố 1 › Tổ dân phố 1') label what a reader sees by name."""

    ward: Unit
    ids: list[int]  # the ward's first, then below it in tree order
    names: dict[int, str]
    chains: dict[int, list[str]] = field(default_factory=dict)  # own name first, then up
    _short: dict[int, str] = field(default_factory=dict)

    @property
    def below(self) -> list[int]:
        return self.ids[1:]

    def holds(self, column: Any) -> ColumnElement[bool]:
        """`column IN` these units, as a subquery on the indexed path range (what ward_units
        read them by): the same statement for every ward, where the ~211 ids of `ids` were
        rendered and bound into each query anew (and PostgreSQL prepared each length)."""
        return column.in_(select(Unit.id).where(Unit.path >= self.ward.path,
                                                Unit.path < self.ward.path + "\uffff"))

    def short(self, ids: Sequence[int]) -> dict[int, str]:
        """The shortest path that tells each of these units from every other unit of the ward
        ("Khu phố 2 › Tổ dân phố 1" where each quarter has a Tổ dân phố 1): a reader knows
        the ward, not which units happen to be listed. By storage.units.unique_tails."""
        if not self._short:
            self._short.update(unique_tails(self.chains))
        return {unit_id: self._short[unit_id] for unit_id in ids}


async def ward_units(session: AsyncSession, ward: Unit) -> WardUnits:
    """A range on the indexed path (a LIKE prefix cannot use the index on SQLite); a ward has
    a few hundred units, so the ids go inline in the queries that follow."""
    query = (select(Unit.id, Unit.name, Unit.path)
             .where(Unit.path >= ward.path, Unit.path < ward.path + "\uffff").order_by(Unit.path))
    rows = list((await session.execute(query)).all())
    own = {row.id: row.name for row in rows}
    # Each path split once, each name's sort key made once (a quarter's name is in the path
    # of each of its groups): the page reads this for every ward it shows.
    parts = {row.id: [int(part) for part in row.path[len(ward.path):].strip("/").split("/")
                      if part] for row in rows}
    keys = {unit_id: natural(name) for unit_id, name in own.items()}
    # Tree order as a reader counts: Khu phố 2 before Khu phố 11 (ids in a path do not).
    rows.sort(key=lambda row: [keys[part] if part in keys else natural("")
                               for part in parts[row.id]])
    names = {row.id: " › ".join(own.get(part, "") for part in parts[row.id]) for row in rows}
    chains = {row.id: [own.get(part, "") for part in reversed(parts[row.id])] or [ward.name]
              for row in rows}
    return WardUnits(ward, [row.id for row in rows], names, chains)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END), 0 over no rows: a count beside others in
    one GROUP BY."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def rate(part: int, whole: int) -> float | None:
    """part ÷ whole to four places, None when nothing was expected (not a zero)."""
    return round(part / whole, 4) if whole else None


async def ward_figures(session: AsyncSession, ward: Unit, day: date,
                       settings: DigestSettings, days: int = 1,
                       now: datetime | None = None, units: WardUnits | None = None,
                       expected: dict[int, list[str]] | None = None,
                       times: schedules.Times | None = None,
                       check_ins: CheckInDays | None = None,
                       answered: dict[int, datetime] | None = None) -> WardFigures:
    """The digest's figures for `ward` on the local `day`; `days` widens "today" to a period
    ending with the day (the /summary's 7 or 30 days). "To date" is up to the day's end.
    An urgent case's age runs to `now` when that is before the day's end (a digest asked for
    during the day), else to the day's end; `now` is given, never read from the clock, so a
    past day's digest reads the same whenever it is made. `units` and `expected` are
    ward_units' and expected_units' for this ward, `times` its schedule_of, `check_ins` its
    check_in_days over the trend's days (or more), `answered` the day's check-ins of the
    units below the ward (unit id -> when), when the caller has read them already."""
    tz = settings.tz
    start, _ = bounds(day - timedelta(days=days - 1), tz)
    _, end = bounds(day, tz)
    aged_to = end if now is None else min(end, now)
    units = units or await ward_units(session, ward)
    units_in = units.ids
    expected = await expected_units(session, units) if expected is None else expected
    trend_days = [day - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
    counts = await _report_counts(session, units, start,
                                  [bounds(d, tz)[1] for d in trend_days])
    households, flags = await _households(session, units)
    recent_days = max(days, RECENT_DAYS)
    recent, _ = bounds(day - timedelta(days=recent_days - 1), tz)
    waiting = await _unconnected(session, units, end)
    return WardFigures(
        ward_code=ward.code, ward_name=ward.name, day=day.isoformat(), days=days,
        recent_days=recent_days,
        categories=counts.categories, urgent_open=counts.urgent_open,
        urgent=await _urgent(session, units, end, aged_to) if counts.urgent_open else [],
        households=households, flags=flags,
        policies=await _policies(session, units, day - timedelta(days=days - 1), day),
        compliance=await compliance(session, units, day, settings, expected, days,
                                    _names_by_unit(waiting), times=times,
                                    answered=answered if days == 1 else None),
        vacancies=await _vacancies(session, units, end),
        blocked=await _blocked(session, units_in),
        drills=await _drills(session, ward, recent, end),
        directives=await _directives(session, units, recent, end),
        trend=await trend(session, trend_days, counts.open_at, list(expected), tz, check_ins),
        unconnected=[row.figure for row in waiting],
    )


@dataclass
class _ReportCounts:
    categories: list[CategoryFigures]
    urgent_open: int
    open_at: list[int]  # open cases at each of the trend's day ends


async def _report_counts(session: AsyncSession, units: WardUnits, start: datetime,
                         ends: Sequence[datetime]) -> _ReportCounts:
    """The ward's reports by category — new since `start`, open, resolved in the period, to
    date — the open urgent ones, and the open ones at each of `ends` (the last ends the period).

    Four GROUP BYs that each read one index and no table: everything to date (a plain count),
    the open ones, and only the recent creations and resolutions. Open at an earlier day's
    end is then open at the last, less what was created since, plus what was resolved since:
    a case is open from its creation until its resolved_at.
    """
    end, since = ends[-1], min(start, ends[0])
    ward = units.holds(Report.unit_id)

    async def by_category(*columns: ColumnElement[Any], where: ColumnElement[bool]
                          ) -> dict[str, list[int]]:
        query = (select(Report.category_key, *columns).where(ward, Report.created_at < end, where)
                 .group_by(Report.category_key))
        return {row[0]: [int(v) for v in row[1:]] for row in (await session.execute(query)).all()}

    to_date = await by_category(func.count(), where=true())
    still_open = await by_category(func.count(), count_if(Report.urgent.is_(True)),
                                   where=Report.status == ReportStatus.OPEN)
    created = await by_category(*(count_if(Report.created_at >= at) for at in (start, *ends)),
                                where=Report.created_at >= since)
    resolved = await by_category(
        count_if(and_(Report.resolved_at >= start, Report.resolved_at < end)),
        *(count_if(Report.resolved_at >= at) for at in ends), where=Report.resolved_at >= since)

    def total(counts: dict[str, list[int]], column: int) -> int:
        return sum(values[column] for values in counts.values())

    # Open at the end: still open now, or resolved only after the end (a past day's digest).
    open_at_end = total(still_open, 0) + total(resolved, len(ends))
    open_at = [open_at_end - (total(created, 1 + i) - total(created, len(ends)))
               + (total(resolved, 1 + i) - total(resolved, len(ends)))
               for i in range(len(ends))]
    cats = (await session.execute(select(ReportCategory)
                                  .order_by(ReportCategory.position))).scalars()
    none = [0] * (len(ends) + 1)
    figures = [CategoryFigures(c.key, c.label_vi, c.label_en, created.get(c.key, none)[0],
                               still_open.get(c.key, none)[0], resolved.get(c.key, none)[0],
                               to_date[c.key][0])
               for c in cats if c.key in to_date]
    return _ReportCounts(figures, total(still_open, 1), open_at)


async def _vacancies(session: AsyncSession, units: WardUnits, end: datetime
                     ) -> list[Vacancy]:
    """The roster's posts vacant at the day's end, in tree order, each with the days vacant
    (counted to the day's end, so a past day's digest reads as it did then)."""
    since = func.coalesce(UnitPost.vacant_since, UnitPost.created_at)
    query = (select(UnitPost.unit_id, Post.key, Post.label_vi, Post.label_en, since)
             .join(Post, Post.key == UnitPost.post_key)
             .where(UnitPost.unit_id.in_(units.ids), UnitPost.vacant_since.is_not(None),
                    UnitPost.vacant_since < end, Post.active.is_(True))
             .order_by(Post.position, Post.key))
    rows = list((await session.execute(query)).all())
    order = {unit_id: index for index, unit_id in enumerate(units.ids)}
    rows.sort(key=lambda row: order[row[0]])  # stable: posts keep their order within a unit
    short = units.short([row[0] for row in rows])
    return [Vacancy(short[unit_id], key, label_vi, label_en,
                    max(0, (end - _aware(vacant_from)).days))
            for unit_id, key, label_vi, label_en, vacant_from in rows]


@dataclass(frozen=True)
class _Waiting:
    unit_id: int
    person: str
    figure: Unconnected


async def _unconnected(session: AsyncSession, units: WardUnits, end: datetime
                       ) -> list[_Waiting]:
    """The posts held at the day's end by someone with no chat account: in tree order, then
    the catalogue's order of posts."""
    no_chat = ~exists().where(ChatAccount.person_id == Person.id)
    query = (select(UnitPost.unit_id, Post.key, Post.label_vi, Post.label_en, Person.full_name)
             .join(Post, Post.key == UnitPost.post_key)
             .join(PostHolding, PostHolding.unit_post_id == UnitPost.id)
             .join(Person, Person.id == PostHolding.person_id)
             .where(UnitPost.unit_id.in_(units.ids), PostHolding.ended_at.is_(None),
                    PostHolding.started_at < end, Person.active.is_(True), Post.active.is_(True),
                    no_chat)
             .order_by(Post.position, Post.key))
    rows = list((await session.execute(query)).all())
    order = {unit_id: index for index, unit_id in enumerate(units.ids)}
    rows.sort(key=lambda row: order[row[0]])  # stable: posts keep their order within a unit
    short = units.short([row[0] for row in rows])
    return [_Waiting(unit_id, name, Unconnected(short[unit_id], key, label_vi, label_en, name))
            for unit_id, key, label_vi, label_en, name in rows]


def _names_by_unit(waiting: Sequence[_Waiting]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for row in waiting:
        found.setdefault(row.unit_id, set()).add(row.person)
    return found


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _urgent(session: AsyncSession, units: WardUnits, end: datetime,
                  aged_to: datetime) -> list[UrgentCase]:
    """The oldest open urgent cases, URGENT_LISTED of them at most, with their household and
    their age at `aged_to`."""
    reporter, taker = aliased(Person), aliased(Person)
    query = (select(Report.id, Report.unit_id, Report.category_key, Report.created_at,
                    Household.code, reporter.full_name.label("reporter"),
                    taker.full_name.label("taker"))
             .join(Household, Household.id == Report.household_id)
             .outerjoin(reporter, reporter.id == Report.created_by_person_id)
             .outerjoin(taker, taker.id == Report.assigned_to_person_id)
             .where(Report.unit_id.in_(units.ids), Report.urgent.is_(True),
                    Report.status == ReportStatus.OPEN, Report.created_at < end)
             .order_by(Report.created_at, Report.id).limit(URGENT_LISTED))
    rows = (await session.execute(query)).all()
    short = units.short([row.unit_id for row in rows])
    return [UrgentCase(row.id, short[row.unit_id], row.category_key,
                       max(0, int((aged_to - row.created_at).total_seconds() // 3600)), row.code,
                       row.reporter, row.taker)
            for row in rows]


async def _households(session: AsyncSession,
                      units: WardUnits) -> tuple[int, dict[str, int]]:
    columns = [count_if(getattr(Household, flag).is_(True)) for flag in HOUSEHOLD_FLAGS]
    query = select(func.count(), *columns).where(units.holds(Household.unit_id))
    total, *counts = (await session.execute(query)).one()
    return int(total), {flag: int(n) for flag, n in zip(HOUSEHOLD_FLAGS, counts, strict=True)}


async def _policies(session: AsyncSession, units: WardUnits, first: date,
                    last: date) -> list[PolicyFigures]:
    delivered = and_(SupportDelivery.status == "delivered", SupportDelivery.delivered_on <= last)
    in_period = SupportDelivery.delivered_on >= first
    query = (select(SupportDelivery.policy_key,
                    func.count(distinct(case((in_period, SupportDelivery.household_id)))),
                    func.coalesce(func.sum(case((in_period, SupportDelivery.amount), else_=0)), 0),
                    func.count(distinct(SupportDelivery.household_id)),
                    func.coalesce(func.sum(SupportDelivery.amount), 0))
             .where(units.holds(SupportDelivery.unit_id), delivered)
             .group_by(SupportDelivery.policy_key))
    given = {row[0]: [int(v) for v in row[1:]] for row in (await session.execute(query)).all()}
    eligible_q = (select(SupportEligibility.policy_key, func.count())
                  .where(units.holds(SupportEligibility.unit_id))
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
                                   rate(min(to_date_h, n), n)))
    return found


async def expected_units(session: AsyncSession, units: WardUnits) -> dict[int, list[str]]:
    """The units expected to answer the check-in — those below the ward with an active leader,
    the others are vacancies — in tree order, each with its leaders' names."""
    query = (select(RoleAssignment.unit_id, Person.full_name)
             .join(Person, Person.id == RoleAssignment.person_id)
             .where(RoleAssignment.unit_id.in_(units.below), RoleAssignment.role == Role.LEADER,
                    RoleAssignment.active.is_(True), Person.active.is_(True))
             .order_by(Person.id))
    leaders: dict[int, list[str]] = {}
    for unit_id, name in (await session.execute(query)).all():
        leaders.setdefault(unit_id, []).append(name)
    return {unit_id: leaders[unit_id] for unit_id in units.below if unit_id in leaders}


async def compliance(session: AsyncSession, units: WardUnits, day: date,
                     settings: DigestSettings, expected: dict[int, list[str]],
                     days: int = 1, unconnected: dict[int, set[str]] | None = None, *,
                     times: schedules.Times | None = None,
                     answered: dict[int, datetime] | None = None) -> Compliance:
    """Check-ins answered ÷ owed (expected_units, each day of the period); on time = before
    the ward's reminder time that day. The silent units are the last day's, each with those
    of its leaders who have no chat yet (`unconnected`: unit id -> holders' names). `times`
    (the ward's schedule_of) and, for one day, `answered` (that day's check-ins of the units
    below the ward, or more: unit id -> when) when the caller has them."""
    if not expected:
        return Compliance(0, 0, 0, 0, None, None)
    times = times or await schedules.schedule_of(session, settings, units.ward)
    hour, minute = divmod(schedules.minutes_of(times.reminder_at), 60)
    first = day - timedelta(days=days - 1)
    if answered is not None and days == 1:
        found = {(unit_id, day): at for unit_id, at in answered.items() if unit_id in expected}
    else:
        query = (select(CheckIn.unit_id, CheckIn.day, CheckIn.created_at)
                 .where(CheckIn.day >= first, CheckIn.day <= day,
                        CheckIn.unit_id.in_(list(expected))))
        found = {(unit_id, on): at for unit_id, on, at in await session.execute(query)}
    on_time = sum(1 for (_, on), at in found.items()
                  if at < datetime.combine(on, time(hour, minute), settings.tz))
    owed = len(expected) * days
    silent_ids = [u for u in expected if (u, day) not in found]
    short = units.short(silent_ids)
    waiting = unconnected or {}
    silent = [{"unit": short[u], "leaders": expected[u],
               "unconnected": [name for name in expected[u] if name in waiting.get(u, ())]}
              for u in silent_ids]
    return Compliance(owed, len(found), on_time, len(found) - on_time,
                      rate(len(found), owed), rate(on_time, owed), silent, len(expected))


async def _blocked(session: AsyncSession, units_in: Sequence[int]) -> list[str]:
    """Leaders below the ward whose chat account blocked the bot."""
    query = (select(Person.full_name).distinct()
             .join(ChatAccount, ChatAccount.person_id == Person.id)
             .join(RoleAssignment, RoleAssignment.person_id == Person.id)
             .where(ChatAccount.blocked_at.is_not(None), RoleAssignment.role == Role.LEADER,
                    RoleAssignment.active.is_(True), RoleAssignment.unit_id.in_(units_in)))
    return sorted((await session.execute(query)).scalars(), key=name_order)


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
    latest = max(rows, key=lambda r: (r.started_at, r.id)).id
    found = await drills.results(session, latest)
    before = found.previous.drill.id if found and found.previous else None
    steps = [StepChange(number, delta.total_seconds())
             for number, delta in (drills.changes(found) if found else [])]
    acks = [(r.acknowledged_at - r.started_at).total_seconds() / 60 for r in rows
            if r.acknowledged_at is not None]
    dones = [(r.completed_at - r.started_at).total_seconds() / 60 for r in rows
             if r.completed_at is not None]
    return DrillFigures(len({r.id for r in rows}), len(rows), len(acks), len(dones),
                        rate(len(acks), len(rows)),
                        round(statistics.median(acks), 1) if acks else None,
                        round(statistics.median(dones), 1) if dones else None,
                        latest, before, steps)


async def _directives(session: AsyncSession, units: WardUnits, start: datetime,
                      end: datetime) -> DirectiveFigures | None:
    window = (DirectiveRecipient.unit_id.in_(units.ids), Directive.created_at >= start,
              Directive.created_at < end, Directive.requires_ack.is_(True))
    query = (select(func.count(distinct(Directive.id)), func.count(),
                    count_if(DirectiveRecipient.acknowledged_at.is_not(None)))
             .join(Directive, Directive.id == DirectiveRecipient.directive_id).where(*window))
    directives, recipients, acked = (int(v) for v in (await session.execute(query)).one())
    if not recipients:
        return None
    pending = await _unacknowledged(session, units, window) if acked < recipients else []
    return DirectiveFigures(directives, recipients, acked, rate(acked, recipients), pending)


async def _unacknowledged(session: AsyncSession, units: WardUnits,
                          window: Sequence[ColumnElement[bool]]) -> list[Unacknowledged]:
    """Who has not acknowledged each directive of the window, by unit in tree order then by
    name (a ward's recipients of a week's directives: a few hundred rows at most)."""
    query = (select(Directive.id, func.substr(Directive.text, 1, DIRECTIVE_TITLE + 20),
                    DirectiveRecipient.unit_id, Person.full_name)
             .join(Directive, Directive.id == DirectiveRecipient.directive_id)
             .join(Person, Person.id == DirectiveRecipient.person_id)
             .where(*window, DirectiveRecipient.acknowledged_at.is_(None))
             .order_by(Directive.created_at, Directive.id))
    order = {unit_id: index for index, unit_id in enumerate(units.ids)}
    found: dict[int, tuple[str, list[tuple[int, str]]]] = {}
    for directive_id, words, unit_id, name in (await session.execute(query)).all():
        found.setdefault(directive_id, (_title(words or ""), []))[1].append((unit_id, name))
    shown: list[Unacknowledged] = []
    for directive_id, (title, people) in found.items():
        people.sort(key=lambda row: (order.get(row[0], len(order)), name_order(row[1])))
        listed = people[:DIRECTIVE_NAMES]
        short = units.short([unit_id for unit_id, _ in listed])
        shown.append(Unacknowledged(directive_id, title, len(people),
                                    [(short[unit_id], name) for unit_id, name in listed]))
    return shown


def _title(words: str) -> str:
    """A directive's first words, on one line, cut at a word with an ellipsis."""
    words = " ".join(words.split())
    if len(words) <= DIRECTIVE_TITLE:
        return words
    cut = words[:DIRECTIVE_TITLE].rsplit(" ", 1)[0].rstrip(",.;:")
    return cut + "…"


@dataclass
class CheckInDays:
    """The check-ins of a ward's expected units per day, and the day its first leader took
    up a post (None: never), read once for all the trends of a page."""

    per_day: dict[date, int]
    first: date | None


async def check_in_days(session: AsyncSession, expected: Sequence[int], first_day: date,
                        last_day: date, tz: ZoneInfo) -> CheckInDays:
    if not expected:
        return CheckInDays({}, None)
    checked = (select(CheckIn.day, func.count()).where(
        CheckIn.unit_id.in_(expected), CheckIn.day >= first_day, CheckIn.day <= last_day)
        .group_by(CheckIn.day))
    per_day = {d: int(n) for d, n in (await session.execute(checked)).all()}
    since = (await session.execute(select(func.min(RoleAssignment.created_at)).where(
        # Ended posts count too: a leader replaced last week had a predecessor before.
        RoleAssignment.unit_id.in_(expected), RoleAssignment.role == Role.LEADER,
    ))).scalar_one_or_none()
    return CheckInDays(per_day, local_date(since, tz) if since is not None else None)


async def trend(session: AsyncSession, days: Sequence[date], open_at: Sequence[int],
                expected: Sequence[int], tz: ZoneInfo,
                known: CheckInDays | None = None) -> list[TrendDay]:
    """Open cases at the end of each of the trend's days, and that day's compliance rate
    (against today's expected units). Days before the ward's first leader took up a post
    have neither: nobody was there to report. `known`: check_in_days of these expected
    units over these days (or more), when the caller has read them."""
    known = known or await check_in_days(session, expected, days[0], days[-1], tz)
    first = known.first if expected else None
    return [TrendDay(d.isoformat(), n, rate(known.per_day.get(d, 0), len(expected)))
            if first is not None and d >= first else TrendDay(d.isoformat(), None, None)
            for d, n in zip(days, open_at, strict=True)]


def day_number(column: Any, first: date, ends: Sequence[datetime], tz: ZoneInfo,
               dialect: str) -> ColumnElement[int] | None:
    """The local day of a stored moment as a whole number of days after `first`, in SQL, for
    moments from the end of `first` on (`ends`: the local day ends they are bucketed by,
    the first of them `first`'s). PostgreSQL converts to the zone itself. On SQLite, whole
    seconds since that first end (the stored UTC text's seconds: its fraction cannot matter,
    the ends are whole seconds), divided by a day's: so None when a day of the window is not
    86,400 s long (a clock change), and the caller names each day end instead."""
    if dialect == "postgresql":
        return cast(cast(func.timezone(str(tz), column), Date) - first, Integer)
    if any(b - a != timedelta(days=1) for a, b in zip(ends, ends[1:], strict=False)):
        return None
    seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
    return (seconds - int(ends[0].timestamp())) // 86_400 + 1


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The local day of a stored moment (naive ones are UTC)."""
    if moment.tzinfo is None:  # SQLite's aggregate comes back naive: it is UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).date()


@dataclass
class Rollup:
    """A province/city unit's wards summed, and ranked."""

    unit_code: str
    unit_name: str
    day: str
    days: int  # the period ending with the day; `expected` is then units × days
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
                 days: int = 1, now: datetime | None = None) -> Rollup:
    """Sum of the wards under `unit`, ranked by compliance and by open urgent cases."""
    found = [await ward_figures(session, ward, day, settings, days, now)
             for ward in await schedules.wards(session, [unit])]
    expected = sum(f.compliance.expected for f in found)
    reported = sum(f.compliance.reported for f in found)
    by_rate = sorted(found, key=lambda f: (-(f.compliance.rate or 0), f.ward_name))
    by_urgent = sorted(found, key=lambda f: (-f.urgent_open, f.ward_name))
    return Rollup(unit.code, unit.name, day.isoformat(), days, len(found), expected, reported,
                  rate(reported, expected), sum(f.urgent_open for f in found),
                  sum(c.open for f in found for c in f.categories),
                  [{"ward": f.ward_name, "rate": f.compliance.rate,
                    "reported": f.compliance.reported, "expected": f.compliance.expected}
                   for f in by_rate],
                  [{"ward": f.ward_name, "urgent_open": f.urgent_open} for f in by_urgent])
