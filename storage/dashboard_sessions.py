"""The dashboard's logins: a single-use link from chat, then a browser session in a cookie.

Tokens are random (secrets.token_urlsafe) and only their SHA-256 is stored, so the table
leaks no way in. Sessions live here rather than in a process's memory, so several `coso run`
processes on one PostgreSQL share them. Whether the person may still see the dashboard is
decided on every request from their roles (storage.people.grants), never from this table.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DashboardSession, Person

LINK_MINUTES = 10
SESSION_HOURS = 12


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def create_link(session: AsyncSession, person: Person, now: datetime) -> str:
    """A new single-use link token for the person (the caller builds the URL)."""
    token = new_token()
    session.add(DashboardSession(person_id=person.id, link_hash=digest_of(token), created_at=now,
                           link_expires_at=now + timedelta(minutes=LINK_MINUTES)))
    await session.flush()
    return token


class Refusal(enum.StrEnum):
    UNKNOWN = "unknown"  # forged, mistyped or from another installation
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Opened:
    cookie: str
    csrf: str
    row: DashboardSession


async def redeem(session: AsyncSession, token: str, now: datetime) -> Opened | Refusal:
    """Turn a link into a session, once: the UPDATE ... WHERE redeemed_at IS NULL decides
    between two browsers opening the same link at the same moment."""
    row = (await session.execute(select(DashboardSession).where(
        DashboardSession.link_hash == digest_of(token)))).scalar_one_or_none()
    if row is None:
        return Refusal.UNKNOWN
    if row.redeemed_at is not None or row.ended_at is not None:
        return Refusal.USED
    if row.link_expires_at <= now:
        return Refusal.EXPIRED
    cookie, csrf = new_token(), new_token()
    won = await session.execute(
        update(DashboardSession)
        .where(DashboardSession.id == row.id, DashboardSession.redeemed_at.is_(None))
        .values(redeemed_at=now, session_hash=digest_of(cookie), csrf_token=csrf,
                expires_at=now + timedelta(hours=SESSION_HOURS))
        .execution_options(synchronize_session=False))
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return Refusal.USED
    await session.refresh(row)
    return Opened(cookie, csrf, row)


async def by_cookie(session: AsyncSession, cookie: str, now: datetime) -> DashboardSession | None:
    """The live session this cookie opens, if any."""
    if not cookie:
        return None
    row = (await session.execute(select(DashboardSession).where(
        DashboardSession.session_hash == digest_of(cookie)))).scalar_one_or_none()
    if (row is None or row.ended_at is not None or row.expires_at is None
            or row.expires_at <= now):
        return None
    return row


async def live_of(session: AsyncSession, person: Person, now: datetime
                  ) -> Sequence[DashboardSession]:
    """The person's open browser sessions, newest first."""
    query = (select(DashboardSession).where(
        DashboardSession.person_id == person.id, DashboardSession.session_hash.is_not(None),
        DashboardSession.ended_at.is_(None), DashboardSession.expires_at > now)
        .order_by(DashboardSession.redeemed_at.desc(), DashboardSession.id.desc()))
    return (await session.execute(query)).scalars().all()


async def end(session: AsyncSession, person: Person, session_id: int | None,
              now: datetime) -> int:
    """End one of the person's sessions (or all, with None); how many were ended. Another
    person's session id ends nothing."""
    query = update(DashboardSession).where(DashboardSession.person_id == person.id,
                                     DashboardSession.ended_at.is_(None))
    if session_id is not None:
        query = query.where(DashboardSession.id == session_id)
    done = await session.execute(query.values(ended_at=now)
                                 .execution_options(synchronize_session=False))
    return int(done.rowcount)  # type: ignore[attr-defined]
