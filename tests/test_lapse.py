"""An idle conversation lapses with a notice (a quiet one without), on both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.flows import engine
from bot.handlers.router import Router
from bot.messages import Incoming
from storage.db import Database
from storage.models import Conversation, OutboxMessage, utcnow
from tests.conftest import make_settings


async def _outbox_texts(db: Database) -> list[str]:
    async with db.read() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [row.payload["text"] for row in rows]


async def _age_conversations(db: Database, minutes: int) -> None:
    async with db.transaction() as session:
        await session.execute(update(Conversation).values(
            updated_at=utcnow() - timedelta(minutes=minutes)))


async def test_sweep_closes_idle_conversations_with_one_notice(db: Database) -> None:
    settings = make_settings(db.url, COSO_CONVERSATION_IDLE_MINUTES=30)
    router = Router(db, settings)
    await router.handle(Incoming("telegram", "5", "1", text="/lang", language="en"))
    async with db.transaction() as session:
        assert await engine.lapse_idle(session, settings, utcnow()) == 0
    await _age_conversations(db, 31)
    async with db.transaction() as session:
        assert await engine.lapse_idle(session, settings, utcnow()) == 1
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 0
    texts = await _outbox_texts(db)
    assert texts[-1].startswith("Your previous conversation lapsed")
    # The answer to the lapsed question is now outside any flow and is not taken.
    await router.handle(Incoming("telegram", "5", "2", text="English", language="en"))
    assert (await _outbox_texts(db))[-1].startswith("Hello! I am Coso")


async def test_a_lapsed_conversation_is_noticed_on_the_next_message(db: Database) -> None:
    settings = make_settings(db.url, COSO_CONVERSATION_IDLE_MINUTES=30)
    router = Router(db, settings)
    await router.handle(Incoming("zalo", "6", "a", text="/lang", language="en"))
    await _age_conversations(db, 45)
    await router.handle(Incoming("zalo", "6", "b", text="2", language="en"))
    texts = await _outbox_texts(db)
    assert texts[-2].startswith("Your previous conversation lapsed")
    assert texts[-1].startswith("Hello! I am Coso")


async def test_a_quiet_flow_lapses_without_a_notice(db: Database) -> None:
    settings = make_settings(db.url, COSO_CONVERSATION_IDLE_MINUTES=30)
    router = Router(db, settings)
    quiet = engine.Flow(name="quiet-test", title="quiet", steps=engine.FLOWS["language"].steps,
                        finish=engine.FLOWS["language"].finish, quiet_lapse=True)
    engine.register(quiet)
    try:
        await router.handle(Incoming("telegram", "7", "1", text="/lang", language="en"))
        async with db.transaction() as session:
            await session.execute(update(Conversation).values(flow="quiet-test"))
        await _age_conversations(db, 31)
        before = len(await _outbox_texts(db))
        async with db.transaction() as session:
            assert await engine.lapse_idle(session, settings, utcnow()) == 1
        assert len(await _outbox_texts(db)) == before
    finally:
        engine.FLOWS.pop("quiet-test", None)
