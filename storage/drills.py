"""Scenario drills: the catalogue, a drill's units, and each unit's progress and times.

A unit acknowledges, ticks the scenario's steps strictly in order, then reports done; the
times are measured from the drill's start. The ward's medians are over the units that got
that far (a unit that never acknowledged has no time to acknowledge, and counts in the
response rate instead).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import catalog
from storage.directives import Missing, connected
from storage.models import (
    Drill,
    DrillParticipant,
    DrillScenario,
    Person,
    Role,
    RoleAssignment,
    Unit,
)
from storage.units import short_paths
from wording import name_order

REMIND_EVERY = timedelta(minutes=30)
MAX_REMINDERS = 3
REMIND_BY_HAND_EVERY = timedelta(hours=1)  # staff's own nudge, at most this often


class Progress(enum.StrEnum):
    """Why a press did or did not move a unit on; the caller words it."""

    MOVED = "moved"
    ALREADY = "already"  # the same press twice (a double tap, a redelivered number)
    OUT_OF_ORDER = "out_of_order"
    ENDED = "ended"


async def scenarios(session: AsyncSession) -> Sequence[DrillScenario]:
    query = (select(DrillScenario).where(DrillScenario.active.is_(True))
             .order_by(DrillScenario.position, DrillScenario.key))
    return (await session.execute(query)).scalars().all()


async def scenarios_for(session: AsyncSession, ward: Unit) -> Sequence[DrillScenario]:
    """The active scenarios a ward may drill: the city's, then the ward's own."""
    query = (select(DrillScenario).where(DrillScenario.active.is_(True),
                                         catalog.visible(DrillScenario.unit_id, [ward.path]))
             .order_by(DrillScenario.unit_id.is_not(None), DrillScenario.position,
                       DrillScenario.key))
    return (await session.execute(query)).scalars().all()


def offered(scenario: DrillScenario, ward: Unit) -> bool:
    return scenario.active and (scenario.unit_id is None
                                or f"/{scenario.unit_id}/" in ward.path)


def takes_part(scenario: DrillScenario, unit: Unit) -> bool:
    """Whether a unit of this level takes part in the scenario (no levels given: every one)."""
    return not scenario.levels or unit.level in scenario.levels


def as_run(drill: Drill, scenario: DrillScenario) -> DrillScenario:
    """The scenario with the steps the drill started with (kept on the drill), so that its
    cards and report stay as they were when the scenario is edited later. Its labels are
    today's: a renamed scenario shows its new name. Never added to a session."""
    if drill.steps is None:
        return scenario
    return DrillScenario(key=scenario.key, label_vi=scenario.label_vi,
                         label_en=scenario.label_en, steps=drill.steps,
                         position=scenario.position, active=scenario.active,
                         levels=scenario.levels, unit_id=scenario.unit_id,
                         version=drill.scenario_version)


def label(scenario: DrillScenario, locale: str) -> str:
    return scenario.label_vi if locale == "vi" else scenario.label_en


def steps(scenario: DrillScenario, locale: str) -> list[str]:
    return [str(step.get(locale) or step.get("vi") or "") for step in scenario.steps]


async def start(session: AsyncSession, ward: Unit, scenario: DrillScenario,
                unit_ids: Sequence[int], person_id: int | None, now: datetime) -> Drill:
    drill = Drill(unit_id=ward.id, scenario_key=scenario.key, started_by_person_id=person_id,
                  started_at=now, scenario_version=scenario.version,
                  steps=[dict(step) for step in scenario.steps])
    session.add(drill)
    await session.flush()
    session.add_all(DrillParticipant(drill_id=drill.id, unit_id=unit_id, steps_done=0,
                                     reminders=0) for unit_id in unit_ids)
    await session.flush()
    return drill


async def participants(session: AsyncSession, drill_id: int) -> Sequence[DrillParticipant]:
    """Every unit taking part in the drill, in the order they were added."""
    query = (select(DrillParticipant).where(DrillParticipant.drill_id == drill_id)
             .order_by(DrillParticipant.id))
    return (await session.execute(query)).scalars().all()


async def participant(session: AsyncSession, participant_id: int
                      ) -> tuple[DrillParticipant, Drill, DrillScenario] | None:
    query = (select(DrillParticipant, Drill, DrillScenario)
             .join(Drill, Drill.id == DrillParticipant.drill_id)
             .join(DrillScenario, DrillScenario.key == Drill.scenario_key)
             .where(DrillParticipant.id == participant_id).with_for_update(of=DrillParticipant))
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1], as_run(row[1], row[2]))


