"""Household situation reports, what happens to them after filing, and daily check-ins.

Every read takes a scope, the materialised paths of the units the asker holds a role on (as in
storage.households): a report outside every path does not exist for that asker.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage import catalog
from storage.households import Scope, in_scope
from storage.models import (
    CheckIn,
    Household,
    Report,
    ReportCategory,
    ReportEvent,
    ReportStatus,
    Role,
    RoleAssignment,
    Unit,
    UnitReportCount,
)

NOTE_LIMIT = 500


class EventKind(enum.StrEnum):
    UPDATED = "updated"  # people count and/or note changed
    URGENT = "urgent"  # marked urgent after filing
    NOT_URGENT = "not_urgent"
    RESOLVED = "resolved"
    ASSIGNED = "assigned"  # a ward staff member took it from its alert


class Take(enum.StrEnum):
    """What a tap on an alert's "Đã nhận xử lý" did (storage.reports.take)."""

    TAKEN = "taken"  # this tap took it
    ALREADY_YOURS = "already_yours"  # a second tap by the one who took it
    TAKEN_BY_OTHER = "taken_by_other"
    RESOLVED = "resolved"  # closed before anyone took it
    BUSY = "busy"  # another staff member's tap is taking it at this very moment


class CheckInAnswer(enum.StrEnum):
    NO_CHANGE = "no_change"
    REPORTED = "reported"


# --- categories ------------------------------------------------------------------------------

async def categories(session: AsyncSession, *, active_only: bool = True,
                     within: Scope | None = None) -> Sequence[ReportCategory]:
    """The catalogue (the active part unless asked), in its configured order; `within` a
    person's scope, the city's situations and their wards' own (storage.catalog)."""
    query = select(ReportCategory).order_by(ReportCategory.unit_id.is_not(None),
                                            ReportCategory.position, ReportCategory.key)
    if active_only:
        query = query.where(ReportCategory.active.is_(True))
    if within is not None:
        query = query.where(catalog.visible(ReportCategory.unit_id, within))
    return (await session.execute(query)).scalars().all()


def category_offered(entry: ReportCategory, unit: Unit) -> bool:
    """Whether a report on a household of `unit` may be filed under the situation."""
    return entry.active and (entry.unit_id is None
                             or f"/{entry.unit_id}/" in unit.path)


async def category(session: AsyncSession, key: str) -> ReportCategory | None:
    return await session.get(ReportCategory, key)


def category_label(entry: ReportCategory, locale: str) -> str:
    return entry.label_vi if locale == "vi" else entry.label_en


# --- reports ---------------------------------------------------------------------------------

async def create(session: AsyncSession, *, household: Household, category_key: str,
                 people_count: int, urgent: bool, note: str | None, photo: str | None,
                 person_id: int | None, now: datetime) -> Report:
    report = Report(household_id=household.id, unit_id=household.unit_id,
                    category_key=category_key, people_count=people_count, urgent=urgent,
                    note=note, photo=photo, status=ReportStatus.OPEN,
                    created_by_person_id=person_id, created_at=now, updated_at=now)
    session.add(report)
    await session.flush()
    await count_change(session, report.unit_id, 1, 1 if urgent else 0)
    return report


async def add_recorded(session: AsyncSession, report: Report) -> Report:
    """A report as it already stands (a past one, resolved or not: the demo's, an import's),
    added with its unit's kept counts; `create` files a new one."""
    session.add(report)
    await session.flush()
    if report.status == ReportStatus.OPEN:
        await count_change(session, report.unit_id, 1, 1 if report.urgent else 0)
    return report


async def count_change(session: AsyncSession, unit_id: int, open_: int, urgent: int) -> None:
    """Add to a unit's kept counts of open and open urgent reports (UnitReportCount), in the
    caller's transaction: every write that opens or closes a report or changes an open one's
    urgency calls this, so the counts equal a COUNT of the reports at every commit. An
    upsert (the row is made at the unit's first report); on PostgreSQL two writers of one
    unit queue on its row and each adds its own."""
    if not open_ and not urgent:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(UnitReportCount).values(unit_id=unit_id, open=open_, open_urgent=urgent)
    statement = statement.on_conflict_do_update(
        index_elements=["unit_id"],
        set_={"open": UnitReportCount.open + statement.excluded.open,
              "open_urgent": UnitReportCount.open_urgent + statement.excluded.open_urgent})
    await session.execute(statement)


# What every listing shows: the household's code and the category's label.
_PARTS = (selectinload(Report.household), selectinload(Report.category))


