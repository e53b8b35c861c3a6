"""/summary: the digest's figures now, for ward staff and admins."""

from __future__ import annotations

from bot.flows import summary
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.turn import Turn

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command


@command("summary", N_("Today's, this week's or this month's figures for your ward"),
         roles=summary.ROLES, position=60)
async def summary_command(turn: Turn, args: str) -> None:
    await summary.start(turn, args)
