"""/schedule: a ward's daily times, for admins (any ward in their units) and ward staff (their
own ward); the conversation is bot/flows/schedule.py."""

from __future__ import annotations

from bot.flows import schedule as schedule_flow
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.turn import Turn

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command


@command("schedule", N_("See or change the daily check-in, reminder and digest times"),
         roles=schedule_flow.ROLES, position=70)
async def schedule_command(turn: Turn, args: str) -> None:
    await schedule_flow.start(turn)
