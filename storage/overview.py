"""The dashboard's figures: one row per unit of a ward, and a city's wards side by side.

Scope first: every entry point takes the scope (the unit paths the reader's roles reach, as
in storage.households) and a unit outside it does not exist (None, the page's 404). The
ward's headline figures are the digest's own (storage.digest.ward_figures), so the page and
`coso digest --format json` cannot disagree; the per-unit rows are GROUP BYs over the same
indexed unit_id columns, bounded by the same unit ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import digest, schedules
from storage import units as unit_paths
from storage.digest import DigestSettings, TrendDay, WardFigures, WardUnits
from storage.households import Scope, in_scope
from storage.models import (
    HOUSEHOLD_FLAGS,
    ChatAccount,
    CheckIn,
    DeliveryDispute,
    Directive,
    DirectiveRecipient,
    Drill,
    DrillParticipant,
    DrillScenario,
    Household,
    Person,
    Report,
    ReportCategory,
    ReportStatus,
    Role,
    RoleAssignment,
    Schedule,
    SupportDelivery,
    SupportEligibility,
    SupportPolicy,
    Unit,
    UnitReportCount,
)

LONG_TREND_DAYS = 30


@dataclass
class UnitRow:
    unit_id: int
    path: str  # 'Khu phố 1 › Tổ dân phố 1'
    leaders: list[str]
    connected: bool  # a leader has a chat account that has not blocked the bot
    check_in: str  # day_state's, or "vacant" (no leader: nobody asked)
    checked_at: datetime | None
    open: int
    urgent: int
    last_report: datetime | None
    eligible: int
    covered: int

    @property
    def coverage(self) -> float | None:
        return round(self.covered / self.eligible, 4) if self.eligible else None


@dataclass
class WardOverview:
    ward: Unit
    figures: WardFigures  # the digest's, for the headline
    rows: list[UnitRow]
    trend30: list[TrendDay] = field(default_factory=list)
    # Where the day's question stands for a unit that has not answered (day_state's
    # "not_asked", "pending" or "silent"), and the ward's times it follows.
    stage: str = "silent"
    times: schedules.Times | None = None

    @property
    def open(self) -> int:
        return sum(category.open for category in self.figures.categories)

    @property
    def due(self) -> bool:
        """Whether today's check-in is due (past the reminder) or answered by anyone: before
        that, nobody is silent yet and the compliance is no failure."""
        return any(r.check_in in ("on_time", "late", "silent") for r in self.rows)

    @property
    def silent(self) -> int:
        """Past the reminder and not answered: red."""
        return sum(1 for r in self.rows if r.check_in == "silent")

    @property
    def not_reported(self) -> int:
        """Expected today and not answered yet, whatever the hour: the digest's and /summary's
        "not reported" (its compliance.silent), so the page and the chat say the same."""
        return len(self.figures.compliance.silent)


def _at(day: date, clock: str, tz: Any) -> datetime:
    hour, minute = divmod(schedules.minutes_of(clock), 60)
    return datetime.combine(day, time(hour, minute), tz).astimezone(UTC)


def day_state(answered: datetime | None, day: date, times: schedules.Times, tz: Any,
              now: datetime) -> str:
    """A unit's check-in of a day: "on_time" (before the reminder), "late", or, unanswered,
    "not_asked" (the question is not due yet: before the prompt time, or a weekend of a
    weekdays-only ward), "pending" (asked, the reminder not yet due) or "silent"."""
    if answered is not None:
        return "on_time" if answered < _at(day, times.reminder_at, tz) else "late"
    if (times.weekdays_only and day.weekday() >= 5) or now < _at(day, times.prompt_at, tz):
        return "not_asked"
    return "pending" if now < _at(day, times.reminder_at, tz) else "silent"


async def unit_in_scope(session: AsyncSession, unit_id: int, scope: Scope) -> Unit | None:
    query = select(Unit).where(Unit.id == unit_id, in_scope(scope))
    return (await session.execute(query)).scalar_one_or_none()


async def ward(session: AsyncSession, ward_id: int, scope: Scope, day: date,
               settings: DigestSettings, now: datetime) -> WardOverview | None:
    """The ward's overview for the local day as it stands at `now`, or None when it is no
    ward of this scope."""
    unit = await unit_in_scope(session, ward_id, scope)
    if unit is None or not schedules.is_ward(unit):
        return None
    # The tree, its leaders, its schedule, the day's check-ins and the month's read once, for
    # the digest's figures, the rows and both trends alike.
    units = await digest.ward_units(session, unit)
    expected = await digest.expected_units(session, units)
    times = await schedules.schedule_of(session, settings, unit)
    checked = dict((await session.execute(select(CheckIn.unit_id, CheckIn.created_at).where(
        CheckIn.day == day, CheckIn.unit_id.in_(units.below)))).all())
    check_ins = await digest.check_in_days(session, list(expected),
                                           day - timedelta(days=LONG_TREND_DAYS - 1), day,
                                           settings.tz)
    figures = await digest.ward_figures(session, unit, day, settings, now=now, units=units,
                                        expected=expected, times=times, check_ins=check_ins,
                                        answered=checked)
    rows = await _rows(session, units, day, settings, expected, now, times, checked)
    # The digest's last trend day is open at the day's end: the 30-day trend starts from it.
    return WardOverview(unit, figures, rows,
                        await trend(session, units, day, settings, expected, LONG_TREND_DAYS,
                                    figures.trend[-1].open if figures.trend else None,
                                    check_ins),
                        day_state(None, day, times, settings.tz, now), times)


async def trend(session: AsyncSession, units: WardUnits, day: date, settings: DigestSettings,
                expected: dict[int, list[str]], days: int,
                open_at_end: int | None = None,
                check_ins: digest.CheckInDays | None = None) -> list[TrendDay]:
    """Open cases at the end of each of the last `days` days, and each day's compliance, as
    the digest's 7-day trend counts them (its last 7 days are the digest's own trend).

    The digest's SUM(CASE) per day end grows a column per day; here each report's local day
    (its creation's, its resolution's) is found by date arithmetic and grouped by: a 30-branch
    CASE cost ~24 ms a page, the day number ~4 ms (storage.digest.day_number). Open at a day's
    end = open at the last day's end, less what was created after it, plus what was resolved
    after it.
    """
    tz = settings.tz
    trend_days = [day - timedelta(days=n) for n in range(days - 1, -1, -1)]
    ends = [datetime.combine(d + timedelta(days=1), time(0), tz).astimezone(UTC)
            for d in trend_days]
    end = ends[-1]
    ward = units.holds(Report.unit_id)
    dialect = session.get_bind().dialect.name

    async def per_day(column: Any) -> list[int]:
        # Day i + 1 of the trend is [ends[i], ends[i + 1]): the local day after trend_days[i].
        bucket = digest.day_number(column, trend_days[0], ends, tz, dialect)
        if bucket is None:  # a clock change in the window: each day end named
            bucket = case(*((column < at, i) for i, at in enumerate(ends)), else_=len(ends))
        query = (select(bucket, func.count()).where(ward, column >= ends[0], column < end)
                 .group_by(bucket))
        counts = [0] * (len(ends) + 1)
        for i, n in (await session.execute(query)).all():
            counts[int(i)] += int(n)
        return counts

    if open_at_end is None:  # the caller has not the digest's (ward_figures) at hand
        open_at_end = int((await session.execute(select(func.count()).where(
            ward, Report.created_at < end,
            or_(Report.status == ReportStatus.OPEN, Report.resolved_at >= end)))).scalar_one())
    created, resolved = await per_day(Report.created_at), await per_day(Report.resolved_at)
    open_at = [open_at_end - sum(created[i + 1:]) + sum(resolved[i + 1:])
               for i in range(len(ends))]
    return await digest.trend(session, trend_days, open_at, list(expected), tz, check_ins)


async def _rows(session: AsyncSession, units: WardUnits, day: date, settings: DigestSettings,
                expected: dict[int, list[str]], now: datetime, times: schedules.Times,
                checked: dict[int, datetime]) -> list[UnitRow]:
    tz = settings.tz
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    # EXISTS, not a join: PostgreSQL hashed every chat account of the city for the join
    # (~40 ms); the semi-join probes the ~200 leaders' own (~1 ms, EXPLAIN ANALYZE).
    on_chat = exists().where(ChatAccount.person_id == RoleAssignment.person_id,
                             ChatAccount.blocked_at.is_(None))
    connected = set((await session.execute(
        select(RoleAssignment.unit_id).distinct()
        .where(RoleAssignment.unit_id.in_(units.below), RoleAssignment.role == Role.LEADER,
               RoleAssignment.active.is_(True), on_chat))).scalars())
    # Open and urgent from the open reports alone (ix_reports_unit_status covers them), the
    # last report by one index probe a unit (a MAX per unit, not a scan of every report the
    # ward ever had: that one GROUP BY was a third of the page's queries).
    opened = {row[0]: row[1:] for row in (await session.execute(
        select(Report.unit_id, func.count(), digest.count_if(Report.urgent.is_(True)))
        .where(units.holds(Report.unit_id), Report.status == ReportStatus.OPEN,
               Report.created_at < end)
        .group_by(Report.unit_id))).all()}
    latest = (select(func.max(Report.created_at))
              .where(Report.unit_id == Unit.id, Report.created_at < end)
              .correlate(Unit).scalar_subquery())
    last_of = {unit_id: at for unit_id, at in (await session.execute(
        select(Unit.id, latest).where(Unit.id.in_(units.ids)))).all() if at is not None}
    reports = {unit_id: (*opened.get(unit_id, (0, 0)), at) for unit_id, at in last_of.items()}
    # Deliveries recorded in the ward, as the digest's policies count them. Bounded so, the
    # EXISTS is one index probe per eligible household; unbounded, PostgreSQL hashed every
    # delivery of the city for it (a sequential scan, ~100 ms of the page).
    delivered = exists().where(SupportDelivery.household_id == SupportEligibility.household_id,
                               SupportDelivery.policy_key == SupportEligibility.policy_key,
                               SupportDelivery.status == "delivered",
                               SupportDelivery.delivered_on <= day,
                               SupportDelivery.unit_id.in_(units.ids))
    support = {row[0]: row[1:] for row in (await session.execute(
        select(SupportEligibility.unit_id, func.count(), digest.count_if(delivered))
        .where(units.holds(SupportEligibility.unit_id))
        .group_by(SupportEligibility.unit_id))).all()}
    # The ward itself only has a row when something is recorded on it directly.
    shown = [u for u in units.ids if u != units.ward.id or u in reports or u in support]
    rows = []
    for unit_id in shown:
        at = checked.get(unit_id)
        state = ("vacant" if unit_id not in expected and unit_id != units.ward.id else
                 day_state(at, day, times, tz, now))
        open_, urgent, last = reports.get(unit_id, (0, 0, None))
        eligible, covered = support.get(unit_id, (0, 0))
        rows.append(UnitRow(unit_id, units.names[unit_id] or units.ward.name,
                            expected.get(unit_id, []), unit_id in connected,
                            "" if unit_id == units.ward.id else state, at, int(open_),
                            int(urgent), last, int(eligible), int(covered)))
    return rows


@dataclass
class WardRank:
    """What the city's page ranks a ward by: the digest's compliance (digest.compliance
    itself) and its open and open urgent cases, counted as the digest counts them."""

    ward: Unit
    compliance: digest.Compliance
    open: int
    urgent_open: int


def unit_tree(root: Unit) -> ColumnElement[bool]:
    """The units of root's subtree (itself too), as a range on the indexed path."""
    return and_(Unit.path >= root.path, Unit.path < root.path + "\uffff")


