"""Invite codes: random, single-use, expiring, revocable; only a hash is stored."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Invite, InviteFailure, Unit, utcnow

# No 0/O or 1/I/L: codes are read aloud and typed on small phones.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
# Guessing 8 symbols of 31 is hopeless at this pace: 5 refused codes within 10 minutes, and
# the next tries are refused unchecked for 10 minutes after the fifth.
FAILURES_ALLOWED = 5
FAILURE_WINDOW = timedelta(minutes=10)
LOCKOUT = timedelta(minutes=10)
FAILURES_KEPT = timedelta(days=1)


class InviteProblem(enum.StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class NewInvite:
    code: str
    invite: Invite


def normalize_code(code: str) -> str:
    """People type codes in lower case, with spaces or dashes: all of that is the same code."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


async def create(session: AsyncSession, unit: Unit, role: str, expires_in: timedelta,
                 count: int = 1) -> list[NewInvite]:
    expires_at = utcnow() + expires_in
    created = []
    for _ in range(count):
        code = _new_code()
        invite = Invite(code_hash=hash_code(code), unit_id=unit.id, role=role,
                        expires_at=expires_at)
        invite.unit = unit
        session.add(invite)
        created.append(NewInvite(code, invite))
    await session.flush()
    return created


async def find(session: AsyncSession, code: str) -> Invite | None:
    query = (select(Invite).where(Invite.code_hash == hash_code(code))
             .options(selectinload(Invite.unit)))
    return (await session.execute(query)).scalar_one_or_none()


def problem(invite: Invite | None, now: datetime) -> InviteProblem | None:
    """Why this invite cannot be used now, or None when it can."""
    if invite is None:
        return InviteProblem.UNKNOWN
    if invite.revoked_at is not None:
        return InviteProblem.REVOKED
    if invite.used_at is not None:
        return InviteProblem.USED
    if invite.expires_at <= now:
        return InviteProblem.EXPIRED
    return None


async def redeem(session: AsyncSession, code: str, person_id: int) -> Invite:
    """Mark the invite used; the caller has checked problem() in this transaction."""
    invite = await find(session, code)
    assert invite is not None
    invite.used_at, invite.used_by_person_id = utcnow(), person_id
    return invite


async def revoke(session: AsyncSession, code: str) -> Invite | None:
    invite = await find(session, code)
    if invite is not None and invite.revoked_at is None:
        invite.revoked_at = utcnow()
    return invite


# --- the back-off against guessing ------------------------------------------------------------

def account_key(channel: str, external_id: str) -> str:
    """Who tried, for the back-off: one chat account (stable across its purge)."""
    return f"{channel}:{external_id}"[:96]


async def record_failure(session: AsyncSession, key: str, now: datetime) -> None:
    session.add(InviteFailure(key=key[:96], at=now))
    await session.flush()


async def locked_until(session: AsyncSession, key: str, now: datetime) -> datetime | None:
    """When `key` may try a code again, if its last FAILURES_ALLOWED refusals fell within
    FAILURE_WINDOW and the last is less than LOCKOUT ago; else None. Tries refused while
    locked are not recorded, so the lock ends LOCKOUT after the fifth refusal."""
    query = (select(InviteFailure.at)
             .where(InviteFailure.key == key[:96],
                    InviteFailure.at > now - FAILURE_WINDOW - LOCKOUT)
             .order_by(InviteFailure.at.desc()).limit(FAILURES_ALLOWED))
    times = list((await session.execute(query)).scalars())
    if len(times) < FAILURES_ALLOWED or times[0] - times[-1] >= FAILURE_WINDOW:
        return None
    until = times[0] + LOCKOUT
    return until if now < until else None


async def purge_failures(session: AsyncSession, now: datetime) -> int:
    """Forget refusals older than FAILURES_KEPT (far longer than any lock)."""
    result = await session.execute(delete(InviteFailure).where(
        InviteFailure.at < now - FAILURES_KEPT))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
