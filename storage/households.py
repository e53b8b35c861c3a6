"""The household register: scoped look-ups, search without case or diacritics, writes.

Every read takes a scope: the materialised paths of the units the asker may see. A household
outside every path does not exist for that asker, so scope cannot be forgotten by a caller.
Household records are personal data: nothing here logs a code or a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from storage.models import HOUSEHOLD_FLAGS, Household, Report, SupportDelivery, Unit, utcnow
from wording import N_, fold, normalize

MAX_CODE = 64
MAX_NAME = 200
# The vulnerability flags as people read them (msgids), in HOUSEHOLD_FLAGS order.
FLAG_LABELS = {
    "elderly_alone": N_("Elderly person living alone"),
    "disability": N_("Person with a disability"),
    "poor": N_("Poor household"),
    "near_poor": N_("Near-poor household"),
    "young_children": N_("Young children"),
    "pregnant": N_("Pregnant woman"),
}
MIN_MEMBERS = 1
MAX_MEMBERS = 30
Scope = Sequence[str]  # unit paths ("/1/7/"); a unit's subtree is every path under it


def search_key(code: str, head_name: str | None) -> str:
    return fold(f"{code} {head_name or ''}")[:300]


def in_scope(scope: Scope) -> ColumnElement[bool]:
    """True for units inside one of the scope's subtrees; an empty scope reaches nothing."""
    if not scope:
        return false()
    return or_(*(Unit.path.startswith(path, autoescape=True) for path in scope))


def _scoped() -> Any:
    return select(Household).join(Household.unit).options(contains_eager(Household.unit))


async def get(session: AsyncSession, household_id: int, scope: Scope) -> Household | None:
    query = _scoped().where(Household.id == household_id, in_scope(scope))
    return (await session.execute(query)).scalar_one_or_none()


async def by_code(session: AsyncSession, unit: Unit, code: str) -> Household | None:
    """The unit's household with this code, compared without case or diacritics."""
    wanted = fold(code)
    query = _scoped().where(Household.unit_id == unit.id,
                            Household.search_key.startswith(wanted, autoescape=True))
    rows = (await session.execute(query)).scalars().all()
    return next((row for row in rows if fold(row.code) == wanted), None)


async def add(session: AsyncSession, unit: Unit, code: str, *, head_name: str | None = None,
              members: int = 1, flags: Iterable[str] = (), person_id: int | None = None,
              now: datetime | None = None, flush: bool = True) -> Household:
    when = now or utcnow()
    household = Household(unit_id=unit.id, unit=unit, code=normalize(code), members=members,
                          created_by_person_id=person_id, created_at=when, updated_at=when)
    household.head_name = normalize(head_name or "") or None
    for flag in HOUSEHOLD_FLAGS:
        setattr(household, flag, flag in set(flags))
    household.search_key = search_key(household.code, household.head_name)
    session.add(household)
    if flush:  # a bulk import flushes once at the end
        await session.flush()
    return household


def update(household: Household, now: datetime | None = None, **fields: Any) -> None:
    """Change code, head_name, members or flags; the search key follows."""
    allowed = {"code", "head_name", "members", *HOUSEHOLD_FLAGS}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not a household field: {sorted(unknown)}")
    if "code" in fields:
        fields["code"] = normalize(fields["code"])
    if "head_name" in fields:
        fields["head_name"] = normalize(fields["head_name"] or "") or None
    for name, value in fields.items():
        setattr(household, name, value)
    household.search_key = search_key(household.code, household.head_name)
    household.updated_at = now or utcnow()


def flags_of(household: Household) -> list[str]:
    return [flag for flag in HOUSEHOLD_FLAGS if getattr(household, flag)]


async def search(session: AsyncSession, scope: Scope, query: str, limit: int = 8
                 ) -> Sequence[Household]:
    """Households whose code or head name holds every word of the query, folded.

    'nguyen van a' finds 'Nguyễn Văn An'; '12 le loi' finds '12 Lê Lợi'. Codes that start with
    the query come first, then by unit and code.
    """
    words = fold(query).split()
    if not words:
        return []
    condition = [Household.search_key.contains(word, autoescape=True) for word in words]
    starts = Household.search_key.startswith(fold(query), autoescape=True)
    ordered = _scoped().where(in_scope(scope), *condition).order_by(
        starts.desc(), Unit.path, Household.code, Household.id).limit(limit)
    return (await session.execute(ordered)).scalars().all()


async def recent(session: AsyncSession, scope: Scope, person_id: int, limit: int = 5
                 ) -> Sequence[Household]:
    """The households this person most recently added, reported on or delivered support to;
    when that is fewer than `limit` (a newcomer has touched none), the others of the scope
    fill the list, the latest changed first: a small group's households are one tap away.

    The person's own actions come first, so their part of the list does not shift under them
    while another cadre works in the same unit (a button taps the n-th entry it showed).
    """
    touched = union_all(
        select(Household.id.label("hid"), Household.created_at.label("at"))
        .where(Household.created_by_person_id == person_id),
        select(Report.household_id.label("hid"), Report.created_at.label("at"))
        .where(Report.created_by_person_id == person_id),
        select(SupportDelivery.household_id.label("hid"), SupportDelivery.created_at.label("at"))
        .where(SupportDelivery.created_by_person_id == person_id),
    ).subquery()
    latest = (select(touched.c.hid, func.max(touched.c.at).label("at"))
              .group_by(touched.c.hid).subquery())
    query = (_scoped().join(latest, latest.c.hid == Household.id).where(in_scope(scope))
             .order_by(latest.c.at.desc(), Household.id.desc()).limit(limit))
    own = list((await session.execute(query)).scalars().all())
    if len(own) >= limit or not scope:
        return own
    others = (_scoped().where(in_scope(scope), Household.id.not_in([h.id for h in own]))
              .order_by(Household.updated_at.desc(), Household.id.desc())
              .limit(limit - len(own)))
    return [*own, *(await session.execute(others)).scalars().all()]


async def in_subtree(session: AsyncSession, unit: Unit) -> Sequence[Household]:
    """Every household of the unit's subtree, by unit then code."""
    query = _scoped().where(in_scope([unit.path])).order_by(Unit.path, Household.code,
                                                            Household.id)
    return (await session.execute(query)).scalars().all()


async def units_in_scope(session: AsyncSession, scope: Scope) -> Sequence[Unit]:
    """The units a household may be added to: every unit of the scope's subtrees."""
    query = select(Unit).where(in_scope(scope)).order_by(Unit.path)
    return (await session.execute(query)).scalars().all()


async def count_units(session: AsyncSession, scope: Scope) -> tuple[int, int | None]:
    """How many units the scope covers, and the lowest id (the unit, when there is one)."""
    query = select(func.count(Unit.id), func.min(Unit.id)).where(in_scope(scope))
    count, lowest = (await session.execute(query)).one()
    return int(count), lowest


async def unit_in_scope(session: AsyncSession, scope: Scope, unit_id: int) -> Unit | None:
    query = select(Unit).where(Unit.id == unit_id, in_scope(scope))
    return (await session.execute(query)).scalar_one_or_none()


async def unit_by_code_in_scope(session: AsyncSession, scope: Scope, code: str) -> Unit | None:
    query = select(Unit).where(func.lower(Unit.code) == normalize(code).lower(), in_scope(scope))
    return (await session.execute(query)).scalars().first()