async def city(session: AsyncSession, root_id: int, scope: Scope, day: date,
               settings: DigestSettings) -> tuple[Unit, list[WardRank]] | None:
    """The wards under a unit above them, or None when the unit is outside the scope.

    Only what the ranking needs, read for the whole city at once and grouped by ward in SQL
    (each unit joined to the ward whose path range holds it: ~168 rows come back, not the
    city's ~35,000 units and ~29,000 check-ins), not each ward's digest in turn:
    digest.compliance's rules, counted in bulk, equal to it (tested). The open cases are the
    units' kept counts (UnitReportCount), corrected to the day's end by what was created or
    resolved after it (nothing, on today's page: one index probe each)."""
    root = await unit_in_scope(session, root_id, scope)
    if root is None or schedules.is_ward(root):
        return None
    tz = settings.tz
    _, end = digest.bounds(day, tz)
    wards = await schedules.wards(session, [root])
    # A unit counts for the first ward on its path: a ward inside another ward counts none.
    outer = [w for w in wards
             if not any(o.id != w.id and w.path.startswith(o.path) for o in wards)]
    outer_ids = {w.id for w in outer}
    ward, unit = aliased(Unit), aliased(Unit)
    under = and_(unit.path >= ward.path, unit.path < ward.path + "\uffff")
    per_ward = (select(ward.id).join(unit, under).where(ward.id.in_(outer_ids))
                .group_by(ward.id))
    led = exists(select(RoleAssignment.id).join(Person, Person.id == RoleAssignment.person_id)
                 .where(RoleAssignment.unit_id == unit.id, RoleAssignment.role == Role.LEADER,
                        RoleAssignment.active.is_(True), Person.active.is_(True)))
    expected = {w.id: 0 for w in wards}
    reported, on_time = dict(expected), dict(expected)
    opened, urgent = dict(expected), dict(expected)
    # Each ward's reminder time that day: on time is before it.
    own = {row.unit_id: row for row in (await session.execute(
        select(Schedule).where(Schedule.unit_id.in_(outer_ids)))).scalars()}
    by_deadline: dict[datetime, list[int]] = {}
    for w in outer:
        hour, minute = divmod(schedules.minutes_of(
            schedules.effective(settings, own.get(w.id)).reminder_at), 60)
        deadline = datetime.combine(day, time(hour, minute), tz).astimezone(UTC)
        by_deadline.setdefault(deadline, []).append(w.id)
    in_time = or_(*(CheckIn.created_at < at if len(by_deadline) == 1 else
                    and_(ward.id.in_(ids), CheckIn.created_at < at)
                    for at, ids in by_deadline.items())) if by_deadline else false()
    # The units expected to answer (below the ward, led) and the day's answers, one pass.
    for ward_id, n, answers, timely in (await session.execute(
            per_ward.add_columns(func.count(), func.count(CheckIn.unit_id),
                                 digest.count_if(in_time))
            .outerjoin(CheckIn, and_(CheckIn.unit_id == unit.id, CheckIn.day == day))
            .where(unit.id != ward.id, led))).all():
        expected[ward_id], reported[ward_id], on_time[ward_id] = int(n), int(answers), int(timely)
    for ward_id, n, u in (await session.execute(
            per_ward.add_columns(func.coalesce(func.sum(UnitReportCount.open), 0),
                                 func.coalesce(func.sum(UnitReportCount.open_urgent), 0))
            .join(UnitReportCount, UnitReportCount.unit_id == unit.id))).all():
        opened[ward_id], urgent[ward_id] = int(n), int(u)
    # Open at the day's end: not what was opened after it (a report of a past day's page
    # counts from its creation), and what was resolved only after it. On today's page there
    # is none: the latest creation and resolution (one probe of the created_at and
    # resolved_at indexes each) say so, and the per-unit queries are not run.
    latest, resolved_last = (await session.execute(
        select(select(func.max(Report.created_at)).scalar_subquery(),
               select(func.max(Report.resolved_at)).scalar_subquery()))).one()
    later = (select(Unit.path, func.count(), digest.count_if(Report.urgent.is_(True)))
             .select_from(Report).join(Unit, Unit.id == Report.unit_id)
             .where(Report.created_at >= end, Report.status == ReportStatus.OPEN,
                    unit_tree(root)).group_by(Unit.path))
    resolved_after = (select(Unit.path, func.count(), literal(0))
                      .select_from(Report).join(Unit, Unit.id == Report.unit_id)
                      .where(Report.resolved_at >= end, Report.created_at < end,
                             unit_tree(root)).group_by(Unit.path))
    for sign, query, last in ((-1, later, latest), (1, resolved_after, resolved_last)):
        if last is None or (last if last.tzinfo else last.replace(tzinfo=UTC)) < end:
            continue
        for path, n, u in (await session.execute(query)).all():
            found = next((int(p) for p in path.strip("/").split("/") if int(p) in outer_ids),
                         None)
            if found is not None:
                opened[found] += sign * int(n)
                urgent[found] += sign * int(u)
    ranks = [WardRank(w, digest.Compliance(
        expected[w.id], reported[w.id], on_time[w.id], reported[w.id] - on_time[w.id],
        digest.rate(reported[w.id], expected[w.id]), digest.rate(on_time[w.id],
                                                                   expected[w.id])),
        opened[w.id], urgent[w.id]) for w in wards]
    return root, ranks


