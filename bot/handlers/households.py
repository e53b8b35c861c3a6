"""/household: the household register in chat (add, edit, search), for the roles that keep it."""

from __future__ import annotations

from bot.flows import engine, household
from bot.flows.household_pick import READ_ROLES, WRITE_ROLES, scope
from bot.handlers.access import refuse
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.turn import Turn
from wording import fold

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command

# "/household add" (or "them" in Vietnamese) starts at that choice.
SHORTCUTS = {"add": 1, "them": 1, "edit": 2, "sua": 2, "search": 3, "tim": 3, "find": 3}


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
