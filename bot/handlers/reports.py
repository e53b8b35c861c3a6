"""/report, /open and /checkin, and the daily check-in's buttons ("ck:<unit>:n|r")."""

from __future__ import annotations

from bot.flows import check_in, open_reports, report
from bot.handlers.access import LEADERS
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.turn import Turn

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command

HANDLERS.button(check_in.BUTTON, check_in.on_button)


@command("report", N_("Report a household's situation"), roles=report.ROLES, position=10)
async def report_(turn: Turn, args: str) -> None:
    await report.start(turn, args)


@command("open", N_("Open reports: update or resolve them"), roles=report.ROLES, position=11)
async def open_(turn: Turn, args: str) -> None:
    await open_reports.start(turn)


@command("checkin", N_("Answer the daily check-in"), roles=LEADERS, position=12)
async def checkin(turn: Turn, args: str) -> None:
    await check_in.start(turn)
