"""/household: the household register in chat (add, edit, search), for the roles that keep it,
and the buttons under a search result ("hh:<household id>:o|r|s|e")."""

from __future__ import annotations

import logging

from bot.flows import engine, household, report, support
from bot.flows.household_pick import READ_ROLES, WRITE_ROLES, scope
from bot.handlers.access import refuse
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.messages import id_and_action
from bot.turn import Turn
from storage import households
from wording import fold

log = logging.getLogger(__name__)

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command

# "/household add" (or "them" in Vietnamese) starts at that choice.
SHORTCUTS = {"add": 1, "them": 1, "edit": 2, "sua": 2, "search": 3, "tim": 3, "find": 3}
ACTIONS = (household.CARD, *household.ACTIONS)


@command("household", N_("Add, edit or find a household in the register"),
         roles=READ_ROLES, position=20)
async def household_command(turn: Turn, args: str) -> None:
    shortcut = SHORTCUTS.get(fold(args).split(" ")[0] if args else "")
    if not scope(turn, WRITE_ROLES):
        if shortcut in (1, 2):  # a monitor asked to change the register
            refuse(turn, "/household " + ("add" if shortcut == 1 else "edit"), WRITE_ROLES)
            return
        await engine.begin(turn, household.FLOW, first_answer="search")
        return
    await engine.begin(turn, household.FLOW,
                       first_answer=str(shortcut) if shortcut is not None else None)


async def on_button(turn: Turn, payload: str) -> None:
    """A search result's button. The payload is the person's to forge: the household is
    looked up again within their own write scope, so one outside it is refused, not named."""
    parsed = id_and_action(payload, ACTIONS)
    if parsed is None:
        turn.say(turn.t("This question is no longer open."))
        return
    household_id, action = parsed
    if not scope(turn, WRITE_ROLES):
        refuse(turn, "household button", WRITE_ROLES)
        return
    found = await households.get(turn.session, household_id, scope(turn, WRITE_ROLES))
    if found is None:
        log.info("household button refused for account %s: out of scope", turn.account.id)
        turn.say(turn.t("That household is not in your area (or no longer); nothing was "
                        "opened."))
        return
    conversation = await engine.current(turn)
    if conversation is not None:  # the tap says what they want now
        await engine.abandon(turn, conversation)
    if action == household.CARD:
        text, buttons = await household.card(turn, found)
        turn.say(text, buttons)
    elif action == household.REPORT:
        await report.begin_for(turn, found)
    elif action == household.SUPPORT:
        await support.start(turn, found)
    else:
        await household.begin_edit(turn, found)


HANDLERS.button(household.BUTTON, on_button)
