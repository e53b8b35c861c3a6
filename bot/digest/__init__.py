"""The ward's daily digest: figures (storage.digest), text, chart, queued to ward staff.

The scheduler (bot.daily) calls `send_digest` inside the transaction that holds the run's
claim, so the messages commit with the claim: one digest per ward and day.
"""

from __future__ import annotations

from datetime import date, datetime

from bot import files, notify
from bot.digest import chart, text
from bot.i18n import N_, Translator
from bot.messages import Outgoing
from bot.settings import Settings
from storage import digest as figures_of
from storage import outbox
from storage.db import Database
from storage.digest import WardFigures
from storage.models import Platform, Role, Unit, utcnow

# What a channel takes in one message; the digest splits between its sections to fit.
TEXT_LIMITS: dict[str, int] = {Platform.ZALO: 2000}


async def send_digest(db: Database, settings: Settings, ward_id: int, day: date,
                      now: datetime | None = None) -> int:
    """Queue the ward's digest (text, then the chart) to each of its ward staff on every chat
    account; returns the number of messages queued. `now` (default: the clock) bounds the age
    of urgent cases on the day itself; a past day's digest does not depend on it."""
    async with db.transaction() as session:
        ward = await session.get(Unit, ward_id)
        if ward is None:
            return 0
        figures = await figures_of.ward_figures(session, ward, day, settings,
                                                now=now or utcnow())
        staff = await notify.holders_over(session, ward, Role.WARD_STAFF)
        charts: dict[str, str] = {}
        ref = f"digest:{ward.id}:{day.isoformat()}"
        queued = 0
        for account, t in await notify.accounts_of(session, settings, staff):
            body = text.render(t, figures, today=day)
            photo = chart_message(settings, t, figures, account.channel, charts)
            if photo is None:
                body += "\n\n" + t(CHART_ELSEWHERE)
            for part in text.parts(body, TEXT_LIMITS.get(account.channel, text.LIMIT)):
                outbox.enqueue(session, account, Outgoing(text=part).to_payload(), outbox.BULK,
                               ref)
                queued += 1
            if photo is not None:
                outbox.enqueue(session, account, photo.to_payload(), outbox.BULK, ref)
                queued += 1
        return queued


CHART_ELSEWHERE = N_("📈 The chart of the last 7 days is in the web chat and on Telegram.")


def chart_message(settings: Settings, t: Translator, figures: WardFigures, channel: str,
                  drawn: dict[str, str] | None = None) -> Outgoing | None:
    """The 7-day chart as a photo message for this channel: the file on Telegram and the web
    chat, a signed link on Zalo (it fetches photos by URL), None where Zalo has no link to
    fetch (no COSO_PUBLIC_URL: say CHART_ELSEWHERE instead). `drawn` keeps one file per
    locale across the readers of one digest."""
    drawn = {} if drawn is None else drawn
    if t.locale not in drawn:
        drawn[t.locale] = str(chart.draw(t, figures, settings.data_dir / "charts"))
    photo = drawn[t.locale]
    if channel == Platform.ZALO:
        link = files.signed_url(settings, photo)
        if link is None:
            return None
        photo = link
    caption = t("Open reports and daily check-in rate, last {n} days",
                n=t.number(len(figures.trend)))
    return Outgoing(text=caption, photo=photo)
