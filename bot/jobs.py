"""Work that runs on a clock rather than on a message, declared like commands.

Daily per-ward jobs (check-in prompt, reminder, escalation, digest) are built by the scheduler
from each ward's schedule. Periodic jobs registered here (directive and drill reminders) run
every `every`; they must be idempotent through row state (e.g. set `reminded_at` in the same
transaction that queues the reminder), because two processes may both run them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.settings import Settings
from storage.db import Database

Run = Callable[[Database, Settings, datetime], Awaitable[None]]


@dataclass(frozen=True)
class Periodic:
    name: str
    every: timedelta
    run: Run


PERIODIC: dict[str, Periodic] = {}


def periodic(name: str, every: timedelta) -> Callable[[Run], Run]:
    """Declare a periodic job: @periodic("directive-reminders", timedelta(minutes=1))."""

    def register(run: Run) -> Run:
        PERIODIC[name] = Periodic(name, every, run)
        return run

    return register
