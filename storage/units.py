"""The unit tree: look-ups, subtree scope, and the path shown to people."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Unit
from wording import normalize


async def by_code(session: AsyncSession, code: str) -> Unit | None:
    query = select(Unit).where(Unit.code == code.strip())
    return (await session.execute(query)).scalar_one_or_none()


async def upsert(session: AsyncSession, code: str, name: str, level: str,
                 parent: Unit | None) -> Unit:
    """Create the unit, or update its name, level and parent (a re-import)."""
    unit = await by_code(session, code)
    if unit is None:
        unit = Unit(code=code.strip(), name=normalize(name), level=level.strip(), path="")
        session.add(unit)
        await session.flush()
    else:
        unit.name, unit.level = normalize(name), level.strip()
    unit.parent_id = parent.id if parent else None
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    return unit


async def ancestors(session: AsyncSession, unit: Unit) -> list[Unit]:
    """The unit and everything above it, nearest first."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    rows = (await session.execute(select(Unit).where(Unit.id.in_(ids)))).scalars().all()
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in reversed(ids) if i in by_id]


async def full_path(session: AsyncSession, unit: Unit) -> str:
    """'Khu phố 1, Phường Bến Thành, Thành phố Hồ Chí Minh'."""
    return ", ".join(u.name for u in await ancestors(session, unit))


def contains(outer: Unit, inner: Unit) -> bool:
    """True when inner is outer or lies in its subtree."""
    return inner.path.startswith(outer.path)


async def subtree(session: AsyncSession, unit: Unit) -> Sequence[Unit]:
    query = select(Unit).where(Unit.path.startswith(unit.path)).order_by(Unit.path)
    return (await session.execute(query)).scalars().all()


async def all_units(session: AsyncSession) -> Sequence[Unit]:
    return (await session.execute(select(Unit).order_by(Unit.path))).scalars().all()


async def count(session: AsyncSession) -> int:
    """How many units the tree holds (none: a new database)."""
    return (await session.execute(select(func.count()).select_from(Unit))).scalar_one()
