"""Who may open the dashboard, and the address of its login links."""

from __future__ import annotations

from bot.handlers.access import OVERSEERS
from bot.settings import Settings

# Leaders work in chat only: the dashboard shows a whole ward.
DASHBOARD_ROLES = OVERSEERS  # ward staff, administrators and monitors
PREFIX = "/dashboard"


def base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://{settings.web_host}:{settings.web_port}"


def login_url(settings: Settings, token: str) -> str:
    return f"{base_url(settings)}{PREFIX}/login/{token}"


def is_secure(settings: Settings) -> bool:
    return base_url(settings).startswith("https://")
