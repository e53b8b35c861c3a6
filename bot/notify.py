"""Messages to people other than the one in the turn (ward staff, recipients of a directive),
each rendered in the recipient's own language and queued in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator, pick_locale
from bot.messages import Outgoing
from bot.settings import Settings
from storage import outbox, people
from storage.models import ChatAccount

# Who to notify: the role holders over, within or on a unit, looked up in storage.
holders_over = people.holders_over
holders_within = people.holders_within
holders_on = people.holders_on

Render = Callable[[Translator], Outgoing]


async def notify_people(session: AsyncSession, settings: Settings, person_ids: Iterable[int],
                        render: Render, priority: int = outbox.BULK,
                        ref: str | None = None) -> int:
    """Queue render(t) to every chat account of the given active people; returns the count."""
    found = await accounts_of(session, settings, person_ids)
    for account, t in found:
        outbox.enqueue(session, account, render(t).to_payload(), priority, ref)
    return len(found)


async def accounts_of(session: AsyncSession, settings: Settings, person_ids: Iterable[int]
                      ) -> list[tuple[ChatAccount, Translator]]:
    """Every chat account of the given active people, each with its reader's Translator:
    for messages shaped by the channel (a digest split to Zalo's limit)."""
    ids = set(person_ids)
    if not ids:
        return []
    return [(account, Translator(pick_locale(person.locale, account.locale,
                                             default=settings.default_locale), settings.tz))
            for account, person in await people.active_accounts(session, ids)]
