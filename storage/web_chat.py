"""The local web chat's accounts and logins (bot/channels/web.py is the channel itself).

A login is the SHA-256 of the cookie's token bound to one registered web chat account; the
token itself is never stored. Every look-up here is by the caller's own token or external id,
so no request reaches another person's account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import invites
from storage.invites import InviteProblem
from storage.models import ChatAccount, Person, Platform, WebSession

SESSION_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class Login:
    """The web chat account a valid login belongs to."""

    account_id: int
    external_id: str


async def account(session: AsyncSession, external_id: str) -> ChatAccount | None:
    """The web chat account with this external id (the page's own), or None."""
    query = select(ChatAccount).where(ChatAccount.channel == Platform.WEB,
                                      ChatAccount.external_id == external_id)
    return (await session.execute(query)).scalar_one_or_none()


async def locales(session: AsyncSession, account_id: int) -> tuple[str | None, str | None]:
    """The account's person's language and the account's own (either may be unset), for an
    answer the channel words itself before the core is involved."""
    query = (select(Person.locale, ChatAccount.locale)
             .outerjoin(Person, Person.id == ChatAccount.person_id)
             .where(ChatAccount.id == account_id))
    found = (await session.execute(query)).first()
    return (found[0], found[1]) if found else (None, None)


async def open_login(session: AsyncSession, external_id: str, token_hash: str) -> bool:
    """Bind the token's hash to the account if its invite code registered it (a person is
    linked); False, and nothing written, for an account that is missing or a stranger."""
    found = await account(session, external_id)
    if found is None or found.person_id is None:
        return False
    session.add(WebSession(token_hash=token_hash, chat_account_id=found.id))
    return True


async def redeemed_by(session: AsyncSession, external_id: str, code: str, now: datetime
                      ) -> bool:
    """True when this web chat account's person is the one who redeemed the code, and the
    code is spent, not withdrawn: its owner signing in again after logging out."""
    found = await account(session, external_id)
    if found is None or found.person_id is None:
        return False
    invite = await invites.find(session, code)
    return (invites.problem(invite, now) is InviteProblem.USED and invite is not None
            and invite.used_by_person_id == found.person_id)


async def login(session: AsyncSession, token_hash: str, now: datetime) -> Login | None:
    """The account behind the token's hash while the login is younger than
    SESSION_LIFETIME; None for an unknown or expired one."""
    query = (select(WebSession.created_at, ChatAccount.id, ChatAccount.external_id)
             .join(ChatAccount, ChatAccount.id == WebSession.chat_account_id)
             .where(WebSession.token_hash == token_hash))
    found = (await session.execute(query)).first()
    if found is None or found.created_at + SESSION_LIFETIME < now:
        return None
    return Login(account_id=found.id, external_id=found.external_id)


async def close_login(session: AsyncSession, token_hash: str) -> None:
    """End the login with this token's hash (logging out); other logins stay."""
    await session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))