# --- one unit -------------------------------------------------------------------------------

HOUSEHOLDS_LISTED = 500  # a quarter's register; the count says how many more there are
STRIP_DAYS = 30


@dataclass
class HouseholdLine:
    code: str
    head_name: str | None  # the page decides how much of it the reader sees
    members: int
    flags: list[str]


@dataclass
class OpenReport:
    report_id: int
    household_code: str
    category_vi: str
    category_en: str
    urgent: bool
    created_at: datetime


@dataclass
class Acknowledgement:
    kind: str  # "directive" | "drill"
    title: str  # the directive's first words, or the scenario's label (vi / en below)
    title_en: str
    at: datetime
    done: list[str]  # unit paths (a drill) or people (a directive) who acknowledged
    missing: list[str]
    item_id: int = 0


@dataclass
class UnitPage:
    unit: Unit
    ward: Unit | None
    path: str
    households: list[HouseholdLine]
    households_total: int
    reports: list[OpenReport]
    strip: list[tuple[date, str]]  # (day, "on_time"|"late"|"silent"|"") oldest first
    acknowledgements: list[Acknowledgement]


async def unit_page(session: AsyncSession, unit_id: int, scope: Scope, day: date,
                    settings: DigestSettings, now: datetime) -> UnitPage | None:
    """A unit below a ward and its subtree, or None when it is outside the scope."""
    unit = await unit_in_scope(session, unit_id, scope)
    if unit is None:
        return None
    ward = await schedules.ward_of(session, unit)
    units = await digest.ward_units(session, unit)
    ids = units.ids
    homes_q = (select(Household).where(Household.unit_id.in_(ids))
               .order_by(Household.unit_id, Household.code).limit(HOUSEHOLDS_LISTED))
    homes = [HouseholdLine(h.code, h.head_name, h.members,
                           [f for f in HOUSEHOLD_FLAGS if getattr(h, f)])
             for h in (await session.execute(homes_q)).scalars()]
    total = int((await session.execute(select(func.count()).where(
        Household.unit_id.in_(ids)))).scalar_one())
    reports_q = (select(Report.id, Household.code, ReportCategory.label_vi,
                        ReportCategory.label_en, Report.urgent, Report.created_at)
                 .join(Household, Household.id == Report.household_id)
                 .join(ReportCategory, ReportCategory.key == Report.category_key)
                 .where(Report.unit_id.in_(ids), Report.status == ReportStatus.OPEN)
                 .order_by(Report.urgent.desc(), Report.created_at))
    open_reports = [OpenReport(*row) for row in (await session.execute(reports_q)).all()]
    return UnitPage(unit, ward, await unit_paths.full_path(session, unit), homes, total,
                    open_reports,
                    await _strip(session, unit, ward, day, settings, now),
                    await _acknowledgements(session, units, day, settings))


