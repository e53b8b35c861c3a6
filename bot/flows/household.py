"""/household: add a household, edit one, or search the register, within the person's scope.

Leaders, ward staff and admins write in their units' subtrees; a monitor only searches.
Nothing is written before the last answer: the add and edit paths end on a confirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.flows import engine
from bot.flows import household_pick as pick
from bot.flows.engine import END, BadAnswer, Flow, Option, Step, register
from bot.i18n import N_
from bot.messages import Button
from bot.turn import Turn
from storage import households
from storage.households import MAX_CODE, MAX_MEMBERS, MAX_NAME, MIN_MEMBERS
from storage.models import HOUSEHOLD_FLAGS, Household
from wording import normalize

log = logging.getLogger(__name__)

ADD, EDIT, SEARCH = "add", "edit", "search"
LISTED = 20  # search results a monitor reads at once; more means the query should be narrower
# A search result's buttons, 'hh:<household id>:<action>' (bot/handlers/households.py).
BUTTON = "hh"
CARD, REPORT, SUPPORT, CHANGE = "o", "r", "s", "e"
ACTIONS = {REPORT: N_("Report"), SUPPORT: N_("Record support"), CHANGE: N_("Edit")}
FIELDS = {"code": "new_code", "name": "new_name", "members": "new_members",
          "flags": "new_flags"}
FIELD_NAMES = {"code": N_("code"), "name": N_("head of household"), "members": N_("members"),
               "flags": N_("situation")}


# --- the first question ----------------------------------------------------------------------

async def _action_options(turn: Turn) -> Sequence[Option]:
    search = Option(SEARCH, N_("Search the register"))
    if not pick.scope(turn):  # a monitor reads, never writes
        return (search,)
    add = await pick.add_option(turn)
    return (Option(add.value, N_("Add a household")), Option(EDIT, N_("Edit a household")),
            search)


def _after_action(data: Mapping[str, Any]) -> str:
    action = str(data.get("action") or "")
    if action == EDIT:
        return "hh_pick"
    if action == SEARCH:
        return "query"
    return pick.route("action", "field")(data)


async def _record_action(turn: Turn, value: Any) -> None:
    if value not in (EDIT, SEARCH):  # "add a household": the pick step's answer, in effect
        await pick.record_pick(turn, value)


# --- the household being edited --------------------------------------------------------------

async def _edited(turn: Turn) -> Household | None:
    household_id = turn.data.get("household_id")
    if household_id is None:
        return None
    return await households.get(turn.session, int(household_id), pick.scope(turn))


async def _check_code(turn: Turn, code: str) -> str | None:
    household = await _edited(turn)
    if household is None:
        return N_("That household is not in your area any more; type 'cancel' to stop.")
    other = await households.by_code(turn.session, household.unit, code)
    if other is not None and other.id != household.id:
        raise BadAnswer(N_("{unit} already has a household {code}. Type another code."),
                      unit=household.unit.name, code=other.code)
    return None


async def _household_flags(turn: Turn) -> Sequence[str]:
    """What the flag step starts from when editing: the household's own flags."""
    household = await _edited(turn)
    return households.flags_of(household) if household else []


def _after_field(data: Mapping[str, Any]) -> str:
    return FIELDS[str(data.get("field"))]


async def _record_field(turn: Turn, value: Any) -> None:
    turn.data.pop("new_flags", None)  # a fresh flag list starts from the household's own


# --- summaries --------------------------------------------------------------------------------

async def _add_summary(turn: Turn) -> str:
    # confirm_lines names it a new household, with the name as typed and its unit path.
    return "\n".join(await pick.confirm_lines(turn))


async def _edit_summary(turn: Turn) -> str:
    household = await _edited(turn)
    if household is None:
        return turn.t("That household is not in your area any more.")
    field = str(turn.data.get("field"))
    old, new = _shown(turn, household, field)
    return "\n".join((
        turn.t("Household: {household}",
               household=pick.label_of(turn.t, household, with_unit=False)),
        turn.t("Unit: {path}", path=await pick.unit_path(turn, household.unit)),
        turn.t("Change {field}: {old} → {new}", field=turn.t(FIELD_NAMES[field]), old=old,
               new=new)))


def _shown(turn: Turn, household: Household, field: str) -> tuple[str, str]:
    """The field's value before and after, as the person reads them."""
    answer = turn.data.get(FIELDS[field])
    if field == "code":
        return household.code, normalize(str(answer))
    if field == "name":
        none = turn.t("(none)")
        return household.head_name or none, normalize(answer or "") or none
    if field == "members":
        return turn.t.number(household.members), turn.t.number(int(answer or 0))
    return (pick.flag_names(turn.t, households.flags_of(household)),
            pick.flag_names(turn.t, pick.chosen_flags(answer)))


# --- finish -----------------------------------------------------------------------------------

async def _finish(turn: Turn) -> None:
    if turn.data.get("action") == SEARCH:
        await _show_matches(turn)
    elif turn.data.get("household_id") is None:
        await _add(turn)
    else:
        await _edit(turn)


async def _add(turn: Turn) -> None:
    household = await pick.resolve_household(turn)
    if household is not None:
        turn.say(turn.t("Saved: {household}, in {unit}.",
                        household=pick.label_of(turn.t, household, with_unit=False),
                        unit=household.unit.name))


async def _edit(turn: Turn) -> None:
    household = await pick.resolve_household(turn)
    if household is None:
        return
    field = str(turn.data.get("field"))
    answer = turn.data.get(FIELDS[field])
    if field == "flags":
        chosen = pick.chosen_flags(answer)
        households.update(household, now=turn.now,
                          **{flag: flag in chosen for flag in HOUSEHOLD_FLAGS})
    else:
        name = {"code": "code", "name": "head_name", "members": "members"}[field]
        households.update(household, now=turn.now, **{name: answer})
    log.info("household %s edited (%s) by account %s", household.id, field, turn.account.id)
    turn.say(turn.t("Saved: {household}.",
                    household=pick.label_of(turn.t, household, with_unit=False)))


