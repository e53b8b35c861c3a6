"""The ward's daily digest: figures (storage.digest), text, chart, queued to ward staff.

The scheduler (bot.daily) calls `send_digest` inside the transaction that holds the run's
claim, so the messages commit with the claim: one digest per ward and day.
"""

from __future__ import annotations

from datetime import date

from bot import files, notify
from bot.digest import chart, text
from bot.i18n import Translator
from bot.messages import Outgoing
from bot.settings import Settings
from storage import digest as figures_of
from storage import outbox
from storage.db import Database
from storage.models import Platform, Role, Unit

# What a channel takes in one message; the digest splits between its sections to fit.
TEXT_LIMITS: dict[str, int] = {Platform.ZALO: 2000}


async def send_digest(db: Database, settings: Settings, ward_id: int, day: date) -> int:
    """Queue the ward's digest (text, then the chart) to each of its ward staff on every chat
    account; returns the number of messages queued."""
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
        queued = 0
        for account, t in await notify.accounts_of(session, settings, staff):
            photo: str | None = chart_for(t)
            body = text.render(t, figures, today=day)
            if account.channel == Platform.ZALO:
                # Zalo fetches photos by URL: a signed link to the chart, or where to see it.
                photo = files.signed_url(settings, chart_for(t))
                if photo is None:
                    body += "\n\n" + t("📈 The chart of the last 7 days is in the web chat "
                                        "and on Telegram.")
            for part in text.parts(body, TEXT_LIMITS.get(account.channel, text.LIMIT)):
                outbox.enqueue(session, account, Outgoing(text=part).to_payload(), outbox.BULK,
                               ref)
                queued += 1
            if photo is not None:
                caption = t("Open cases and daily report rate, last {n} days",
                            n=t.number(len(figures.trend)))
                outbox.enqueue(session, account,
                               Outgoing(text=caption, photo=photo).to_payload(), outbox.BULK,
                               ref)
                queued += 1
        return queued