async def open_in_scope(session: AsyncSession, scope: Scope,
                        limit: int = 10) -> Sequence[Report]:
    """Open reports in the scope, newest first."""
    query = (select(Report).join(Unit, Unit.id == Report.unit_id)
             .where(Report.status == ReportStatus.OPEN, in_scope(scope))
             .options(*_PARTS)
             .order_by(Report.created_at.desc(), Report.id.desc()).limit(limit))
    return (await session.execute(query)).scalars().all()


async def open_urgent_for(session: AsyncSession, household_id: int, scope: Scope,
                          since: datetime) -> Report | None:
    """The household's latest urgent report still open, filed since `since`, in the scope:
    a second urgent report of it is most likely the same emergency reported twice."""
    query = (select(Report).join(Unit, Unit.id == Report.unit_id)
             .where(Report.household_id == household_id, Report.urgent.is_(True),
                    Report.status == ReportStatus.OPEN, Report.created_at >= since,
                    in_scope(scope))
             .order_by(Report.created_at.desc(), Report.id.desc()).limit(1))
    return (await session.execute(query)).scalar_one_or_none()


async def get_in_scope(session: AsyncSession, report_id: int,
                       scope: Scope) -> Report | None:
    """The report when it lies in the scope; None when it is unknown or outside."""
    query = (select(Report).join(Unit, Unit.id == Report.unit_id)
             .where(Report.id == report_id, in_scope(scope))
             .options(*_PARTS))
    return (await session.execute(query)).scalar_one_or_none()


async def list_for_unit(session: AsyncSession, unit: Unit, *,
                        open_only: bool = False) -> Sequence[Report]:
    """Every report in the unit's subtree, oldest first (the command line's listing)."""
    query = (select(Report).join(Unit, Unit.id == Report.unit_id)
             .where(in_scope([unit.path]))
             .options(*_PARTS)
             .order_by(Report.created_at, Report.id))
    if open_only:
        query = query.where(Report.status == ReportStatus.OPEN)
    return (await session.execute(query)).scalars().all()


def _event(session: AsyncSession, report: Report, kind: EventKind, person_id: int | None,
           now: datetime, people_count: int | None = None,
           note: str | None = None) -> ReportEvent:
    event = ReportEvent(report_id=report.id, kind=kind, people_count=people_count, note=note,
                        person_id=person_id, created_at=now)
    session.add(event)
    report.updated_at = now
    return event


async def update(session: AsyncSession, report: Report, *, person_id: int | None,
                 now: datetime, people_count: int | None = None, note: str | None = None,
                 urgent: bool | None = None) -> list[ReportEvent]:
    """Change what is given; each change leaves an event (the report keeps the current
    values, the events the history)."""
    events = []
    if people_count is not None or note is not None:
        if people_count is not None:
            report.people_count = people_count
        if note is not None:
            report.note = note
        events.append(_event(session, report, EventKind.UPDATED, person_id, now,
                             people_count=people_count, note=note))
    if urgent is not None and urgent != report.urgent:
        report.urgent = urgent
        if report.status == ReportStatus.OPEN:
            await count_change(session, report.unit_id, 0, 1 if urgent else -1)
        kind = EventKind.URGENT if urgent else EventKind.NOT_URGENT
        events.append(_event(session, report, kind, person_id, now))
    await session.flush()
    return events


async def resolve(session: AsyncSession, report: Report, *, person_id: int | None,
                  now: datetime, note: str | None = None) -> ReportEvent:
    if report.status == ReportStatus.OPEN:
        await count_change(session, report.unit_id, -1, -1 if report.urgent else 0)
    report.status = ReportStatus.RESOLVED
    report.resolved_at, report.resolved_by_person_id = now, person_id
    event = _event(session, report, EventKind.RESOLVED, person_id, now, note=note)
    await session.flush()
    return event


