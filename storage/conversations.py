"""Open conversations (one per chat account at most): their queries and saved history.

A conversation's history is what 'back' walks: each question answered, with the answers as
they stood when it was asked (a loop such as ticking flags overwrites what its prompt shows).
It is kept to the last HISTORY_LIMIT questions, so a person who ticks a flag a thousand times
does not grow their row without bound; 'back' past that says it is the first question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import write_changes
from storage.models import ChatAccount, Conversation
from storage.people import PREFETCHED_CONVERSATION

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class Visit:
    """A question answered: its step key and the answers as they stood when it was asked."""

    step: str
    answers: dict[str, Any]


@dataclass
class History:
    visits: list[Visit] = field(default_factory=list)

    def push(self, step: str, answers: dict[str, Any]) -> None:
        self.visits.append(Visit(step, dict(answers)))
        del self.visits[:-HISTORY_LIMIT]

    def pop(self) -> Visit | None:
        return self.visits.pop() if self.visits else None

    def __bool__(self) -> bool:
        return bool(self.visits)

    def to_json(self) -> dict[str, Any]:
        return {"back": [{"step": visit.step, "answers": visit.answers}
                         for visit in self.visits]}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> History:
        return cls([Visit(str(entry["step"]), dict(entry["answers"])) for entry in raw["back"]])


def empty_history() -> dict[str, Any]:
    """The history column of a conversation just begun."""
    return History().to_json()


async def of_account(session: AsyncSession, account_id: int) -> Conversation | None:
    """The chat account's open conversation, if any (read with the turn's sender once:
    storage.people.sender_of)."""
    prefetched = session.info.get(PREFETCHED_CONVERSATION)
    if prefetched is not None and account_id in prefetched:
        conversation = prefetched.pop(account_id)
        if conversation is None or conversation in session:  # not closed since
            return conversation
    query = select(Conversation).where(Conversation.chat_account_id == account_id)
    return (await session.execute(query)).scalar_one_or_none()


async def save(session: AsyncSession, conversation: Conversation) -> None:
    """Write where the conversation stands (step, answers, history, question token, time)
    now, in one Core UPDATE of the columns that changed: every step of every flow saves, so
    this skips the ORM's unit of work (docs/performance.md, hot path). A conversation just
    begun and not yet inserted is flushed by the ORM."""
    await write_changes(session, conversation)


async def idle_since(session: AsyncSession, cutoff: datetime, limit: int = 500
                     ) -> list[tuple[Conversation, ChatAccount]]:
    """Conversations not touched since `cutoff`, each with its chat account (a batch)."""
    query = (select(Conversation, ChatAccount).join(ChatAccount)
             .where(Conversation.updated_at < cutoff).limit(limit))
    return [(conversation, account) for conversation, account in
            (await session.execute(query)).all()]


async def close(session: AsyncSession, conversation: Conversation) -> None:
    """Delete the conversation now, and forget the object (nothing saves it back). One
    begun in this turn and not yet inserted (a flow answered and done at once, "/lang en")
    is only forgotten."""
    if inspect(conversation).pending:
        session.expunge(conversation)
        return
    await session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    session.expunge(conversation)