async def _strip(session: AsyncSession, unit: Unit, ward: Unit | None, day: date,
                 settings: DigestSettings, now: datetime) -> list[tuple[date, str]]:
    """The unit's own check-ins of the last STRIP_DAYS days, by the ward's schedule (day_state);
    the days before the unit was on record are "no_data", not silent."""
    first = day - timedelta(days=STRIP_DAYS - 1)
    answered = dict((await session.execute(select(CheckIn.day, CheckIn.created_at).where(
        CheckIn.unit_id == unit.id, CheckIn.day >= first, CheckIn.day <= day))).all())
    if ward is None or ward.id == unit.id:
        return []
    times = await schedules.schedule_of(session, settings, ward)
    since = digest.local_date(unit.created_at, settings.tz)
    strip = []
    for n in range(STRIP_DAYS):
        d = first + timedelta(days=n)
        at = answered.get(d)
        strip.append((d, "no_data" if d < since and at is None else
                      day_state(at, d, times, settings.tz, now)))
    return strip


@dataclass
class _AckRow:
    kind: str
    item_id: int
    title: str
    title_en: str
    at: datetime
    unit_id: int
    who: str  # the person (a directive's recipient) or the unit (a drill's participant)
    acknowledged: bool


async def _ack_rows(session: AsyncSession, units: WardUnits, day: date,
                    settings: DigestSettings) -> list[_AckRow]:
    """Each recipient of the directives (asking for acknowledgement) and each participant of
    the drills of the last STRIP_DAYS days that reached this subtree, newest item first."""
    since = datetime.combine(day - timedelta(days=STRIP_DAYS - 1), time(0),
                             settings.tz).astimezone(UTC)
    rows = []
    directive_q = (select(Directive.id, Directive.text, Directive.created_at, Person.full_name,
                          DirectiveRecipient.unit_id, DirectiveRecipient.acknowledged_at)
                   .join(DirectiveRecipient, DirectiveRecipient.directive_id == Directive.id)
                   .join(Person, Person.id == DirectiveRecipient.person_id)
                   .where(DirectiveRecipient.unit_id.in_(units.ids),
                          Directive.created_at >= since, Directive.requires_ack.is_(True))
                   .order_by(Directive.created_at.desc(), Person.full_name))
    for d_id, words, at, name, unit_id, acked in (await session.execute(directive_q)).all():
        title = words if len(words) <= 80 else words[:79] + "…"
        rows.append(_AckRow("directive", d_id, title, title, at, unit_id, name,
                            acked is not None))
    drill_q = (select(Drill.id, DrillScenario.label_vi, DrillScenario.label_en,
                      Drill.started_at, DrillParticipant.unit_id,
                      DrillParticipant.acknowledged_at)
               .join(DrillParticipant, DrillParticipant.drill_id == Drill.id)
               .join(DrillScenario, DrillScenario.key == Drill.scenario_key)
               .where(DrillParticipant.unit_id.in_(units.ids), Drill.started_at >= since)
               .order_by(Drill.started_at.desc(), DrillParticipant.unit_id))
    for d_id, label_vi, label_en, at, unit_id, acked in (await session.execute(drill_q)).all():
        rows.append(_AckRow("drill", d_id, label_vi, label_en, at, unit_id,
                            units.names[unit_id] or units.ward.name, acked is not None))
    return rows


