"""The dashboard's directives and drills page: units × items, each cell acknowledged on time,
late or missing, and who is missing by name (the post holders to call).

Scope first, as in storage.overview: the unit is read with the reader's scope and a unit
outside it does not exist (None, the page's 404); every query after it is bounded by the ids
of that unit's subtree. What a cell counts is what the chat's status counts
(storage.directives.status: a directive's recipients, acknowledged or not; storage.drills:
a drill's units), so the page and `/directive status` cannot disagree.

On time: acknowledged before the first reminder would go (a directive's
remind_after_minutes, a drill's REMIND_EVERY), or before the item's deadline when that is
sooner, as a check-in is on time before the ward's reminder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import digest, drills
from storage.directives import connected
from storage.households import Scope
from storage.models import (
    Directive,
    DirectiveRecipient,
    Drill,
    DrillParticipant,
    DrillScenario,
    Person,
    Post,
    PostHolding,
    Role,
    RoleAssignment,
    Unit,
    UnitPost,
)
from storage.overview import unit_in_scope
from wording import name_order

ITEMS_SHOWN = 24  # the matrix's columns, newest first; the rest are counted, not drawn
TITLE_CHARS = 80

ON_TIME, LATE, MISSING = "on_time", "late", "missing"


@dataclass
class Holder:
    """Someone to call about a unit's missing acknowledgement: a directive's recipient, or a
    drill unit's leader. `phone` only when the reader may see it (None otherwise, or when
    unknown): personal data, never logged."""

    person_id: int
    name: str
    connected: bool  # a chat account that has not blocked the bot
    phone: str | None = None
    post_vi: str | None = None  # the roster's post they hold on the unit, when they hold one
    post_en: str | None = None


@dataclass
class Item:
    kind: str  # "directive" | "drill"
    item_id: int
    title_vi: str
    title_en: str
    at: datetime  # sent or started (UTC)
    ack_by: datetime  # acknowledged before this: on time
    deadline: datetime | None
    on_time: int = 0  # units
    late: int = 0
    missing: int = 0
    recipients: int = 0  # people (a directive) or units (a drill), as the chat's status
    acknowledged: int = 0


@dataclass
class Cell:
    total: int = 0  # a directive's recipients on the unit (a drill: one, the unit)
    done: int = 0
    late: int = 0  # of the done, those after ack_by
    last_ack: datetime | None = None
    missing: list[Holder] = field(default_factory=list)

    @property
    def state(self) -> str:
        return MISSING if self.done < self.total else LATE if self.late else ON_TIME


@dataclass
class Matrix:
    unit: Unit
    start: date
    end: date  # inclusive
    items: list[Item]  # the columns, newest first (at most ITEMS_SHOWN)
    hidden: int  # items of the period not drawn
    units: list[tuple[int, str]]  # the rows: every unit of the subtree, in tree order
    cells: dict[tuple[int, str, int], Cell]  # (unit id, kind, item id)

    def cell(self, unit_id: int, item: Item) -> Cell | None:
        return self.cells.get((unit_id, item.kind, item.item_id))

    def missing_names(self, item: Item) -> list[str]:
        """Who has not acknowledged this item, by name, in tree order."""
        return [h.name for unit_id, _ in self.units
                if (found := self.cell(unit_id, item)) is not None for h in found.missing]

    def missing(self) -> list[tuple[int, str, Item, Holder | None]]:
        """Who is missing, unit by unit (tree order), then item by item (newest first); a
        missing unit nobody holds a post on has one line without a person."""
        lines: list[tuple[int, str, Item, Holder | None]] = []
        for unit_id, path in self.units:
            for item in self.items:
                found = self.cell(unit_id, item)
                if found is None or found.state != MISSING:
                    continue
                lines.extend((unit_id, path, item, holder) for holder in found.missing)
                if not found.missing:
                    lines.append((unit_id, path, item, None))
        return lines


def bounds(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time(0), tz).astimezone(UTC),
            datetime.combine(end + timedelta(days=1), time(0), tz).astimezone(UTC))


def _title(words: str) -> str:
    words = " ".join(words.split())
    return words if len(words) <= TITLE_CHARS else words[:TITLE_CHARS - 1] + "…"


def _ack_by(at: datetime, after: timedelta, deadline: datetime | None) -> datetime:
    first_reminder = at + after
    return min(first_reminder, deadline) if deadline is not None else first_reminder


async def matrix(session: AsyncSession, unit_id: int, scope: Scope, start: date, end: date,
                 tz: tzinfo, *, phones: bool) -> Matrix | None:
    """The directives (asking for acknowledgement) and drills sent or started from `start` to
    `end` (local days, inclusive) that reached the unit's subtree; None when the unit is
    outside the scope. `phones`: whether the reader may see the phones of who is missing."""
    unit = await unit_in_scope(session, unit_id, scope)
    if unit is None:
        return None
    units = await digest.ward_units(session, unit)
    first, after = bounds(start, end, tz)
    items: dict[tuple[str, int], Item] = {}
    # (unit id, kind, item id) -> [(person id or None, acknowledged at)]
    entries: dict[tuple[int, str, int], list[tuple[int | None, datetime | None]]] = {}

    directive_q = (select(Directive.id, Directive.text, Directive.created_at,
                          Directive.deadline, Directive.remind_after_minutes,
                          DirectiveRecipient.unit_id, DirectiveRecipient.person_id,
                          DirectiveRecipient.acknowledged_at)
                   .join(DirectiveRecipient, DirectiveRecipient.directive_id == Directive.id)
                   .where(DirectiveRecipient.unit_id.in_(units.ids),
                          Directive.requires_ack.is_(True), Directive.created_at >= first,
                          Directive.created_at < after))
    for d_id, words, at, deadline, remind, unit_of, person_id, acked in (
            await session.execute(directive_q)).all():
        items.setdefault(("directive", d_id), Item(
            "directive", d_id, _title(words), _title(words), at,
            _ack_by(at, timedelta(minutes=remind or 0), deadline), deadline))
        entries.setdefault((unit_of, "directive", d_id), []).append((person_id, acked))

    drill_q = (select(Drill.id, DrillScenario.label_vi, DrillScenario.label_en,
                      Drill.started_at, Drill.deadline, DrillParticipant.unit_id,
                      DrillParticipant.acknowledged_at)
               .join(DrillParticipant, DrillParticipant.drill_id == Drill.id)
               .join(DrillScenario, DrillScenario.key == Drill.scenario_key)
               .where(DrillParticipant.unit_id.in_(units.ids), Drill.started_at >= first,
                      Drill.started_at < after))
    for d_id, label_vi, label_en, at, deadline, unit_of, acked in (
            await session.execute(drill_q)).all():
        items.setdefault(("drill", d_id), Item(
            "drill", d_id, label_vi, label_en, at,
            _ack_by(at, drills.REMIND_EVERY, deadline), deadline))
        entries.setdefault((unit_of, "drill", d_id), []).append((None, acked))

    ordered = sorted(items.values(), key=lambda i: (i.at, i.kind, i.item_id), reverse=True)
    shown = ordered[:ITEMS_SHOWN]
    keep = {(i.kind, i.item_id) for i in shown}
    cells: dict[tuple[int, str, int], Cell] = {}
    # Who to name: a directive's missing recipients; a missing drill unit's leaders.
    people_of: dict[tuple[int, str, int], list[int]] = {}
    drill_units: set[int] = set()
    for (unit_of, kind, item_id), found in entries.items():
        if (kind, item_id) not in keep:
            continue
        item = items[(kind, item_id)]
        cell = cells[(unit_of, kind, item_id)] = Cell()
        for who, acked in found:
            cell.total += 1
            if acked is None:
                if who is not None:
                    people_of.setdefault((unit_of, kind, item_id), []).append(who)
                else:
                    drill_units.add(unit_of)
                continue
            cell.done += 1
            cell.late += acked >= item.ack_by
            cell.last_ack = max(cell.last_ack or acked, acked)
        item.recipients += cell.total
        item.acknowledged += cell.done
        setattr(item, cell.state, getattr(item, cell.state) + 1)

    leaders = await _leaders(session, sorted(drill_units))
    named = {p for ids in people_of.values() for p in ids} | {
        p for ids in leaders.values() for p in ids}
    holders = await _holders(session, named, phones)
    posts = await _posts(session, {u for u, _, _ in people_of} | drill_units)
    for key, cell in cells.items():
        unit_of, kind, _ = key
        ids = people_of.get(key, []) if kind == "directive" else (
            leaders.get(unit_of, []) if cell.state == MISSING else [])
        for person_id in ids:
            holder = holders.get(person_id)
            if holder is None:
                continue
            post = posts.get((unit_of, person_id))
            cell.missing.append(Holder(holder.person_id, holder.name, holder.connected,
                                       holder.phone, *(post or (None, None))))
        cell.missing.sort(key=lambda h: (h.post_vi is None, *name_order(h.name), h.person_id))

    reached = {u for u, _, _ in cells}
    rows = [(u, units.names[u] or unit.name) for u in units.ids
            if u != unit.id or u in reached]
    return Matrix(unit, start, end, shown, len(ordered) - len(shown), rows, cells)


async def _leaders(session: AsyncSession, unit_ids: list[int]) -> dict[int, list[int]]:
    """The active leaders of each unit (a drill is the unit's: they answer for it)."""
    if not unit_ids:
        return {}
    query = (select(RoleAssignment.unit_id, RoleAssignment.person_id)
             .join(Person, Person.id == RoleAssignment.person_id)
             .where(RoleAssignment.unit_id.in_(unit_ids), RoleAssignment.role == Role.LEADER,
                    RoleAssignment.active.is_(True), Person.active.is_(True))
             .distinct())
    found: dict[int, list[int]] = {}
    for unit_of, person_id in (await session.execute(query)).all():
        found.setdefault(unit_of, []).append(person_id)
    return found


async def _holders(session: AsyncSession, person_ids: set[int], phones: bool
                   ) -> dict[int, Holder]:
    if not person_ids:
        return {}
    query = select(Person.id, Person.full_name, Person.phone).where(
        Person.id.in_(person_ids))
    reachable = await connected(session, person_ids)
    return {person_id: Holder(person_id, name, person_id in reachable,
                              phone if phones and phone else None)
            for person_id, name, phone in (await session.execute(query)).all()}


async def _posts(session: AsyncSession, unit_ids: set[int]
                 ) -> dict[tuple[int, int], tuple[str, str]]:
    """(unit id, person id) -> the post they hold there now (the roster's label)."""
    if not unit_ids:
        return {}
    query = (select(UnitPost.unit_id, PostHolding.person_id, Post.label_vi, Post.label_en)
             .join(PostHolding, PostHolding.unit_post_id == UnitPost.id)
             .join(Post, Post.key == UnitPost.post_key)
             .where(UnitPost.unit_id.in_(unit_ids), PostHolding.ended_at.is_(None))
             .order_by(Post.position))
    found: dict[tuple[int, int], tuple[str, str]] = {}
    for unit_of, person_id, label_vi, label_en in (await session.execute(query)).all():
        found.setdefault((unit_of, person_id), (label_vi, label_en))
    return found
