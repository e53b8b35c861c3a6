"""The ward dashboard: read-only pages on the bot's own web server, logged into from chat
(/web), for ward staff, admins and monitors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings import Settings
from storage.db import Database

if TYPE_CHECKING:  # `coso dashboard-link` reads bot.dashboard.links, and needs no aiohttp
    from aiohttp import web


def attach(app: web.Application, settings: Settings, db: Database) -> None:
    """Add the dashboard's routes to the bot's web server (also when switched off: its pages
    then say so, rather than falling through to another route)."""
    from bot.dashboard.pages import Dashboard

    Dashboard(settings, db).attach(app)
