"""The city's own catalogues, kept as rows and exchanged as one YAML file per kind.

A kind (report situations, support policies, drill scenarios, the posts of the roster)
is a table and the fields its YAML entries carry. Reading a file keeps each value's line, so
a refusal names file, line and field; an import is planned whole (added, changed, retired)
and checked before anything is written, and a refused plan writes nothing. An entry is never
deleted: left out of the file it is retired (inactive), keeping its label for the reports,
deliveries and drills that name it. A ward may keep its own situations and scenarios beside
the city's (`unit_id`); the city's are those without one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Base,
    DrillScenario,
    Post,
    PostHolding,
    ReportCategory,
    Role,
    SupportPolicy,
    Unit,
    UnitPost,
)
from storage.units import LEVEL_RANK
from wording import N_, fold, normalize

MAX_BYTES = 1_000_000  # a catalogue is a page or two; anything bigger is not one
MEASURES = ("vnd", "bag", "kit", "other")
# Words the one-message report (bot/flows/quick_report.py) reads as urgency, people or the
# start of the note, folded: no situation may take one as an alias.
RESERVED = frozenset({
    "khan", "gap", "khan cap", "cap cuu", "cap bach", "urgent", "binh thuong", "khong khan",
    "normal", "not urgent", "ghi chu", "ghichu", "note", "notes", "gc", "nguoi", "ng",
    "people", "person", "persons", "nhan", "khau", "nhan khau"})
ALIAS_LIMIT = 40
_KEY = re.compile(r"^[a-z0-9_]{1,32}$")


# --- errors ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One refusal: where (line, field such as `f0.label_vi`) and why (a msgid + values)."""

    line: int
    where: str
    msgid: str
    values: dict[str, Any] = field(default_factory=dict)


class CatalogError(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.line}: {p.where}: {p.msgid}" for p in problems))


class _Bad(Exception):
    """A value a field reader refuses."""

    def __init__(self, msgid: str, **values: Any) -> None:
        super().__init__(msgid)
        self.msgid, self.values = msgid, values


# --- YAML with lines -------------------------------------------------------------------------

class Located(dict[str, Any]):
    """A YAML mapping that remembers its own line and each value's."""

    line = 1

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}

    def line_of(self, name: str) -> int:
        return self.lines.get(name, self.line)


class LocatedList(list[Any]):
    line = 1

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    result = Located()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise CatalogError([Problem(line, str(key)[:40], N_("a field name must be text"))])
        if key in result:
            raise CatalogError([Problem(line, key, N_("this field is given twice"))])
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList()
    result.line = node.start_mark.line + 1
    for item in node.value:
        result.append(loader.construct_object(item, deep=True))
        result.lines.append(item.start_mark.line + 1)
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _sequence)


