"""The unit tree: its level order, look-ups, subtree scope, and the path shown to people."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Unit
from wording import N_, normalize

# The tiers of the tree, top first (two-tier local government since July 2025: no district).
# A parent's tier is above its child's, or a ward could sit under another ward's quarter and
# that ward's staff would read it: scope follows the tree. Tiers may be skipped (a group
# right under a ward). A new kind of unit is a new entry here, in its tier.
LEVEL_TIERS: tuple[tuple[str, ...], ...] = (
    ("province",),
    ("ward", "commune", "special_zone"),
    ("quarter", "hamlet", "village"),
    ("group",),
)
# The levels as people name them (`coso units list`); the key stays in files and --json.
LEVEL_NAMES = {"province": N_("province"), "ward": N_("ward"), "commune": N_("commune"),
               "special_zone": N_("special zone"), "quarter": N_("quarter"),
               "hamlet": N_("hamlet"), "village": N_("village"), "group": N_("group")}
LEVEL_RANK = {level: rank for rank, tier in enumerate(LEVEL_TIERS) for level in tier}
LEVEL_ORDER = " > ".join("/".join(tier) for tier in LEVEL_TIERS)


class UnitTreeError(Exception):
    """A change that would break the tree; `msgid` and `values` let the caller translate it."""

    def __init__(self, msgid: str, **values: Any) -> None:
        self.msgid, self.values = msgid, values
        super().__init__(msgid.format(**values))


def may_hold(parent_level: str, child_level: str) -> bool:
    """True when a unit of `parent_level` may be the parent of one of `child_level`."""
    parent, child = LEVEL_RANK.get(parent_level), LEVEL_RANK.get(child_level)
    return parent is not None and child is not None and parent < child


LEVEL_REFUSAL = N_("{code} ({level}) cannot sit under {parent} ({parent_level}): a parent's "
                   "level must be above its child's ({order})")
MOVE_REFUSAL = N_("{code} would move from under {old} to under {new}; moving a unit and "
                  "its subtree needs --move")


async def by_code(session: AsyncSession, code: str) -> Unit | None:
    query = select(Unit).where(Unit.code == code.strip())
    return (await session.execute(query)).scalar_one_or_none()


async def upsert(session: AsyncSession, code: str, name: str, level: str,
                 parent: Unit | None, move: bool = False) -> Unit:
    """Create the unit, or update its name and level; a new parent only with `move` (its
    subtree moves with it). Raises UnitTreeError for a parent not above it in LEVEL_TIERS."""
    level = level.strip()
    if parent is not None and not may_hold(parent.level, level):
        raise UnitTreeError(LEVEL_REFUSAL, code=code.strip(), level=level, parent=parent.code,
                            parent_level=parent.level, order=LEVEL_ORDER)
    unit = await by_code(session, code)
    if unit is None:
        unit = Unit(code=code.strip(), name=normalize(name), level=level, path="")
        session.add(unit)
        await session.flush()
    elif unit.parent_id != (parent.id if parent else None) and not move:
        old = await session.get(Unit, unit.parent_id) if unit.parent_id else None
        raise UnitTreeError(MOVE_REFUSAL, code=unit.code, old=old.code if old else "-",
                            new=parent.code if parent else "-")
    else:
        await _children_fit(session, unit, level)
    unit.name, unit.level = normalize(name), level
    old_path, below = unit.path, await subtree(session, unit) if unit.path else []
    unit.parent_id = parent.id if parent else None
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    for descendant in below:
        if descendant.id != unit.id:  # the subtree moves with its root
            descendant.path = unit.path + descendant.path[len(old_path):]
    return unit


async def _children_fit(session: AsyncSession, unit: Unit, level: str) -> None:
    """A unit whose level changes must stay above each of its children."""
    children = await session.execute(select(Unit).where(Unit.parent_id == unit.id))
    for child in children.scalars():
        if not may_hold(level, child.level):
            raise UnitTreeError(LEVEL_REFUSAL, code=child.code, level=child.level,
                                parent=unit.code, parent_level=level, order=LEVEL_ORDER)


async def ancestors(session: AsyncSession, unit: Unit) -> list[Unit]:
    """The unit and everything above it, nearest first."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    rows = (await session.execute(select(Unit).where(Unit.id.in_(ids)))).scalars().all()
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in reversed(ids) if i in by_id]