async def _acknowledgements(session: AsyncSession, units: WardUnits, day: date,
                            settings: DigestSettings) -> list[Acknowledgement]:
    """Directives (who has not acknowledged, by name) and drills (which units) of the last
    STRIP_DAYS days that reached this subtree."""
    found: dict[tuple[str, int], Acknowledgement] = {}
    for row in await _ack_rows(session, units, day, settings):
        entry = found.setdefault((row.kind, row.item_id), Acknowledgement(
            row.kind, row.title, row.title_en, row.at, [], [], row.item_id))
        (entry.done if row.acknowledged else entry.missing).append(row.who)
    return sorted(found.values(), key=lambda a: a.at, reverse=True)


@dataclass
class AckCell:
    done: int
    total: int
    missing: list[str]  # by name: a directive's recipients, a drill unit's leaders


@dataclass
class AckMatrix:
    """Units × items: each directive and drill of the last STRIP_DAYS days (newest first)
    against each unit it reached, with who is missing by name."""

    unit: Unit
    items: list[Acknowledgement]  # the columns, with their totals
    units: list[tuple[int, str]]  # the rows: (unit id, path), in tree order
    cells: dict[tuple[int, str, int], AckCell]  # (unit id, kind, item id)


async def acknowledgements(session: AsyncSession, unit_id: int, scope: Scope, day: date,
                           settings: DigestSettings) -> AckMatrix | None:
    """The acknowledgement matrix of a unit's subtree (a ward's, on its page); None when the
    unit is outside the scope."""
    unit = await unit_in_scope(session, unit_id, scope)
    if unit is None:
        return None
    units = await digest.ward_units(session, unit)
    rows = await _ack_rows(session, units, day, settings)
    leaders = await digest.expected_units(session, units)
    cells: dict[tuple[int, str, int], AckCell] = {}
    items: dict[tuple[str, int], Acknowledgement] = {}
    for row in rows:
        cell = cells.setdefault((row.unit_id, row.kind, row.item_id), AckCell(0, 0, []))
        cell.total += 1
        item = items.setdefault((row.kind, row.item_id), Acknowledgement(
            row.kind, row.title, row.title_en, row.at, [], [], row.item_id))
        if row.acknowledged:
            cell.done += 1
            item.done.append(row.who)
        else:
            # A drill is a unit's: the people to call are its leaders.
            names = [row.who] if row.kind == "directive" else (
                leaders.get(row.unit_id) or [row.who])
            cell.missing += names
            item.missing += names
    reached = {row.unit_id for row in rows}
    shown = [(u, units.names[u] or unit.name) for u in units.ids if u in reached]
    return AckMatrix(unit, sorted(items.values(), key=lambda a: a.at, reverse=True), shown,
                     cells)