def press(entry: DrillParticipant, drill: Drill, total_steps: int, action: str,
          person_id: int | None, now: datetime) -> Progress:
    """Apply one press: "a" acknowledge, "s<n>" tick step n (1-based), "d" done."""
    if drill.ended_at is not None:
        return Progress.ENDED
    if action == "a":
        if entry.acknowledged_at is not None:
            return Progress.ALREADY
        entry.acknowledged_at, entry.person_id = now, person_id
        return Progress.MOVED
    if entry.acknowledged_at is None or entry.completed_at is not None:
        return Progress.ALREADY if entry.completed_at is not None else Progress.OUT_OF_ORDER
    if action == "d":
        if entry.steps_done < total_steps:
            return Progress.OUT_OF_ORDER
        entry.completed_at = now
        return Progress.MOVED
    number = int(action[1:]) if action[1:].isdigit() else 0
    if number <= entry.steps_done:
        return Progress.ALREADY
    if number != entry.steps_done + 1 or number > total_steps:
        return Progress.OUT_OF_ORDER
    times = list(entry.step_seconds or [])
    if len(times) == entry.steps_done:  # not for steps ticked before times were kept
        entry.step_seconds = [*times, (now - drill.started_at).total_seconds()]
    entry.steps_done = number
    return Progress.MOVED


@dataclass(frozen=True)
class UnitResult:
    unit_id: int
    unit_code: str
    unit_name: str
    steps_done: int
    to_acknowledge: timedelta | None
    to_complete: timedelta | None
    reminders: int
    # How long each ticked step took: from the acknowledgement (step 1) or the step before.
    step_times: tuple[timedelta, ...] = ()
    path: str = ""
    label: str = ""  # the shortest path that tells it from the drill's other units
    # The unit's leaders while it has not completed: who to chase, and whether by phone.
    missing: list[Missing] = field(default_factory=list)


@dataclass(frozen=True)
class Results:
    drill: Drill
    scenario: DrillScenario  # as run (as_run): the steps the drill started with
    units: list[UnitResult]
    previous: Results | None = None  # the ward's drill of this scenario before this one

    @property
    def acknowledged(self) -> int:
        return sum(1 for unit in self.units if unit.to_acknowledge is not None)

    @property
    def completed(self) -> int:
        return sum(1 for unit in self.units if unit.to_complete is not None)

    @property
    def median_to_acknowledge(self) -> timedelta | None:
        return _median([u.to_acknowledge for u in self.units if u.to_acknowledge is not None])

    @property
    def median_to_complete(self) -> timedelta | None:
        return _median([u.to_complete for u in self.units if u.to_complete is not None])


def _median(values: list[timedelta]) -> timedelta | None:
    return timedelta(seconds=median(v.total_seconds() for v in values)) if values else None


async def results(session: AsyncSession, drill_id: int,
                  ward_ids: Sequence[int] | None = None, *, compare: bool = True
                  ) -> Results | None:
    """The drill's units and times, or None when there is no such drill in these wards
    (ward_ids None: any, for the command line); with compare, the scenario's previous drill
    in the same ward too."""
    query_drill = select(Drill, DrillScenario).join(
        DrillScenario, DrillScenario.key == Drill.scenario_key).where(Drill.id == drill_id)
    if ward_ids is not None:
        query_drill = query_drill.where(Drill.unit_id.in_(ward_ids))
    row = (await session.execute(query_drill)).first()
    if row is None:
        return None
    drill, scenario = row
    query = (select(DrillParticipant, Unit).join(Unit, Unit.id == DrillParticipant.unit_id)
             .where(DrillParticipant.drill_id == drill.id).order_by(Unit.path))
    found = (await session.execute(query)).all()
    leaders = await _leaders(session, [unit.id for entry, unit in found
                                       if entry.completed_at is None])
    labels = await short_paths(session, [unit.path for _, unit in found])
    units = [UnitResult(unit.id, unit.code, unit.name, entry.steps_done,
                        _since(drill.started_at, entry.acknowledged_at),
                        _since(drill.started_at, entry.completed_at), entry.reminders,
                        _step_times(drill, entry), unit.path, labels[unit.path],
                        leaders.get(unit.id, []))
             for entry, unit in found]
    before = await previous(session, drill) if compare else None
    return Results(drill, as_run(drill, scenario), units,
                   await results(session, before.id, compare=False) if before else None)


async def _leaders(session: AsyncSession, unit_ids: Sequence[int]
                   ) -> dict[int, list[Missing]]:
    """The active leaders of each unit, by name."""
    if not unit_ids:
        return {}
    query = (select(RoleAssignment.unit_id, Person)
             .join(Person, Person.id == RoleAssignment.person_id)
             .where(RoleAssignment.unit_id.in_(unit_ids), RoleAssignment.role == Role.LEADER,
                    RoleAssignment.active.is_(True), Person.active.is_(True))
             .distinct())
    rows = sorted((await session.execute(query)).all(),
                  key=lambda row: (*name_order(row[1].full_name), row[1].id))
    reachable = await connected(session, {person.id for _, person in rows})
    by_unit: dict[int, list[Missing]] = {}
    for unit_id, person in rows:
        by_unit.setdefault(unit_id, []).append(
            Missing(person.id, person.full_name, person.id in reachable, person.phone))
    return by_unit


