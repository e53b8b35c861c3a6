"""Messages to people other than the one in the turn (ward staff, recipients of a directive),
each rendered in the recipient's own language and queued in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator, pick_locale
from bot.messages import Outgoing
from bot.settings import Settings
from storage import outbox, people

# Who to notify: the role holders over, within or on a unit, looked up in storage.
holders_over = people.holders_over
holders_within = people.holders_within
holders_on = people.holders_on

Render = Callable[[Translator], Outgoing]


async def notify_people(session: AsyncSession, settings: Settings, person_ids: Iterable[int],
                        render: Render, priority: int = outbox.BULK,
                        ref: str | None = None) -> int:
    """Queue render(t) to every chat account of the given active people; returns the count."""
    ids = set(person_ids)
    if not ids:
        return 0
    queued = 0
    for account, person in await people.active_accounts(session, ids):
        locale = pick_locale(person.locale, account.locale, default=settings.default_locale)
        message = render(Translator(locale, settings.tz))
        outbox.enqueue(session, account, message.to_payload(), priority, ref)
        queued += 1
    return queued