# --- a ward's open reports ------------------------------------------------------------------

REPORTS_LISTED = 500


@dataclass
class WardReport:
    report_id: int
    unit: str
    household_code: str
    category_key: str
    category_vi: str
    category_en: str
    urgent: bool
    created_at: datetime


async def open_reports(session: AsyncSession, unit_id: int, scope: Scope, *,
                       situation: str | None, before: datetime | None
                       ) -> tuple[Unit, list[WardReport], list[tuple[str, str, str]]] | None:
    """The open reports of a unit's subtree, urgent first then oldest first, optionally of
    one situation and opened before a time; with the situations they have (for the filter).
    None when the unit is outside the scope."""
    unit = await unit_in_scope(session, unit_id, scope)
    if unit is None:
        return None
    units = await digest.ward_units(session, unit)
    where = [Report.unit_id.in_(units.ids), Report.status == ReportStatus.OPEN]
    kinds = [(key, vi, en) for key, vi, en in (await session.execute(
        select(ReportCategory.key, ReportCategory.label_vi, ReportCategory.label_en)
        .where(ReportCategory.key.in_(select(Report.category_key).where(*where).distinct()))
        .order_by(ReportCategory.position))).all()]
    if situation:
        where.append(Report.category_key == situation)
    if before is not None:
        where.append(Report.created_at < before)
    query = (select(Report.id, Report.unit_id, Household.code, Report.category_key,
                    ReportCategory.label_vi, ReportCategory.label_en, Report.urgent,
                    Report.created_at)
             .join(Household, Household.id == Report.household_id)
             .join(ReportCategory, ReportCategory.key == Report.category_key)
             .where(*where).order_by(Report.urgent.desc(), Report.created_at)
             .limit(REPORTS_LISTED))
    rows = [WardReport(r.id, units.names[r.unit_id] or unit.name, r.code, r.category_key,
                       r.label_vi, r.label_en, r.urgent, r.created_at)
            for r in (await session.execute(query)).all()]
    return unit, rows, kinds