async def take(session: AsyncSession, report: Report, person_id: int, now: datetime) -> Take:
    """Assign the (scope-checked) report to the person unless someone has it already.

    One conditional UPDATE, so two staff tapping at the same moment cannot both take it.
    On PostgreSQL the second waits for the first's turn to commit and then finds the report
    taken (TAKEN_BY_OTHER, naming who). This wait cannot deadlock: the taker's turn goes on
    to queue a message to the other staff, an outbox row whose foreign key check takes FOR
    KEY SHARE on their chat account, and the other's own turn holds that row only FOR NO
    KEY UPDATE (storage.people.sender_of), which lets the check through. (It held it FOR
    UPDATE once; the row was claimed with SKIP LOCKED then, and the loser was told someone
    is taking it right now: BUSY, still answered should the row be taken but not changed.)
    SQLite writes one turn at a time. The report is read again afterwards, so the caller
    sees who has it.
    """
    free = (select(Report.id)
            .where(Report.id == report.id, Report.assigned_to_person_id.is_(None),
                   Report.status == ReportStatus.OPEN)
            .with_for_update()
            .scalar_subquery())
    statement = (sql_update(Report).where(Report.id == free)
                 .values(assigned_to_person_id=person_id, assigned_at=now, updated_at=now)
                 .execution_options(synchronize_session=False))
    changed = (await session.execute(statement)).rowcount  # type: ignore[attr-defined]
    await session.refresh(report, ["assigned_to_person_id", "assigned_at", "status",
                                   "updated_at"])
    if changed:
        session.add(ReportEvent(report_id=report.id, kind=EventKind.ASSIGNED,
                                person_id=person_id, created_at=now))
        await session.flush()
        return Take.TAKEN
    if report.assigned_to_person_id == person_id:
        return Take.ALREADY_YOURS
    if report.assigned_to_person_id is not None:
        return Take.TAKEN_BY_OTHER
    return Take.RESOLVED if report.status != ReportStatus.OPEN else Take.BUSY


# --- daily check-ins -------------------------------------------------------------------------

def local_day(now: datetime, tz: tzinfo) -> date:
    """The day a check-in counts for: the date where the ward is (COSO_TIMEZONE)."""
    return now.astimezone(tz).date()


async def own_units(session: AsyncSession, person_id: int | None,
                    unit_ids: Sequence[int]) -> set[int]:
    """The units among these that the person leads themself: an active leader post on the
    unit itself. Leading a unit above it does not count: a quarter's head is not the head of
    its residential groups, whose check-ins their own heads owe."""
    if person_id is None or not unit_ids:
        return set()
    query = select(RoleAssignment.unit_id).where(
        RoleAssignment.person_id == person_id, RoleAssignment.role == Role.LEADER,
        RoleAssignment.active.is_(True), RoleAssignment.unit_id.in_(list(unit_ids)))
    return set((await session.execute(query)).scalars())


async def answer_check_in(session: AsyncSession, unit_id: int, day: date, person_id: int | None,
                          now: datetime) -> CheckIn | None:
    """"No change today" from the unit's own leader; None, and nothing recorded, from anyone
    else (the head of the quarter above included). The one way an answer is counted."""
    if unit_id not in await own_units(session, person_id, [unit_id]):
        return None
    return await record_check_in(session, unit_id, day, CheckInAnswer.NO_CHANGE, person_id,
                                 now)


async def reported_check_ins(session: AsyncSession, unit: Unit, day: date,
                             person_id: int | None, now: datetime) -> list[int]:
    """A report filed on a household of `unit` answers the day's check-in of each unit on its
    path (the unit and those above it) that the filer leads themself: a group's head filing
    in their group answers for the group; a quarter's head filing in one of its groups
    answers for the quarter and must not be chased for it, but not for the group, whose own
    head still owes the answer. Ward staff filing answer for nobody. The one way a report is
    counted; returns the units answered, in id order."""
    path = [int(part) for part in unit.path.strip("/").split("/")]
    answered = sorted(await own_units(session, person_id, path))
    for unit_id in answered:
        await record_check_in(session, unit_id, day, CheckInAnswer.REPORTED, person_id, now)
    return answered


async def record_check_in(session: AsyncSession, unit_id: int, day: date,
                          answer: CheckInAnswer, person_id: int | None,
                          now: datetime) -> CheckIn:
    """One row per unit and day: a second answer updates it, and "reported" wins.

    An upsert, so two leaders of one unit answering at the same moment cannot collide. It
    writes what it is given: who may answer for a unit is answer_check_in's and
    reported_check_ins' business, which the digest, the dashboard and the reminders then
    all read alike.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(CheckIn).values(unit_id=unit_id, day=day, answer=answer,
                                       person_id=person_id, created_at=now)
    if answer == CheckInAnswer.REPORTED:
        statement = statement.on_conflict_do_update(
            index_elements=["unit_id", "day"],
            set_={"answer": CheckInAnswer.REPORTED, "person_id": person_id})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["unit_id", "day"])
    await session.execute(statement)
    found = await check_in_for(session, unit_id, day)
    assert found is not None  # just written, or there already
    return found


async def check_in_for(session: AsyncSession, unit_id: int, day: date) -> CheckIn | None:
    query = (select(CheckIn).where(CheckIn.unit_id == unit_id, CheckIn.day == day)
             .execution_options(populate_existing=True))
    return (await session.execute(query)).scalar_one_or_none()
