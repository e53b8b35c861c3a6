"""The unit tree: look-ups, subtree scope, and the path shown to people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.text import normalize
from storage.models import Unit


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


SEPARATOR = " › "
K = TypeVar("K")


async def short_paths(session: AsyncSession, paths: Sequence[str]) -> dict[str, str]:
    """For each unit (by its materialised path) the shortest tail of its ancestry that no
    other unit of the set shares: "Tổ dân phố 1" where the name is unique among them,
    "Khu phố 1 › Tổ dân phố 1" where two quarters each have one. One query for the set."""
    chains = {path: [int(part) for part in reversed(path.strip("/").split("/")) if part]
              for path in set(paths)}
    ids = {unit_id for chain in chains.values() for unit_id in chain}
    rows = await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids)))
    names = {unit_id: name for unit_id, name in rows}
    return unique_tails({path: [names[i] for i in chain if i in names]
                         for path, chain in chains.items()})


def unique_tails(chains: dict[K, list[str]]) -> dict[K, str]:
    """Each key's names (the unit's own first, then its ancestors') cut to the fewest that
    tell it from every other key's, written outermost first: "Khu phố 1 › Tổ dân phố 1"."""
    depth = dict.fromkeys(chains, 1)
    while True:
        seen: dict[tuple[str, ...], list[K]] = {}
        for key, chain in chains.items():
            seen.setdefault(tuple(chain[:depth[key]]), []).append(key)
        deeper = [key for group in seen.values() if len(group) > 1 for key in group
                  if depth[key] < len(chains[key])]
        if not deeper:
            break
        for key in deeper:
            depth[key] += 1
    return {key: SEPARATOR.join(reversed(chain[:depth[key]])) for key, chain in chains.items()}
