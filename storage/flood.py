"""Flood control's record: a chat account's updates counted over a window, on its own row.

The row is the one the turn loaded and locked (storage.people.account_for(lock=True)), so
the count holds with several processes, and counting costs no query of its own: on SQLite
the change is the turn's one UPDATE of the account row; on PostgreSQL the sender's read
counts it in SQL by the same rule (storage.people.sender_of(count_at=...)).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.models import ChatAccount

WINDOW = timedelta(minutes=1)


def count_update(account: ChatAccount, now: datetime, window: timedelta = WINDOW) -> int:
    """Count this update: how many the account sent in the current window, this one too.
    A window starts with the first update after the last one ended."""
    if account.flood_since is None or now - account.flood_since >= window:
        account.flood_since, account.flood_count = now, 0
    account.flood_count = (account.flood_count or 0) + 1
    return account.flood_count


def take_invite_hint(account: ChatAccount, now: datetime, every: timedelta) -> bool:
    """True (and noted) when the stranger was not told to ask for an invite in `every`."""
    if account.invite_hint_at is not None and now - account.invite_hint_at < every:
        return False
    account.invite_hint_at = now
    return True
