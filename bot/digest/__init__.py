"""The ward's daily digest: figures (storage.digest), text, chart, queued to ward staff.

The scheduler (bot.daily) calls `send_digest` inside the transaction that holds the run's
claim, so the messages commit with the claim: one digest per ward and day.
"""

from __future__ import annotations

from datetime import date

from bot import notify
from bot.digest import chart, text
from bot.i18n import Translator
from bot.messages import Outgoing
from bot.settings import Settings
from storage import digest as figures_of
from storage.db import Database
from storage.models import Role, Unit


async def send_digest(db: Database, settings: Settings, ward_id: int, day: date) -> int:
    """Queue the ward's digest (text, then the chart) to each of its ward staff; returns the
    number of messages queued."""
    async with db.transaction() as session:
        ward = await session.get(Unit, ward_id)
        if ward is None:
            return 0
        figures = await figures_of.ward_figures(session, ward, day, settings)
        staff = await notify.holders_over(session, ward, Role.WARD_STAFF)
        charts: dict[str, str] = {}

        def chart_for(t: Translator) -> str:
            if t.locale not in charts:
                charts[t.locale] = str(chart.draw(t, figures, settings.data_dir / "charts"))
            return charts[t.locale]

        ref = f"digest:{ward.id}:{day.isoformat()}"
        queued = await notify.notify_people(
            session, settings, staff, lambda t: Outgoing(text=text.render(t, figures)), ref=ref)
        queued += await notify.notify_people(
            session, settings, staff,
            lambda t: Outgoing(text=t("Last 7 days"), photo=chart_for(t)), ref=ref)
        return queued