async def _show_matches(turn: Turn) -> None:
    query = str(turn.data.get("query") or "")
    if not pick.scope(turn):  # a monitor reads the register, with nothing to do next
        await _list_matches(turn, query)
        return
    found = await households.search(turn.session, pick.scope(turn), query, pick.MATCHES + 1)
    if not found:
        turn.say(turn.t("No household in your area matches “{query}”.", query=query))
    elif len(found) == 1:
        heading = turn.t("Households matching “{query}”:", query=query)
        text, buttons = await card(turn, found[0])
        turn.say(f"{heading}\n{text}", buttons)
    else:
        await _choose_match(turn, query, found)


async def _choose_match(turn: Turn, query: str, found: Sequence[Household]) -> None:
    """Several found: each a button that opens its card (flags, unit, what to do next)."""
    with_unit = len(await households.units_in_scope(turn.session, pick.scope(turn))) > 1
    lines = [turn.t("Households matching “{query}”:", query=query),
             turn.t("Choose one to report on it, record support or edit it.")]
    if len(found) > pick.MATCHES:
        lines.append(turn.t("…and more: type more of the code or name to narrow the search."))
    turn.say("\n".join(lines), tuple(
        Button(pick.label_of(turn.t, household, with_unit), f"{BUTTON}:{household.id}:{CARD}")
        for household in found[:pick.MATCHES]))


async def card(turn: Turn, household: Household) -> tuple[str, tuple[Button, ...]]:
    """A found household and the three things to do with it (payloads 'hh:<id>:r|s|e')."""
    flags = households.flags_of(household)
    lines = [pick.label_of(turn.t, household, with_unit=False),
             turn.t("Unit: {path}", path=await pick.unit_path(turn, household.unit))]
    if flags:
        lines.append(turn.t("Household situation: {flags}",
                            flags=pick.flag_names(turn.t, flags)))
    lines.append(turn.t("What would you like to do?"))
    return "\n".join(lines), tuple(
        Button(turn.t(label), f"{BUTTON}:{household.id}:{action}")
        for action, label in ACTIONS.items())


async def _list_matches(turn: Turn, query: str) -> None:
    scope = pick.scope(turn, pick.READ_ROLES)
    found = await households.search(turn.session, scope, query, LISTED + 1)
    if not found:
        turn.say(turn.t("No household in your area matches “{query}”.", query=query))
        return
    several = len(await households.units_in_scope(turn.session, scope)) > 1
    lines = [turn.t("Households matching “{query}”:", query=query)]
    for household in found[:LISTED]:
        flags = households.flags_of(household)
        line = "• " + pick.label_of(turn.t, household, with_unit=several)
        lines.append(f"{line} — {pick.flag_names(turn.t, flags)}" if flags else line)
    if len(found) > LISTED:
        lines.append(turn.t("…and more: type more of the code or name to narrow the search."))
    turn.say("\n".join(lines))


async def begin_edit(turn: Turn, household: Household) -> None:
    """The edit path with the household already picked (a search result's Edit)."""
    await engine.begin(turn, FLOW, at="field",
                       data={"action": EDIT, **await pick.settled(turn, household)})


# --- the flow ---------------------------------------------------------------------------------

def _steps() -> tuple[Step, ...]:
    picking = tuple(
        # A household described here is created at the confirmation, not edited.
        replace(step, goes_to=("add_confirm",)) if step.key == "hh_flags" else step
        for step in pick.pick_household_steps(after="field"))
    return (
        Step("action", "choice", N_("Household register: what would you like to do?"),
             options=_action_options, on_answer=_record_action,
             goes_to=("hh_pick", "query", *pick.route_targets("field")), next=_after_action),
        *picking,
        Step("add_confirm", "confirm", N_("Add this household?"), summary=_add_summary,
             goes_to=(END,)),
        Step("field", "choice", N_("What do you want to change for {hh_label}?"),
             options=tuple(Option(key, label) for key, label in (
                 ("code", N_("Code")), ("name", N_("Head of household's name")),
                 ("members", N_("Number of members")), ("flags", N_("Situation flags")))),
             on_answer=_record_field, goes_to=tuple(FIELDS.values()), next=_after_field),
        Step("new_code", "text", N_("Type the new code."), max_length=MAX_CODE,
             validate=_check_code, goes_to=("edit_confirm",)),
        Step("new_name", "text", N_("Type the head of household's name, or 'skip' to remove "
                                    "it."),
             max_length=MAX_NAME, optional=True, goes_to=("edit_confirm",)),
        Step("new_members", "number", N_("How many people live in the household now ({min} "
                                         "to {max})?"),
             minimum=MIN_MEMBERS, maximum=MAX_MEMBERS, goes_to=("edit_confirm",)),
        Step("new_flags", "multi", N_("Tick each that applies to the household, then choose "
                                      "Done:"),
             options=pick.FLAG_OPTIONS, ticked=_household_flags, goes_to=("edit_confirm",)),
        Step("edit_confirm", "confirm", N_("Save this change?"), summary=_edit_summary,
             goes_to=(END,)),
        Step("query", "text", N_("Type a household's code or part of the head's name "
                                 "(e.g. 12 Le Loi, or nguyen van)."),
             max_length=MAX_CODE, goes_to=(END,)),
    )


FLOW = register(Flow(name="household", title=N_("the household register"), steps=_steps(),
                     finish=_finish))