async def codes_above(session: AsyncSession, unit: Unit) -> list[str]:
    """The codes of the unit and everything above it, nearest first (which bot serves it:
    Settings.bot_serving)."""
    return [above.code for above in await ancestors(session, unit)]


async def full_path(session: AsyncSession, unit: Unit) -> str:
    """'Khu phố 1, Phường Bến Thành, Thành phố Hồ Chí Minh'."""
    return ", ".join(u.name for u in await ancestors(session, unit))


def contains(outer: Unit, inner: Unit) -> bool:
    """True when inner is outer or lies in its subtree."""
    return inner.path.startswith(outer.path)


async def in_scope(session: AsyncSession, unit_id: int, roots: Sequence[Unit]) -> Unit | None:
    """The unit with this id when it lies in one of the roots' subtrees; None for a missing
    unit and for one outside them alike (an id from a person's answer is checked here)."""
    found = await session.get(Unit, unit_id)
    return found if found is not None and any(contains(r, found) for r in roots) else None


async def by_ids(session: AsyncSession, unit_ids: Iterable[int]) -> dict[int, Unit]:
    """The units with these ids, by id (ids of no unit are left out)."""
    query = select(Unit).where(Unit.id.in_(set(unit_ids)))
    return {unit.id: unit for unit in (await session.execute(query)).scalars()}


async def subtree(session: AsyncSession, unit: Unit) -> Sequence[Unit]:
    query = select(Unit).where(Unit.path.startswith(unit.path)).order_by(Unit.path)
    return (await session.execute(query)).scalars().all()


async def all_units(session: AsyncSession) -> Sequence[Unit]:
    return (await session.execute(select(Unit).order_by(Unit.path))).scalars().all()


async def count(session: AsyncSession) -> int:
    """How many units the tree holds (none: a new database)."""
    return (await session.execute(select(func.count()).select_from(Unit))).scalar_one()


SEPARATOR = " › "
PLACE_SEPARATOR = " · "  # a place written own name first: "Tổ dân phố 3 · Khu phố 1"
K = TypeVar("K")


def natural(name: str) -> list[tuple[int, int | str]]:
    """'Khu phố 11' after 'Khu phố 2': the digits compared as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part.casefold())
            for part in re.split(r"(\d+)", name) if part]


def path_ids(path: str) -> list[int]:
    """A materialised path's unit ids, top first."""
    return [int(part) for part in path.strip("/").split("/") if part]


class Tree:
    """The names of a subtree's units, to order them as a reader counts (each level's
    siblings by name, Khu phố 2 before Khu phố 11, as storage.digest does) and to write a
    unit as a place below the subtree's root."""

    def __init__(self, root: Unit, names: dict[int, str]) -> None:
        self.root, self.names = root, names

    def _below(self, unit: Unit) -> list[int]:
        return path_ids(unit.path)[len(path_ids(self.root.path)):]

    def key(self, unit: Unit) -> list[list[tuple[int, int | str]]]:
        return [natural(self.names.get(i, "")) for i in self._below(unit)]

    def place(self, unit: Unit) -> str:
        """'Tổ dân phố 3 · Khu phố 1' below the root; the root is its own name."""
        chain = [self.names.get(i, "") for i in reversed(self._below(unit))]
        return PLACE_SEPARATOR.join(chain) or unit.name


async def tree(session: AsyncSession, root: Unit) -> Tree:
    rows = await session.execute(select(Unit.id, Unit.name).where(
        Unit.path >= root.path, Unit.path < root.path + "\uffff"))
    return Tree(root, {unit_id: name for unit_id, name in rows})


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
