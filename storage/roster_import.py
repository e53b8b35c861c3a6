"""A ward's roster from the CSV file it keeps in Excel: parse, check every row, write in one go.

The same rules as the other imports (storage/csv_import.py): a file is taken whole or not at
all; the first bad row is named by its line and reason. Columns:

    unit_code,post,full_name,phone

`post` is a post's key or its label, with or without diacritics ("tổ trưởng tổ dân phố",
"Trưởng ấp", "to_truong"). One file is one ward: every unit must sit in the same ward. A
blank full_name declares the post (vacant when nobody holds it) and leaves a holder alone.
A name that is not the post's current holder hands the post over. Rows with the same name and
phone (or the same name and no phone) in one file are one person holding several posts; a
current holder of the ward with that name and phone is that person (moved to another post).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from storage import roster, units
from storage.csv_import import CsvImportError, records
from storage.models import Person, Post, Unit
from storage.schedules import WARD_LEVELS
from wording import N_, fold, normalize

COLUMNS = ("unit_code", "post", "full_name", "phone")
REQUIRED_COLUMNS = ("unit_code", "post", "full_name")
MAX_NAME = roster.MAX_NAME
MAX_ROWS = 5000


class RosterImportError(CsvImportError):
    """A row that cannot be imported; `msgid` and `values` let the caller translate it."""


@dataclass(frozen=True)
class RosterRow:
    line: int
    unit_code: str
    post: str
    full_name: str | None
    phone: str | None


@dataclass
class ImportResult:
    posts: int = 0
    people_created: int = 0
    handovers: int = 0
    ward: Unit | None = None


def read_csv(path: Path) -> list[RosterRow]:
    return parse_csv(path.read_bytes())


def parse_csv(data: bytes) -> list[RosterRow]:
    rows: list[RosterRow] = []
    for line, header, cells in records(data, REQUIRED_COLUMNS, COLUMNS, RosterImportError,
                                       known=COLUMNS):
        if len(rows) >= MAX_ROWS:
            raise RosterImportError(line, N_("a roster file has at most {limit} rows"),
                                    limit=MAX_ROWS)
        rows.append(_row(header, cells, line))
    return rows


def _row(header: list[str], record: list[str], line: int) -> RosterRow:
    if len(record) > len(header):
        raise RosterImportError(line, N_("more cells than the header has columns"))
    cells = {name: normalize(value) for name, value in zip(header, record, strict=False)}
    for column in ("unit_code", "post"):
        if not cells.get(column):
            raise RosterImportError(line, N_("{column} is empty"), column=column)
    name = cells.get("full_name") or None
    if name is not None and len(name) > MAX_NAME:
        raise RosterImportError(line, N_("full_name is longer than {limit} characters"),
                                limit=MAX_NAME)
    return RosterRow(line, cells["unit_code"], cells["post"], name,
                     _phone(cells.get("phone", ""), line))


def _phone(value: str, line: int) -> str | None:
    """Digits with an optional leading +; spaces, dots and dashes as people type them."""
    if not value:
        return None
    phone = roster.parse_phone(value)
    if phone is None:
        # The value is not echoed: it is someone's phone number (or part of it).
        raise RosterImportError(line, N_("phone must be 9 to 15 digits (a leading + is "
                                         "allowed)"))
    return phone


async def apply_rows(session: AsyncSession, rows: Sequence[RosterRow]) -> ImportResult:
    """Declare the posts, create the people, hand posts over; the caller owns the
    transaction (all or nothing). Every row is resolved before the first write."""
    resolved = await _resolve(session, rows)
    result = ImportResult(ward=resolved[0][0] if resolved else None)
    people: dict[tuple[str, str | None], Person] = {}
    if result.ward is not None:  # a holder moved to another post in the file stays one person
        for held in await roster.seats_in(session, result.ward):
            if held.holder is not None and held.holder.phone:
                people.setdefault((fold(held.holder.full_name), held.holder.phone), held.holder)
    for (_, unit, post), row in zip(resolved, rows, strict=True):
        unit_post = await roster.seat(session, unit, post, create=True)
        assert unit_post is not None
        result.posts += 1
        if row.full_name is None:
            continue
        holding = await roster.open_holding(session, unit_post)
        key = (fold(row.full_name), row.phone)
        if holding is not None and fold(holding.person.full_name) == key[0] \
                and key not in people:
            people[key] = holding.person
        person = people.get(key)
        if person is None:
            person = Person(full_name=row.full_name, phone=row.phone)
            session.add(person)
            await session.flush()
            people[key] = person
            result.people_created += 1
        elif row.phone:
            person.phone = row.phone
        handover = await roster.assign(session, unit_post, person)
        if handover.previous is not None:
            result.handovers += 1
    return result


async def _resolve(session: AsyncSession, rows: Sequence[RosterRow]
                   ) -> list[tuple[Unit, Unit, Post]]:
    """(ward, unit, post) per row; refuses unknown units and posts, a second ward, a post on
    a unit level it does not exist on, and a post named twice for one unit."""
    posts = await roster.all_posts(session)
    by_name = {name: post for post in posts for name in roster.post_names(post)}
    found: list[tuple[Unit, Unit, Post]] = []
    seen: dict[tuple[int, str], int] = {}
    ward: Unit | None = None
    for row in rows:
        unit = await units.by_code(session, row.unit_code)
        if unit is None:
            raise RosterImportError(row.line, N_("unknown unit {code}"), code=row.unit_code)
        unit_ward = await _ward_of(session, unit)
        if unit_ward is None:
            raise RosterImportError(row.line, N_("unit {code} is not in a ward"),
                                    code=row.unit_code)
        if ward is None:
            ward = unit_ward
        elif unit_ward.id != ward.id:
            raise RosterImportError(row.line, N_("unit {code} is not in {ward}: one file is "
                                                 "one ward"), code=row.unit_code, ward=ward.code)
        post = by_name.get(fold(row.post))
        if post is None:
            raise RosterImportError(row.line, N_("unknown post “{post}”; the posts are "
                                                 "{posts}"), post=row.post[:60],
                                    posts=", ".join(p.key for p in posts))
        if not roster.fits(post, unit):
            raise RosterImportError(row.line, N_("post {post} does not exist on a unit of "
                                                 "level {level}"), post=post.key,
                                    level=unit.level)
        key = (unit.id, post.key)
        if key in seen:
            raise RosterImportError(row.line, N_("post {post} of {code} already appears on "
                                                 "line {first}"), post=post.key,
                                    code=unit.code, first=seen[key])
        seen[key] = row.line
        found.append((ward, unit, post))
    return found


async def _ward_of(session: AsyncSession, unit: Unit) -> Unit | None:
    chain = await units.ancestors(session, unit)  # the unit first
    return next((u for u in chain if u.level in WARD_LEVELS), None)
