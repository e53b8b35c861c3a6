"""Steps any flow embeds to pick a household: a recent one, one found by search, or a new one.

    steps=(*pick_household_steps(after="category"), Step("category", ...), ...)

When the person has picked, the flow goes on at the step `after`, with
turn.data["household_id"] the picked household's id, or None when they described a new
household. Writes belong in the embedding flow's finish: `await resolve_household(turn)` there
returns the picked household, or creates the new one, scope-checked (None: refused, and the
person has been told). `household_label(turn)` names the choice in a confirm summary and
`await household_members(turn)` bounds a people count, for either kind;
`await confirm_lines(turn)` is what a confirmation shows of it (the name in full as typed, the
flags chosen, the unit path).

Branching needs only the answers (Step.next sees them read-only, not the database; the
steps' on_answer hooks record the pick), so the options carry what is needed in their
values: 'h:<id>:<label>' for a household, 'add:<unit id>' when the scope has one unit,
'add_unit' / 'add_code' when the unit must be chosen or typed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.flows.engine import BadAnswer, Branch, Option, Step
from bot.handlers.access import ANY_ROLE, WRITERS
from bot.i18n import N_, Translator
from bot.turn import Turn
from storage import households, units
from storage.households import FLAG_LABELS, MAX_CODE, MAX_MEMBERS, MAX_NAME, MIN_MEMBERS
from storage.models import HOUSEHOLD_FLAGS, Household, Unit
from wording import normalize

log = logging.getLogger(__name__)

WRITE_ROLES = WRITERS
READ_ROLES = ANY_ROLE
RECENT = 5
MATCHES = 8
UNIT_CHOICES = 12  # more units than this (a ward's or a city's admin): type the unit's code

SEARCH = "search"
ADD = "add"  # "add:<unit id>": the scope has a single unit
ADD_UNIT = "add_unit"
ADD_CODE = "add_code"
PICKED = "h"
# turn.data's short name of the picked or new household (its code), for the questions after
# the pick: "What is the situation of 12 Lê Lợi?"
SHORT = "hh_short"


# --- scope and labels -----------------------------------------------------------------------

def scope(turn: Turn, roles: frozenset[str] = WRITE_ROLES) -> list[str]:
    """The unit paths the person holds one of the roles on (each covers its subtree)."""
    return [grant.unit.path for grant in turn.grants if grant.role in roles]


def initials(name: str | None) -> str:
    """'Nguyễn Văn An' -> 'N.V.A.': enough for a leader who knows the household."""
    return "".join(f"{word[0].upper()}." for word in (name or "").split() if word[0].isalpha())


def describe(t: Translator, code: str, head_name: str | None, members: int,
             unit_name: str | None = None, *, full_name: bool = False) -> str:
    """One line naming a household in a list: code · initials · members (· unit).

    full_name: the name as typed, for the confirmation shown to the person who typed it."""
    parts = [code]
    name = normalize(head_name or "") if full_name else initials(head_name)
    if name:
        parts.append(name)
    parts.append(t.plural("{n} person", "{n} people", members))
    if unit_name:
        parts.append(unit_name)
    return " · ".join(parts)


def flag_names(t: Translator, flags: Sequence[str]) -> str:
    return ", ".join(t(FLAG_LABELS[flag]) for flag in flags) or t("none")


def label_of(t: Translator, household: Household, with_unit: bool) -> str:
    return describe(t, household.code, household.head_name, household.members,
                    household.unit.name if with_unit else None)


async def unit_path(turn: Turn, unit: Unit) -> str:
    """'Tổ dân phố 1 · Khu phố 1 · Phường Bến Thành': the unit up to its ward, nearest first;
    the province, the same for everyone, is left out."""
    chain = await units.ancestors(turn.session, unit)
    shown = [u.name for u in chain if units.LEVEL_RANK.get(u.level) != 0]
    return " · ".join(shown or [unit.name])


async def settled(turn: Turn, household: Household) -> dict[str, Any]:
    """The answers of a pick already made (a search result's button): a flow begun with
    them goes on as if the person had picked the household there."""
    label = label_of(turn.t, household, with_unit=await _several_units(turn))
    return {"household_id": household.id, "hh_label": label, SHORT: household.code}


async def _unit_count(turn: Turn) -> tuple[int, int | None]:
    """The units the person may add to (and the only one's id): asked once per turn."""
    if "unit_count" not in turn.looked_up:
        turn.looked_up["unit_count"] = await households.count_units(turn.session, scope(turn))
    count: tuple[int, int | None] = turn.looked_up["unit_count"]
    return count


async def _several_units(turn: Turn) -> bool:
    count, _ = await _unit_count(turn)
    return count > 1


def _household_option(turn: Turn, household: Household, with_unit: bool) -> Option:
    label = label_of(turn.t, household, with_unit)
    return Option(f"{PICKED}:{household.id}:{label}", label, literal=True)


async def add_option(turn: Turn) -> Option:
    """'Add a new household', its value saying how the unit will be settled."""
    count, only = await _unit_count(turn)
    label = N_("Add a new household")
    if count == 1:
        return Option(f"{ADD}:{only}", label)
    return Option(ADD_UNIT if count <= UNIT_CHOICES else ADD_CODE, label)


# --- options ---------------------------------------------------------------------------------

async def _pick_options(turn: Turn) -> Sequence[Option]:
    person_id = turn.person.id if turn.person else -1
    recent = await households.recent(turn.session, scope(turn), person_id, RECENT)
    with_unit = await _several_units(turn)
    return (*(_household_option(turn, h, with_unit) for h in recent),
            Option(SEARCH, N_("Search")), await add_option(turn))


async def _match_options(turn: Turn) -> Sequence[Option]:
    # The matches were fixed when the query was answered, so a household added meanwhile
    # cannot shift the list under a button.
    found = [await households.get(turn.session, hid, scope(turn))
             for hid in turn.data.get("hh_matches") or []]
    with_unit = await _several_units(turn)
    return (*(_household_option(turn, h, with_unit) for h in found if h is not None),
            Option(SEARCH, N_("Search again")), await add_option(turn))


async def _none_options(turn: Turn) -> Sequence[Option]:
    return (Option(SEARCH, N_("Search again")), await add_option(turn))


async def _unit_options(turn: Turn) -> Sequence[Option]:
    units = await households.units_in_scope(turn.session, scope(turn))
    names = [unit.name for unit in units]
    # Two wards each have a "Khu phố 1": the code tells them apart.
    return tuple(Option(str(unit.id), unit.name if names.count(unit.name) == 1
                        else f"{unit.name} ({unit.code})", literal=True) for unit in units)


def chosen_flags(value: Any) -> list[str]:
    """The flags ticked, in the register's order, from the flag step's answer (a list)."""
    ticked = value if isinstance(value, list) else []
    return [flag for flag in HOUSEHOLD_FLAGS if flag in ticked]


# The flag steps' options: a multi step ticks them in place, then Done.
FLAG_OPTIONS = tuple(Option(flag, FLAG_LABELS[flag]) for flag in HOUSEHOLD_FLAGS)


# --- answers recorded ------------------------------------------------------------------------

async def _run_search(turn: Turn, query: str) -> None:
    found = await households.search(turn.session, scope(turn), query, MATCHES)
    turn.data["hh_matches"] = [household.id for household in found]


async def record_pick(turn: Turn, value: Any) -> None:
    """A pick/match answer: the picked household in data['household_id'] (None: a new one),
    and a fresh start for the new household's description."""
    data = turn.data
    kind, _, rest = str(value or "").partition(":")
    data["household_id"] = None
    data.pop("hh_label", None)
    data.pop(SHORT, None)
    if kind == PICKED:
        household_id, _, label = rest.partition(":")
        data["household_id"], data["hh_label"] = int(household_id), label
        household = await households.get(turn.session, int(household_id), scope(turn))
        data[SHORT] = household.code if household is not None else label
        return
    if kind == SEARCH:
        return
    data.pop("hh_unit_id", None)
    data.pop("hh_unit_code", None)
    data.pop("hh_flags", None)
    if kind == ADD:
        data["hh_unit_id"] = int(rest)


async def _record_flags(turn: Turn, value: Any) -> None:
    """The new household described: the questions after it name it by its code."""
    turn.data[SHORT] = normalize(turn.data.get("hh_code") or "")


async def _record_unit(turn: Turn, value: Any) -> None:
    turn.data["hh_unit_id"] = int(value)


# --- validation ------------------------------------------------------------------------------


async def new_unit(turn: Turn) -> Unit | None:
    """The unit the new household goes to, as answered so far; None outside the scope."""
    if turn.data.get("hh_unit_id") is not None:
        return await households.unit_in_scope(turn.session, scope(turn),
                                              int(turn.data["hh_unit_id"]))
    code = turn.data.get("hh_unit_code")
    return await households.unit_by_code_in_scope(turn.session, scope(turn), code or "")


async def _check_unit_code(turn: Turn, code: str) -> str | None:
    unit = await households.unit_by_code_in_scope(turn.session, scope(turn), code)
    if unit is None:
        raise BadAnswer(N_("No unit with code {code} in your area. Check the code and type it "
                         "again."), code=normalize(code)[:MAX_CODE])
    return None


async def check_new_code(turn: Turn, code: str) -> str | None:
    """A household code must be new in its unit (compared without case or diacritics)."""
    unit = await new_unit(turn)
    if unit is None:
        return N_("That unit is not in your area any more; type 'back' to choose another.")
    if await households.by_code(turn.session, unit, code) is not None:
        raise BadAnswer(N_("{unit} already has a household {code}. Type another code; to "
                           "use that household, type 'cancel' and start again, then pick "
                           "it."), unit=unit.name, code=normalize(code))
    return None


# --- branching -------------------------------------------------------------------------------

def route_targets(after: str) -> tuple[str, ...]:
    """Every step a pick/match answer may lead to (a Step's goes_to)."""
    return (after, "hh_query", "hh_code", "hh_unit", "hh_unit_code")


def route(key: str, after: str) -> Branch:
    """Where a pick/match answer leads (record_pick has recorded it)."""

    def route(data: Mapping[str, Any]) -> str:
        kind = str(data.get(key) or "").partition(":")[0]
        if kind == PICKED:
            return after
        if kind == SEARCH:
            return "hh_query"
        if kind == ADD:
            return "hh_code"
        return "hh_unit" if kind == ADD_UNIT else "hh_unit_code"

    return route


def _after_query(data: Mapping[str, Any]) -> str:
    return "hh_match" if data.get("hh_matches") else "hh_none"


def new_household_steps(after: str) -> tuple[Step, ...]:
    """Describe a new household: unit (when several), code, head name, members, flags."""
    return (
        Step("hh_unit", "choice", N_("Which unit is the household in?"),
             options=_unit_options, on_answer=_record_unit, goes_to=("hh_code",)),
        Step("hh_unit_code", "text", N_("Type the code of the unit the household is in "
                                        "(e.g. 26734-KP1)."),
             max_length=MAX_CODE, validate=_check_unit_code, goes_to=("hh_code",)),
        Step("hh_code", "text", N_("The household's code: house number and street, or your "
                                   "unit's own numbering (e.g. 12 Lê Lợi)."),
             max_length=MAX_CODE, validate=check_new_code, goes_to=("hh_name",)),
        Step("hh_name", "text", N_("The head of household's name, if you want to keep it."),
             max_length=MAX_NAME, optional=True, goes_to=("hh_members",)),
        Step("hh_members", "number", N_("How many people live in the household ({min} to "
                                        "{max})?"),
             minimum=MIN_MEMBERS, maximum=MAX_MEMBERS, goes_to=("hh_flags",)),
        Step("hh_flags", "multi", N_("Tick each that applies to the household, then choose "
                                     "Done:"),
             options=FLAG_OPTIONS, on_answer=_record_flags, goes_to=(after,)),
    )


def pick_household_steps(after: str) -> tuple[Step, ...]:
    """The steps (keys 'hh_...') to pick or describe a household; the flow goes on at `after`."""
    return (
        Step("hh_pick", "choice", N_("Which household? Choose a recent one, search, or add a "
                                     "new one."),
             options=_pick_options, on_answer=record_pick, goes_to=route_targets(after),
             next=route("hh_pick", after)),
        Step("hh_query", "text", N_("Type the household's code or part of the head's name "
                                    "(e.g. 12 Le Loi, or nguyen van)."),
             max_length=MAX_CODE, on_answer=_run_search, goes_to=("hh_match", "hh_none"),
             next=_after_query),
        Step("hh_match", "choice", N_("Households matching “{hh_query}”:"),
             options=_match_options, on_answer=record_pick, goes_to=route_targets(after),
             next=route("hh_match", after)),
        Step("hh_none", "choice", N_("No household in your area matches “{hh_query}”."),
             options=_none_options, on_answer=record_pick, goes_to=route_targets(after),
             next=route("hh_none", after)),
        *new_household_steps(after),
    )


# --- for the embedding flow's summary and finish -------------------------------------------

def household_label(turn: Turn) -> str:
    """Names the picked or new household for a confirm summary (no database needed)."""
    if turn.data.get("household_id") is not None:
        return str(turn.data.get("hh_label") or "")
    label = describe(turn.t, normalize(turn.data.get("hh_code") or ""),
                     turn.data.get("hh_name"), int(turn.data.get("hh_members") or 1))
    return turn.t("{household} (new household)", household=label)


async def confirm_lines(turn: Turn) -> list[str]:
    """The household as a confirmation shows it: for a new one the head's name in full, as
    this person just typed it, and the flags chosen; for one from the register the usual
    initials; and for both the unit path, so a wrong group is seen before it is saved."""
    t = turn.t
    household_id = turn.data.get("household_id")
    if household_id is not None:
        household = await households.get(turn.session, int(household_id), scope(turn))
        if household is None:  # out of scope meanwhile: the finish refuses it
            return [t("Household: {household}", household=household_label(turn))]
        return [t("Household: {household}",
                  household=label_of(t, household, with_unit=False)),
                t("Unit: {path}", path=await unit_path(turn, household.unit))]
    label = describe(t, normalize(turn.data.get("hh_code") or ""), turn.data.get("hh_name"),
                     int(turn.data.get("hh_members") or 1), full_name=True)
    lines = [t("Household: {household}",
               household=t("{household} (new household)", household=label)),
             t("Household situation: {flags}",
               flags=flag_names(t, chosen_flags(turn.data.get("hh_flags"))))]
    unit = await new_unit(turn)
    if unit is not None:
        lines.append(t("Unit: {path}", path=await unit_path(turn, unit)))
    return lines


async def household_members(turn: Turn) -> int:
    """Members of the picked household, or of the new one as described; at least 1."""
    household_id = turn.data.get("household_id")
    if household_id is None:
        return max(MIN_MEMBERS, int(turn.data.get("hh_members") or MIN_MEMBERS))
    household = await households.get(turn.session, int(household_id), scope(turn))
    return household.members if household is not None else MIN_MEMBERS


async def resolve_household(turn: Turn) -> Household | None:
    """The picked household, or the new one created now; None when refused (person told).

    Scope is checked again here, at write time: a role may have ended mid-conversation.
    """
    household_id = turn.data.get("household_id")
    if household_id is not None:
        household = await households.get(turn.session, int(household_id), scope(turn))
        if household is None:
            _out_of_scope(turn, "pick")
        return household
    unit = await new_unit(turn)
    if unit is None:
        _out_of_scope(turn, "add")
        return None
    return await create_new(turn, unit)


async def create_new(turn: Turn, unit: Unit) -> Household:
    """Create the described household; a code added meanwhile by someone else is reused."""
    code = normalize(turn.data.get("hh_code") or "")
    existing = await households.by_code(turn.session, unit, code)
    if existing is not None:
        turn.say(turn.t("{unit} already had household {code}; that record was used.",
                        unit=unit.name, code=existing.code))
        turn.data["household_id"] = existing.id
        return existing
    household = await households.add(
        turn.session, unit, code, head_name=turn.data.get("hh_name"),
        members=int(turn.data.get("hh_members") or MIN_MEMBERS),
        flags=chosen_flags(turn.data.get("hh_flags")),
        person_id=turn.person.id if turn.person else None, now=turn.now)
    log.info("household %s added on unit %s by account %s", household.id, unit.id,
             turn.account.id)
    turn.data["household_id"] = household.id
    return household


def _out_of_scope(turn: Turn, action: str) -> None:
    log.info("household %s refused for account %s: out of scope", action, turn.account.id)
    turn.say(turn.t("That household is not in your area (or no longer), so nothing was saved."))
