"""Flood control: one chat account cannot bury the bot, nor the replies to everyone else.

Past COSO_FLOOD_PER_MINUTE updates in a minute, an update is still entered in the ledger (so
it is handled exactly once: a redelivery stays a no-op) but not acted on: the first one past
the limit is answered with "slow down", the next ones get no answer until the minute is over.
A stranger writing to the bot is told to ask for an invite at most once every
INVITE_HINT_EVERY; a command of theirs still gets its reason (they asked for something), within
the limit above.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta

from bot.turn import Turn
from storage import flood
from storage.models import ChatAccount

log = logging.getLogger(__name__)

INVITE_HINT_EVERY = timedelta(minutes=5)


class Verdict(enum.Enum):
    ANSWER = "answer"  # within the limit: handled as usual
    WARN = "warn"  # the first past the limit: "slow down", nothing else
    IGNORE = "ignore"  # past the limit, warned already: ledgered, not answered


def judge(account: ChatAccount, now: datetime, per_minute: int, *, counted: bool = False
          ) -> Verdict:
    """Counts the update on the account's row and says what the turn may do. counted: the
    update is on the row already (storage.people.sender_of counted it in its read)."""
    count = account.flood_count if counted else flood.count_update(account, now)
    if count <= per_minute:
        return Verdict.ANSWER
    if count == per_minute + 1:
        log.info("chat account %s: over %d updates a minute; not answering until the minute "
                 "is over", account.id, per_minute)
        return Verdict.WARN
    return Verdict.IGNORE


def warn(turn: Turn) -> None:
    turn.say(turn.t("You are sending messages faster than I can answer. I will not answer "
                    "for a minute; then send again what you still need."))


def invite_hint_due(turn: Turn) -> bool:
    """Whether a stranger may be told (again) to ask for an invite; noted when so."""
    return flood.take_invite_hint(turn.account, turn.now, INVITE_HINT_EVERY)
