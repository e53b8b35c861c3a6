"""Every handler module the router serves, listed once; the router includes them all (as
aiogram's dp.include_routers(...)).

A new handler module declares HANDLERS = Handlers() and goes in this list; nothing registers
itself by being imported, and no handler module imports the router.
"""

from __future__ import annotations

from bot.handlers import (
    alerts,
    basics,
    dashboard,
    directives,
    drills,
    export,
    households,
    people,
    reports,
    schedule,
    summary,
    support,
)
from bot.handlers.commands import Handlers

INCLUDED: tuple[Handlers, ...] = (
    reports.HANDLERS,  # /report /open /checkin, the check-in's buttons
    alerts.HANDLERS,  # the urgent alert's buttons: take it, view it, call the leader
    support.HANDLERS,  # /support /eligible /deliveries /dispute /disputes
    households.HANDLERS,  # /household
    people.HANDLERS,  # /people
    summary.HANDLERS,  # /summary
    directives.HANDLERS,  # /directive, its cards' buttons
    drills.HANDLERS,  # /drill, its cards' buttons
    schedule.HANDLERS,  # /schedule
    export.HANDLERS,  # /export
    dashboard.HANDLERS,  # /web
    basics.HANDLERS,  # /start /help /lang /cancel
)