# --- a ward's support coverage --------------------------------------------------------------

@dataclass
class Coverage:
    eligible: int
    covered: int  # eligible households delivered to by the day, under that policy
    # Households delivered to under the policy that are not on its eligible list: support
    # that reached people all the same, which the page shows beside the rate, not hides.
    outside: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.covered / self.eligible, 4) if self.eligible else None


@dataclass
class OpenDispute:
    """A monitor's flag on a delivery (delivery_disputes), still open. The note is free text
    a monitor typed (it may name people): the page lists the case, the note stays in chat."""

    dispute_id: int
    unit_id: int
    unit: str
    policy_key: str
    household_code: str
    delivered_on: date
    flagged_at: datetime


@dataclass
class CoverageMatrix:
    ward: Unit
    policies: list[tuple[str, str, str]]  # (key, label_vi, label_en), in catalogue order
    units: list[tuple[int, str]]  # (unit id, path) of the units with anyone eligible
    cells: dict[tuple[int, str], Coverage]
    totals: dict[str, Coverage]
    disputes: list[OpenDispute] = field(default_factory=list)  # oldest first

    def disputed(self, unit_id: int, policy_key: str) -> int:
        return sum(1 for d in self.disputes
                   if d.unit_id == unit_id and d.policy_key == policy_key)

    def disputed_policy(self, policy_key: str) -> int:
        return sum(1 for d in self.disputes if d.policy_key == policy_key)


