"""Each ward's daily times (its own or the city-wide defaults) and the exactly-once run claims.

A ward is a unit of level ward, commune or special zone (the names the official import gives;
see storage/official_units.py): the tier that ward staff run and that receives the digest.
Only such units get a schedule, so two nested units can never both prompt the same leaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import CheckIn, JobRun, Person, Role, RoleAssignment, Schedule, Unit, utcnow
from wording import N_, when

WARD_LEVELS = ("ward", "commune", "special_zone")
# The daily jobs in the order they run when several are due at once (a catch-up at start).
PROMPT, REMINDER, ESCALATION, DIGEST = "prompt", "reminder", "escalation", "digest"
JOBS = (PROMPT, REMINDER, ESCALATION, DIGEST)
# A job that follows up another keeps its scheduled gap after the other actually ran: a
# question sent late (caught up at start) is not chased in the same minute.
CHASES = {REMINDER: PROMPT, ESCALATION: REMINDER}
TIME_FIELDS = ("prompt_at", "reminder_at", "digest_at")
TIME_EXAMPLE = N_("That is no time of day; write it as 16:30, 16h30 or 4:30 pm.")


class Defaults(Protocol):
    """The city-wide defaults (bot.settings.Settings carries them)."""

    check_in_at: str
    reminder_at: str
    digest_at: str
    weekdays_only: bool
    escalation_after_minutes: int


class ScheduleError(ValueError):
    """A schedule that cannot work; the message is an English msgid for t()."""


@dataclass(frozen=True)
class Times:
    """A ward's effective schedule; `own` names the fields the ward set itself."""

    prompt_at: str
    reminder_at: str
    digest_at: str
    weekdays_only: bool
    own: frozenset[str] = frozenset()
    escalation_after: int = 60  # minutes between the reminder and the escalation

    def at(self, job: str) -> str:
        """The HH:MM a job runs at."""
        return {PROMPT: self.prompt_at, REMINDER: self.reminder_at,
                ESCALATION: self.escalation_at, DIGEST: self.digest_at}[job]

    def minute(self, job: str) -> int:
        """Minutes after midnight the job runs at."""
        return minutes_of(self.at(job))

    @property
    def escalation_at(self) -> str:
        """The reminder plus the delay that leaves leaders time to answer it, but never after
        the digest (whose silent list would otherwise come first) nor past midnight."""
        total = min(minutes_of(self.reminder_at) + self.escalation_after, 23 * 60 + 59)
        return min(clock_of(total), max(self.digest_at, self.reminder_at))

    def runs_on(self, day: date) -> bool:
        return not (self.weekdays_only and day.weekday() >= 5)

    def as_dict(self) -> dict[str, object]:
        return {"prompt_at": self.prompt_at, "reminder_at": self.reminder_at,
                "digest_at": self.digest_at, "escalation_at": self.escalation_at,
                "weekdays_only": self.weekdays_only, "overridden": sorted(self.own)}


def minutes_of(clock: str) -> int:
    hours, minutes = (int(part) for part in clock.split(":"))
    return hours * 60 + minutes