def _load(data: bytes) -> Any:
    if len(data) > MAX_BYTES:
        raise CatalogError([Problem(1, "-", N_("the file is larger than {size} bytes"),
                                    {"size": MAX_BYTES})])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogError([Problem(1, "-", N_("the file is not UTF-8 text"))]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise CatalogError([Problem(line, "-", N_("not valid YAML: {error}"),
                                    {"error": exc.problem or str(exc)})]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([Problem(1, "-", N_("not valid YAML: {error}"),
                                    {"error": str(exc)})]) from None
    except RecursionError:  # PyYAML recurses per nesting level: "[[[[…" thousands deep
        raise CatalogError([Problem(1, "-", N_("nested too deeply to be a catalogue"))]) from None


# --- field readers ---------------------------------------------------------------------------

Reader = Callable[[Any], Any]


def text(limit: int, *, required: bool = True) -> Reader:
    def read(value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not normalize(value)):
            if required:
                raise _Bad(N_("missing; it must be given"))
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _Bad(N_("must be text"))
        cleaned = normalize(str(value))
        if len(cleaned) > limit:
            raise _Bad(N_("longer than {limit} characters"), limit=limit)
        return cleaned
    return read


def _key(value: Any) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise _Bad(N_("a key is 1 to 32 lower-case letters, digits or _ (such as short_food)"))
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(N_("must be true or false"))
    return value


def _texts(limit: int) -> Reader:
    one = text(limit)

    def read(value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _Bad(N_("must be a list, such as [F0, ca benh]"))
        return [one(item) for item in value]
    return read


def _aliases(value: Any) -> list[str]:
    """Short names typed in chat: each with a letter, not a bare number (a household's or
    the people count), not a word the one-message report reads itself, not twice."""
    aliases = _texts(ALIAS_LIMIT)(value)
    seen: set[str] = set()
    for alias in aliases:
        folded = fold(alias)
        if not any(ch.isalpha() for ch in folded):
            raise _Bad(N_("the alias {alias} has no letter; a number is read as a household "
                          "or a count of people"), alias=alias)
        if folded in RESERVED:
            raise _Bad(N_("the alias {alias} is a word the one-message report reads itself "
                          "(urgency, people, note)"), alias=alias)
        if folded in seen:
            raise _Bad(N_("the alias {alias} is given twice"), alias=alias)
        seen.add(folded)
    return aliases


# What holding a post may give: leading a unit, overseeing it, or staffing a ward. Never
# admin: a spreadsheet row must not hand out the whole subtree's administration.
POST_ROLES = (Role.LEADER.value, Role.MONITOR.value, Role.WARD_STAFF.value)


def _role(value: Any) -> str:
    if value not in POST_ROLES:
        raise _Bad(N_("unknown role; a post gives one of {roles}"), roles=", ".join(POST_ROLES))
    return str(value)


def _levels(value: Any) -> list[str]:
    levels = _texts(32)(value)
    for level in levels:
        if level not in LEVEL_RANK:
            raise _Bad(N_("unknown unit level {level}; the levels are {levels}"), level=level,
                       levels=", ".join(LEVEL_RANK))
    return levels


def _measure(value: Any) -> str:
    if value not in MEASURES:
        raise _Bad(N_("unknown measure; it is one of {measures}"), measures=", ".join(MEASURES))
    return str(value)


def _positive(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _Bad(N_("must be a whole number above 0"))
    return value


def _amount(value: Any) -> int | None:
    return None if value is None else _positive(value)


def _day(value: Any) -> date | None:
    if value is None:
        return None
    if not isinstance(value, date):
        raise _Bad(N_("must be a date written YYYY-MM-DD"))
    return value


def _steps(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, LocatedList) or not value:
        raise _Bad(N_("a scenario needs at least one step"))
    steps = []
    for number, (item, line) in enumerate(zip(value, value.lines, strict=True), start=1):
        if not isinstance(item, Located):
            raise _Step(line, number, "-", N_("a step has vi, en and minutes"))
        unknown = sorted(set(item) - {"vi", "en", "minutes"})
        if unknown:
            raise _Step(item.line_of(unknown[0]), number, unknown[0],
                        N_("unknown field; a step has vi, en and minutes"))
        parsed: dict[str, Any] = {}
        for name, read in (("vi", text(300)), ("en", text(300, required=False)),
                           ("minutes", _positive)):
            try:
                parsed[name] = read(item.get(name))
            except _Bad as bad:
                raise _Step(item.line_of(name), number, name, bad.msgid, **bad.values) from None
        parsed["en"] = parsed["en"] or parsed["vi"]
        steps.append(parsed)
    return steps


class _Step(_Bad):
    """A bad field inside a step: it knows its own line."""

    def __init__(self, line: int, number: int, name: str, msgid: str, **values: Any) -> None:
        super().__init__(msgid, **values)
        self.line, self.where = line, f"steps[{number}].{name}"


# --- the kinds -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    name: str
    read: Reader
    default: Any = None  # given when the field is left out (None: required or empty)


COMMON = (Field("key", _key), Field("label_vi", text(100)), Field("label_en", text(100)))


@dataclass(frozen=True)
class Kind:
    """One catalogue: its table, its YAML fields, and whether a ward may keep its own."""

    name: str
    model: type[Base]
    fields: tuple[Field, ...]
    per_ward: bool
    # Fields that do not count as a change worth showing (the order in the file).
    quiet: tuple[str, ...] = ("position",)

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


SITUATIONS = Kind("situations", ReportCategory, (
    *COMMON, Field("aliases", _aliases, []), Field("urgent", _flag, False),
    Field("active", _flag, True)), per_ward=True)
POLICIES = Kind("policies", SupportPolicy, (
    Field("key", _key), Field("label_vi", text(150)), Field("label_en", text(150)),
    Field("measure", _measure), Field("standard_amount", _amount),
    Field("legal_basis", text(300, required=False)), Field("valid_from", _day),
    Field("valid_to", _day), Field("active", _flag, True)), per_ward=False)
SCENARIOS = Kind("scenarios", DrillScenario, (
    Field("key", _key), Field("label_vi", text(200)), Field("label_en", text(200)),
    Field("steps", _steps), Field("levels", _texts(32), []), Field("active", _flag, True)),
    per_ward=True)
POSTS = Kind("posts", Post, (
    *COMMON, Field("role", _role), Field("levels", _levels, []), Field("active", _flag, True)),
    per_ward=False)
KINDS = {kind.name: kind for kind in (SITUATIONS, POLICIES, SCENARIOS, POSTS)}


@dataclass
class Entry:
    """One entry read from a file: its values by field, and where it was."""

    line: int
    values: dict[str, Any]
    lines: dict[str, int]

    @property
    def key(self) -> str:
        return str(self.values["key"])


def parse(kind: Kind, data: bytes) -> list[Entry]:
    """The file's entries, every field read; CatalogError with each problem found."""
    document = _load(data)
    if not isinstance(document, Located):
        raise CatalogError([Problem(1, "-", N_("the file must start with kind: and entries:"))])
    problems = []
    unknown = sorted(set(document) - {"kind", "entries"})
    for name in unknown:
        problems.append(Problem(document.line_of(name), name,
                                N_("unknown field; the file has kind: and entries:")))
    if document.get("kind") != kind.name:
        problems.append(Problem(document.line_of("kind"), "kind",
                                N_("this file is not a {kind} catalogue"), {"kind": kind.name}))
    items = document.get("entries")
    if not isinstance(items, LocatedList):
        problems.append(Problem(document.line_of("entries"), "entries",
                                N_("entries must be a list of entries")))
        raise CatalogError(problems)
    entries = []
    for index, (item, line) in enumerate(zip(items, items.lines, strict=True), start=1):
        entry = _entry(kind, index, item, line, problems)
        if entry is not None:
            entries.append(entry)
    problems.extend(_duplicate_keys(entries))
    if problems:
        raise CatalogError(problems)
    return entries


def _entry(kind: Kind, index: int, item: Any, line: int,
           problems: list[Problem]) -> Entry | None:
    if not isinstance(item, Located):
        problems.append(Problem(line, f"entries[{index}]", N_("an entry is a set of fields")))
        return None
    key = item.get("key")
    where = key if isinstance(key, str) and _KEY.match(key) else f"entries[{index}]"
    for name in sorted(set(item) - set(kind.field_names())):
        problems.append(Problem(item.line_of(name), f"{where}.{name}",
                                N_("unknown field; the fields are {fields}"),
                                {"fields": ", ".join(kind.field_names())}))
    values: dict[str, Any] = {}
    for spec in kind.fields:
        raw = item.get(spec.name, spec.default)
        try:
            values[spec.name] = spec.read(raw)
        except _Step as bad:
            problems.append(Problem(bad.line, f"{where}.{bad.where}", bad.msgid, bad.values))
        except _Bad as bad:
            problems.append(Problem(item.line_of(spec.name), f"{where}.{spec.name}", bad.msgid,
                                    bad.values))
    if (isinstance(values.get("valid_from"), date) and isinstance(values.get("valid_to"), date)
            and values["valid_to"] < values["valid_from"]):
        problems.append(Problem(item.line_of("valid_to"), f"{where}.valid_to",
                                N_("ends before it starts (valid_from)")))
    if len(values) < len(kind.fields):
        return None
    values["position"] = index
    return Entry(line, values, dict(item.lines))


def _duplicate_keys(entries: Sequence[Entry]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for entry in entries:
        if entry.key in seen:
            problems.append(Problem(entry.lines.get("key", entry.line), f"{entry.key}.key",
                                    N_("this key is given twice")))
        seen.add(entry.key)
    return problems


# --- rows ------------------------------------------------------------------------------------

def visible(column: Any, paths: Sequence[str]) -> ColumnElement[bool]:
    """The city's entries, and those of any unit on the way to one of `paths` (a person's
    ward and the units above it): what that person is offered."""
    ids = {int(part) for path in paths for part in path.strip("/").split("/") if part}
    return or_(column.is_(None), column.in_(ids)) if ids else column.is_(None)


async def rows(session: AsyncSession, kind: Kind, ward: Unit | None = None,
               *, every_scope: bool = False) -> list[Any]:
    """The kind's rows of one scope (the city's, or one ward's), retired ones too, in order."""
    model: Any = kind.model
    query = select(model).order_by(model.position, model.key)
    if not every_scope and hasattr(model, "unit_id"):
        query = query.where(model.unit_id.is_(None) if ward is None
                            else model.unit_id == ward.id)
    return list((await session.execute(query)).scalars().all())


def to_yaml(kind: Kind, row: Any) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in kind.field_names()}
    for name in ("aliases", "levels"):
        if name in values:
            values[name] = list(values[name] or [])
    if "steps" in values:
        values["steps"] = [{"vi": s.get("vi"), "en": s.get("en"), "minutes": s.get("minutes")}
                           for s in values["steps"]]
    return values


HEADERS = {
    "situations": "Report situations: /report offers the active ones in this order.\n"
                  "aliases are typed in chat (case and accents do not matter).",
    "policies": "Support policies: measure is vnd, bag, kit or other;\n"
                "valid_from / valid_to are dates (YYYY-MM-DD) or null.",
    "scenarios": "Drill scenarios: steps in order, each with vi, en and the expected minutes;\n"
                 "levels are the unit levels that take part ([]: every level).",
    "posts": "Posts of a unit, in the order the roster lists them: role is what holding one\n"
             "gives (leader, monitor or ward_staff); levels the units that have it ([]: all).\n"
             "A label may name two posts in one, \"Trưởng khu phố / Trưởng ấp\".",
}


def dump(kind: Kind, found: Sequence[Any]) -> str:
    """The file an admin edits: a comment, the kind, and every entry (retired ones too,
    `active: false`; leaving an entry out of the file retires it)."""
    document = {"kind": kind.name, "entries": [to_yaml(kind, row) for row in found]}
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
    header = "".join(f"# {line}\n" for line in HEADERS[kind.name].splitlines())
    return f"{header}# coso catalog import {kind.name} FILE\n{body}"


# --- planning and applying an import ----------------------------------------------------------

@dataclass
class Plan:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    unchanged: int = 0
    # What to write, once the plan is accepted: (row or None for a new one, its values).
    writes: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)


async def plan(session: AsyncSession, kind: Kind, entries: Sequence[Entry],
               ward: Unit | None, today: date) -> Plan:
    """What importing `entries` into the scope (the city's, or `ward`'s) would do; raises
    CatalogError when the result would be inconsistent. Writes nothing."""
    problems: list[Problem] = []
    if ward is not None and not kind.per_ward:
        raise CatalogError([Problem(1, "-", N_("a ward cannot keep its own {kind}"),
                                    {"kind": kind.name})])
    every = {row.key: row for row in await rows(session, kind, every_scope=True)}
    owner = None if ward is None else ward.id
    result = Plan()
    listed = set()
    for entry in entries:
        listed.add(entry.key)
        row = every.get(entry.key)
        if row is not None and getattr(row, "unit_id", None) != owner:
            problems.append(Problem(entry.lines.get("key", entry.line), f"{entry.key}.key",
                                    N_("this key belongs to another catalogue (the city's or "
                                       "another ward's); choose another key")))
            continue
        values = dict(entry.values)
        if kind.per_ward:
            values["unit_id"] = owner
        if row is None:
            result.added.append(entry.key)
        elif _differs(kind, row, values):
            result.changed.append(entry.key)
        else:
            result.unchanged += 1
        result.writes.append((row, values))
    for row in await rows(session, kind, ward):
        if row.key not in listed and row.active:
            result.retired.append(row.key)
            result.writes.append((row, {"active": False}))
    problems.extend(_consistency(kind, result, every, entries, ward, today))
    if kind is POSTS:
        problems.extend(await _posts_in_use(session, result, entries))
    if problems:
        raise CatalogError(problems)
    return result


def _differs(kind: Kind, row: Any, values: dict[str, Any]) -> bool:
    current = to_yaml(kind, row)
    return any(current.get(name) != value for name, value in values.items()
               if name in current and name not in kind.quiet)


def _after(every: dict[str, Any], result: Plan) -> dict[str, dict[str, Any]]:
    """Every row's fields as they would be once the plan is written."""
    state = {key: {"active": row.active, "aliases": getattr(row, "aliases", None),
                   "unit_id": getattr(row, "unit_id", None),
                   "valid_from": getattr(row, "valid_from", None),
                   "valid_to": getattr(row, "valid_to", None)} for key, row in every.items()}
    for row, values in result.writes:
        key = values.get("key") or row.key
        state.setdefault(key, {}).update(values)
    return state


def _consistency(kind: Kind, result: Plan, every: dict[str, Any], entries: Sequence[Entry],
                 ward: Unit | None, today: date) -> list[Problem]:
    state = _after(every, result)
    lines = {entry.key: entry.lines for entry in entries}
    problems = []
    if kind is SITUATIONS:
        problems.extend(_duplicate_aliases(state, lines))
    if kind is POSTS:
        problems.extend(_duplicate_post_names(entries))
    offered = [key for key, values in state.items() if values.get("active")
               and values.get("unit_id") is None and _valid(values, today)]
    if ward is None and not offered:
        problems.append(Problem(1, "entries", N_("no active entry would be left to offer: a "
                                                  "flow needs at least one")))
    return problems


def _valid(values: dict[str, Any], today: date) -> bool:
    start, end = values.get("valid_from"), values.get("valid_to")
    return (start is None or start <= today) and (end is None or today <= end)


def _duplicate_aliases(state: dict[str, dict[str, Any]],
                       lines: dict[str, dict[str, int]]) -> list[Problem]:
    """An alias must choose one situation: unique over the active ones (folded), the city's
    and every ward's alike, since a ward's staff see both."""
    owners: dict[str, str] = {}
    problems = []
    for key in sorted(state, key=lambda k: (k not in lines, k)):  # the file's first
        values = state[key]
        if not values.get("active"):
            continue
        for alias in values.get("aliases") or []:
            folded = fold(alias)
            other = owners.setdefault(folded, key)
            if other != key:
                at = lines.get(key) or lines.get(other) or {}
                problems.append(Problem(at.get("aliases", 1), f"{key}.aliases",
                                        N_("the alias {alias} is also {other}'s"),
                                        {"alias": alias, "other": other}))
    return problems


def _duplicate_post_names(entries: Sequence[Entry]) -> list[Problem]:
    """A roster CSV names a post by its key, a label or half of the Vietnamese "A / B",
    folded: each name must choose one active post."""
    owners: dict[str, str] = {}
    problems = []
    for entry in entries:
        if not entry.values.get("active"):
            continue
        values = entry.values
        # The English halves may repeat ("… quarter / hamlet"): a ward's file is Vietnamese.
        names = {fold(values["key"]), fold(values["label_vi"]), fold(values["label_en"])}
        names |= {fold(part) for part in values["label_vi"].split("/") if part.strip()}
        for name in sorted(names):
            other = owners.setdefault(name, entry.key)
            if other != entry.key:
                problems.append(Problem(entry.lines.get("label_vi", entry.line),
                                        f"{entry.key}.label_vi",
                                        N_("the name {name} is also {other}'s: a roster file "
                                           "could not tell them apart"),
                                        {"name": name, "other": other}))
    return problems


async def _posts_in_use(session: AsyncSession, accepted: Plan,
                        entries: Sequence[Entry]) -> list[Problem]:
    """A post someone holds keeps its role and stays offered: their access is that role
    (storage.roster), so hand the post over or vacate it first."""
    held = set((await session.execute(
        select(UnitPost.post_key).join(PostHolding, PostHolding.unit_post_id == UnitPost.id)
        .where(PostHolding.ended_at.is_(None)).distinct())).scalars())
    lines = {entry.key: entry for entry in entries}
    problems = []
    for row, values in accepted.writes:
        if row is None or row.key not in held:
            continue
        entry = lines.get(row.key)
        line = entry.line if entry else 1
        if values.get("active") is False:
            problems.append(Problem(line, f"{row.key}.active", N_(
                "this post is held: hand it over or vacate it before retiring it")))
        elif "role" in values and values["role"] != row.role:
            problems.append(Problem(entry.lines.get("role", line) if entry else line,
                                    f"{row.key}.role", N_(
                "this post is held: its role cannot change while people hold it")))
    return problems


async def write(session: AsyncSession, kind: Kind, accepted: Plan) -> None:
    """Write an accepted plan (in the caller's transaction); a scenario whose steps change
    gets a new version, so the drills already run keep naming theirs."""
    for row, values in accepted.writes:
        if row is None:
            session.add(kind.model(**values, **({"version": 1} if kind is SCENARIOS else {})))
            continue
        if kind is SCENARIOS and "steps" in values and values["steps"] != row.steps:
            row.version = (row.version or 1) + 1
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