async def coverage(session: AsyncSession, unit_id: int, scope: Scope, day: date
                   ) -> CoverageMatrix | None:
    """Policy × unit: eligible households, and those delivered to by the day (as the unit
    rows of the overview count them). None when the unit is outside the scope."""
    unit = await unit_in_scope(session, unit_id, scope)
    if unit is None:
        return None
    units = await digest.ward_units(session, unit)
    delivered = exists().where(SupportDelivery.household_id == SupportEligibility.household_id,
                               SupportDelivery.policy_key == SupportEligibility.policy_key,
                               SupportDelivery.status == "delivered",
                               SupportDelivery.delivered_on <= day)
    cells: dict[tuple[int, str], Coverage] = {}
    for unit_of, key, n, covered in (await session.execute(
            select(SupportEligibility.unit_id, SupportEligibility.policy_key, func.count(),
                   digest.count_if(delivered))
            .where(SupportEligibility.unit_id.in_(units.ids))
            .group_by(SupportEligibility.unit_id, SupportEligibility.policy_key))).all():
        cells[(int(unit_of), key)] = Coverage(int(n), int(covered))
    listed = exists().where(SupportEligibility.household_id == SupportDelivery.household_id,
                            SupportEligibility.policy_key == SupportDelivery.policy_key)
    for unit_of, key, outside in (await session.execute(
            select(SupportDelivery.unit_id, SupportDelivery.policy_key,
                   func.count(SupportDelivery.household_id.distinct()))
            .where(SupportDelivery.unit_id.in_(units.ids), SupportDelivery.status == "delivered",
                   SupportDelivery.delivered_on <= day, ~listed)
            .group_by(SupportDelivery.unit_id, SupportDelivery.policy_key))).all():
        cells.setdefault((int(unit_of), key), Coverage(0, 0)).outside = int(outside)
    disputes = [OpenDispute(d_id, int(unit_of), units.names[unit_of] or unit.name, key, code,
                            on, at)
                for d_id, unit_of, key, code, on, at in (await session.execute(
                    select(DeliveryDispute.id, SupportDelivery.unit_id,
                           SupportDelivery.policy_key, Household.code,
                           SupportDelivery.delivered_on, DeliveryDispute.created_at)
                    .join(SupportDelivery, SupportDelivery.id == DeliveryDispute.delivery_id)
                    .join(Household, Household.id == SupportDelivery.household_id)
                    .where(SupportDelivery.unit_id.in_(units.ids),
                           DeliveryDispute.status == "open")
                    .order_by(DeliveryDispute.created_at, DeliveryDispute.id))).all()]
    keys = {key for _, key in cells} | {d.policy_key for d in disputes}
    policies = [(p.key, p.label_vi, p.label_en) for p in (await session.execute(
        select(SupportPolicy).order_by(SupportPolicy.position))).scalars() if p.key in keys]
    totals = {key: Coverage(sum(c.eligible for (_, k), c in cells.items() if k == key),
                            sum(c.covered for (_, k), c in cells.items() if k == key),
                            sum(c.outside for (_, k), c in cells.items() if k == key))
              for key, _, _ in policies}
    flagged = {d.unit_id for d in disputes}
    shown = [(u, units.names[u] or unit.name) for u in units.ids
             if u in flagged or any((u, key) in cells for key, _, _ in policies)]
    return CoverageMatrix(unit, policies, shown, cells, totals, disputes)


# --- a ward's open disputes, for the support page -------------------------------------------

DISPUTES_LISTED = 500


@dataclass
class DisputeLine:
    """An open dispute with what the support page lists: where, which policy, which household
    (its head's name: the page shows initials unless the reader's role may read it), when
    the delivery was recorded and when the monitor flagged it (its age). The monitor's note
    is free text that may name people: it stays in chat."""

    dispute_id: int
    unit_id: int
    unit: str  # 'Khu phố 1 › Tổ dân phố 1'
    unit_path: str  # the materialised path, for the page's name rule
    policy_key: str
    policy_vi: str
    policy_en: str
    household_code: str
    head_name: str | None
    delivered_on: date
    flagged_at: datetime


async def dispute_lines(session: AsyncSession, unit_id: int, scope: Scope
                        ) -> tuple[Unit, list[DisputeLine]] | None:
    """The open disputes on deliveries in a unit's subtree, oldest first (first come, as
    /disputes lists them); None when the unit is outside the scope."""
    unit = await unit_in_scope(session, unit_id, scope)
    if unit is None:
        return None
    units = await digest.ward_units(session, unit)
    query = (select(DeliveryDispute.id, SupportDelivery.unit_id, Unit.path,
                    SupportDelivery.policy_key, SupportPolicy.label_vi, SupportPolicy.label_en,
                    Household.code, Household.head_name, SupportDelivery.delivered_on,
                    DeliveryDispute.created_at)
             .join(SupportDelivery, SupportDelivery.id == DeliveryDispute.delivery_id)
             .join(Household, Household.id == SupportDelivery.household_id)
             .join(Unit, Unit.id == SupportDelivery.unit_id)
             .join(SupportPolicy, SupportPolicy.key == SupportDelivery.policy_key)
             .where(SupportDelivery.unit_id.in_(units.ids), DeliveryDispute.status == "open")
             .order_by(DeliveryDispute.created_at, DeliveryDispute.id).limit(DISPUTES_LISTED))
    return unit, [DisputeLine(d_id, int(unit_of), units.names[unit_of] or unit.name, path, key,
                              vi, en, code, head, on, at)
                  for d_id, unit_of, path, key, vi, en, code, head, on, at in
                  (await session.execute(query)).all()]