def clock_of(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_time(text: str) -> str | None:
    """'16:00', '7:05', '16h', '16h30', '16.30', '7pm', '7 giờ tối' -> 'HH:MM' (the one
    reader of typed times, wording.when); None when it is no time of day."""
    try:
        return when.clock(text or "").strftime("%H:%M")
    except when.WhenError:
        return None


def defaults_of(defaults: Defaults) -> Times:
    return Times(defaults.check_in_at, defaults.reminder_at, defaults.digest_at,
                 defaults.weekdays_only, escalation_after=defaults.escalation_after_minutes)


def effective(defaults: Defaults, row: Schedule | None) -> Times:
    """The ward's own values where it has them, the city's elsewhere."""
    base = defaults_of(defaults)
    if row is None:
        return base
    own = {name for name in (*TIME_FIELDS, "weekdays_only") if getattr(row, name) is not None}
    return Times(row.prompt_at or base.prompt_at, row.reminder_at or base.reminder_at,
                 row.digest_at or base.digest_at,
                 base.weekdays_only if row.weekdays_only is None else row.weekdays_only,
                 frozenset(own), base.escalation_after)


def check(times: Times) -> None:
    """The reminder chases the check-in question, and the digest reports the day's answers
    (and who stayed silent after the reminder), so each comes after the one before."""
    if times.reminder_at <= times.prompt_at:
        raise ScheduleError(N_("The reminder must come after the check-in question."))
    if times.digest_at <= times.reminder_at:
        raise ScheduleError(N_("The digest must come after the reminder."))


# --- wards -----------------------------------------------------------------------------------

def is_ward(unit: Unit) -> bool:
    return unit.level in WARD_LEVELS


async def wards(session: AsyncSession, within: Sequence[Unit] | None = None) -> list[Unit]:
    """Every ward, or those in (or being) the given units' subtrees, in tree order."""
    query = select(Unit).where(Unit.level.in_(WARD_LEVELS)).order_by(Unit.path)
    if within is not None:
        if not within:
            return []
        query = query.where(or_(*(Unit.path.startswith(unit.path) for unit in within)))
    return list((await session.execute(query)).scalars())


async def ward_of(session: AsyncSession, unit: Unit) -> Unit | None:
    """The ward a unit is in (or is), if any."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    query = select(Unit).where(Unit.id.in_(ids), Unit.level.in_(WARD_LEVELS))
    found = sorted((await session.execute(query)).scalars(), key=lambda u: -len(u.path))
    return found[0] if found else None


async def schedules(session: AsyncSession, defaults: Defaults,
                    within: Sequence[Unit] | None = None) -> list[tuple[Unit, Times]]:
    """Each ward with its effective schedule (one query for the wards, one for overrides)."""
    found = await wards(session, within)
    own: dict[int, Schedule] = {}
    if found:
        rows = await session.execute(select(Schedule).where(
            Schedule.unit_id.in_([ward.id for ward in found])))
        own = {row.unit_id: row for row in rows.scalars()}
    return [(ward, effective(defaults, own.get(ward.id))) for ward in found]


async def schedule_of(session: AsyncSession, defaults: Defaults, ward: Unit) -> Times:
    return effective(defaults, await session.get(Schedule, ward.id))


@dataclass(frozen=True)
class Change:
    """What to change: a value sets it, CLEAR goes back to the city default, None keeps."""

    prompt_at: str | None = None
    reminder_at: str | None = None
    digest_at: str | None = None
    weekdays_only: bool | str | None = None


CLEAR = "default"


async def set_schedule(session: AsyncSession, defaults: Defaults, ward: Unit,
                       change: Change) -> Times:
    """Apply the change to the ward's own schedule; raises ScheduleError if it cannot work.

    Running jobs need no reload: the scheduler reads schedules again at every tick.
    """
    if not is_ward(ward):
        raise ScheduleError(N_("Only a ward, commune or special zone has a schedule."))
    row = await session.get(Schedule, ward.id)
    if row is None:
        row = Schedule(unit_id=ward.id)
        session.add(row)
    for name in (*TIME_FIELDS, "weekdays_only"):
        value = getattr(change, name)
        if value is None:
            continue
        if value == CLEAR:
            value = None
        elif name in TIME_FIELDS:
            value = parse_time(str(value))
            if value is None:
                raise ScheduleError(TIME_EXAMPLE)
        setattr(row, name, value)
    row.updated_at = utcnow()
    times = effective(defaults, row)
    check(times)
    await session.flush()
    return times


def with_change(times: Times, defaults: Defaults, change: Change) -> Times:
    """The schedule as it would be after the change (for a preview before saving)."""
    base = defaults_of(defaults)
    values: dict[str, object] = {}
    own = set(times.own)
    for name in (*TIME_FIELDS, "weekdays_only"):
        value = getattr(change, name)
        if value is None:
            continue
        if value == CLEAR:
            values[name] = getattr(base, name)
            own.discard(name)
        else:
            values[name] = parse_time(str(value)) if name in TIME_FIELDS else bool(value)
            own.add(name)
    return replace(times, **values, own=frozenset(own))  # type: ignore[arg-type]


# --- exactly-once runs -----------------------------------------------------------------------

def period_of(day: date) -> str:
    return day.isoformat()


async def claim(session: AsyncSession, job: str, unit_id: int, period: str) -> bool:
    """Take the (job, unit, period) key; False when another run (or process) has it.

    Runs inside the transaction that queues the run's messages: if the run fails, the claim
    goes with it and the next tick tries again; once committed, nobody runs it again. On
    PostgreSQL a second process inserting the same key waits for the first to commit, then
    finds the conflict, so two schedulers never both run it.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(JobRun)
        .values(job=job, unit_id=unit_id, period=period, claimed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["job", "unit_id", "period"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(session: AsyncSession, job: str, unit_id: int, period: str,
                 now: datetime | None = None) -> None:
    await session.execute(update(JobRun).where(
        JobRun.job == job, JobRun.unit_id == unit_id, JobRun.period == period,
    ).values(finished_at=now or utcnow()))


async def claimed(session: AsyncSession, period: str) -> dict[tuple[str, int], datetime]:
    """When each (job, unit) key already run for the period was claimed (UTC): a tick skips
    them without a write, and a chasing job keeps its gap after the job it chases."""
    query = select(JobRun.job, JobRun.unit_id, JobRun.claimed_at).where(JobRun.period == period)
    return {(job, unit_id): at if at.tzinfo else at.replace(tzinfo=UTC)
            for job, unit_id, at in (await session.execute(query)).all()}


async def ran(session: AsyncSession, job: str, unit_id: int, period: str) -> bool:
    """Whether the (job, unit, period) run is claimed: today's check-in question went out."""
    query = select(JobRun.id).where(JobRun.job == job, JobRun.unit_id == unit_id,
                                    JobRun.period == period).limit(1)
    return (await session.execute(query)).first() is not None


async def runs(session: AsyncSession, job: str | None = None,
               unit_id: int | None = None) -> Sequence[JobRun]:
    query = select(JobRun).order_by(JobRun.id)
    if job is not None:
        query = query.where(JobRun.job == job)
    if unit_id is not None:
        query = query.where(JobRun.unit_id == unit_id)
    return (await session.execute(query)).scalars().all()


# --- whom the daily jobs reach ---------------------------------------------------------------

async def leaders_in(session: AsyncSession, ward: Unit) -> list[tuple[Unit, Person]]:
    """(unit, leader) for every active leader of a unit below the ward, in tree order.

    A person leading two units appears twice: each unit has its own check-in.
    """
    query = (select(Unit, Person)
             .join(RoleAssignment, RoleAssignment.unit_id == Unit.id)
             .join(Person, Person.id == RoleAssignment.person_id)
             .where(Unit.path.startswith(ward.path), Unit.id != ward.id,
                    RoleAssignment.role == Role.LEADER, RoleAssignment.active.is_(True),
                    Person.active.is_(True))
             .order_by(Unit.path, Person.id))
    return [(unit, person) for unit, person in (await session.execute(query)).all()]


async def checked_in(session: AsyncSession, unit_ids: Sequence[int], day: date) -> set[int]:
    """The units among these that answered the check-in (or whose own leader reported) on
    the day: storage.reports.answer_check_in and reported_check_ins decide what counts."""
    if not unit_ids:
        return set()
    query = select(CheckIn.unit_id).where(CheckIn.day == day, CheckIn.unit_id.in_(unit_ids))
    return set((await session.execute(query)).scalars())


async def active(session: AsyncSession, ward_ids: Sequence[int]) -> set[int]:
    """The wards among these where anyone holds a role: the others have nobody to write to,
    so their runs are not even claimed (a whole province imported for one live ward)."""
    if not ward_ids:
        return set()
    ward = aliased(Unit)
    held = (select(RoleAssignment.id).join(Unit, Unit.id == RoleAssignment.unit_id)
            .where(RoleAssignment.active.is_(True), Unit.path.startswith(ward.path))
            .exists())
    query = select(ward.id).where(ward.id.in_(ward_ids), held)
    return set((await session.execute(query)).scalars())
