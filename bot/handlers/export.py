"""/export: the area's records as an Excel file, for ward staff and admins."""

from __future__ import annotations

from bot.flows import export
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.turn import Turn

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command


@command("export", N_("Your area's records as an Excel file"), roles=export.ROLES, position=63)
async def export_command(turn: Turn, args: str) -> None:
    await export.start(turn)