async def to_remind(session: AsyncSession, drill: Drill, now: datetime
                    ) -> Sequence[DrillParticipant] | datetime:
    """The units not done, stamped as reminded now; or, when a nudge went out less than
    REMIND_BY_HAND_EVERY ago, the time the next one may go."""
    await session.execute(select(Drill.id).where(Drill.id == drill.id).with_for_update())
    last = (await session.execute(select(func.max(DrillParticipant.reminded_at)).where(
        DrillParticipant.drill_id == drill.id))).scalar_one_or_none()
    if last is not None and last > now - REMIND_BY_HAND_EVERY:
        return last + REMIND_BY_HAND_EVERY
    query = (select(DrillParticipant).where(DrillParticipant.drill_id == drill.id,
                                            DrillParticipant.completed_at.is_(None))
             .order_by(DrillParticipant.id))
    entries = (await session.execute(query)).scalars().all()
    for entry in entries:
        entry.reminded_at = now
    return entries


def _since(start: datetime, moment: datetime | None) -> timedelta | None:
    return None if moment is None else moment - start


async def latest(session: AsyncSession, ward_ids: Sequence[int], limit: int = 3
                 ) -> Sequence[Drill]:
    query = (select(Drill).where(Drill.unit_id.in_(ward_ids))
             .order_by(Drill.started_at.desc(), Drill.id.desc()).limit(limit))
    return (await session.execute(query)).scalars().all()


async def due_reminders(session: AsyncSession, now: datetime
                        ) -> Sequence[tuple[DrillParticipant, Drill]]:
    """Units not done whose last nudge (or the start) is REMIND_EVERY ago, up to
    MAX_REMINDERS; locked so that two processes cannot both remind."""
    query = (select(DrillParticipant, Drill).join(Drill, Drill.id == DrillParticipant.drill_id)
             .where(Drill.ended_at.is_(None), DrillParticipant.completed_at.is_(None),
                    DrillParticipant.reminders < MAX_REMINDERS,
                    Drill.started_at <= now - REMIND_EVERY)
             .with_for_update(of=DrillParticipant, skip_locked=True))
    return [(entry, drill) for entry, drill in await session.execute(query)
            if (entry.reminded_at or drill.started_at) <= now - REMIND_EVERY]


# --- per step, and against the drill before ----------------------------------------------------

def _step_times(drill: Drill, entry: DrillParticipant) -> tuple[timedelta, ...]:
    if entry.acknowledged_at is None:
        return ()
    marks = [(entry.acknowledged_at - drill.started_at).total_seconds(),
             *(float(value) for value in entry.step_seconds or ())]
    return tuple(timedelta(seconds=max(0.0, after - before))
                 for before, after in zip(marks, marks[1:], strict=False))


async def previous(session: AsyncSession, drill: Drill) -> Drill | None:
    """The ward's last drill of the same scenario started before this one."""
    query = (select(Drill).where(Drill.unit_id == drill.unit_id,
                                 Drill.scenario_key == drill.scenario_key,
                                 Drill.id != drill.id,
                                 or_(Drill.started_at < drill.started_at,
                                     and_(Drill.started_at == drill.started_at,
                                          Drill.id < drill.id)))
             .order_by(Drill.started_at.desc(), Drill.id.desc()).limit(1))
    return (await session.execute(query)).scalar_one_or_none()


@dataclass(frozen=True)
class StepFigures:
    """One step across the units that ticked it, against its expected minutes."""

    number: int
    step: dict[str, Any]  # {"vi", "en", "minutes"} as run
    times: int  # units that ticked it
    median: timedelta | None
    slowest: timedelta | None
    slowest_unit: str | None
    late: list[str]  # the units slower than expected, slowest first

    @property
    def expected(self) -> timedelta | None:
        minutes = self.step.get("minutes")
        return timedelta(minutes=minutes) if isinstance(minutes, int | float) else None


def step_figures(found: Results) -> list[StepFigures]:
    figures = []
    for index, step in enumerate(found.scenario.steps):
        timed = sorted(((unit.step_times[index], unit.unit_name) for unit in found.units
                        if len(unit.step_times) > index), reverse=True)
        expected = step.get("minutes")
        limit = timedelta(minutes=expected) if isinstance(expected, int | float) else None
        figures.append(StepFigures(
            index + 1, step, len(timed), _median([time for time, _ in timed]),
            timed[0][0] if timed else None, timed[0][1] if timed else None,
            [name for time, name in timed if limit is not None and time > limit]))
    return figures


def changes(found: Results) -> list[tuple[int, timedelta]]:
    """Per step run both times, this drill's median minus the previous drill's (negative:
    faster). Steps are matched by their place in the scenario."""
    if found.previous is None:
        return []
    before = step_figures(found.previous)
    now = step_figures(found)
    return [(this.number, this.median - that.median) for this, that in zip(now, before,
                                                                            strict=False)
            if this.median is not None and that.median is not None]
