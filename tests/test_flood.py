"""Flood control (issue 11, item 2) through the Telegram double: one chat account past the
limit is ledgered but answered once with "slow down"; a stranger hears about invites once.

How much a flood delays other chats is measured by `python -m bench flood`, not here.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.settings import Settings
from storage.db import Database
from storage.models import ChatAccount, ProcessedUpdate, utcnow
from tests.conftest import StartBot
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import start_telegram, texts

FLOODER = 666
LIMIT = Settings.model_fields["flood_per_minute"].default  # the production default, 20
SLOW_DOWN_VI = "Anh/chị gửi tin nhanh hơn mức tôi trả lời được"


async def ledgered(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(ProcessedUpdate)) or 0)


async def start(start_bot: StartBot, tg: TelegramDouble) -> Database:
    # The per-chat send pace (1/s) would make 21 replies take 21 s; it is not the point here.
    runtime = await start_telegram(start_bot, tg, COSO_FLOOD_PER_MINUTE=LIMIT,
                                   TELEGRAM_CHAT_RATE_PER_SECOND=1000)
    return runtime.db


async def test_a_flood_is_ledgered_whole_and_answered_once_past_the_limit(
        start_bot: StartBot, tg: TelegramDouble) -> None:
    db = await start(start_bot, tg)
    flood = 3 * LIMIT
    for _ in range(flood):
        await tg.send_text(FLOODER, "/help", language_code="vi")

    replies = await tg.wait_messages(FLOODER, LIMIT + 1, timeout=30)
    await tg.expect_silence(FLOODER, seconds=1.0)

    assert len(replies) == LIMIT + 1, texts(replies)
    *answers, slow_down = replies
    assert all("Coso" in (answer.text or "") for answer in answers)
    assert SLOW_DOWN_VI in (slow_down.text or ""), slow_down.describe()
    assert await ledgered(db) == flood  # every update taken, exactly once
    async with db.read() as session:
        account = (await session.execute(select(ChatAccount).where(
            ChatAccount.external_id == str(FLOODER)))).scalar_one()
    assert account.flood_count == flood


async def test_answers_resume_once_the_minute_is_over(
        start_bot: StartBot, tg: TelegramDouble) -> None:
    db = await start(start_bot, tg)
    for _ in range(LIMIT + 5):
        await tg.send_text(FLOODER, "/help", language_code="en")
    await tg.wait_messages(FLOODER, LIMIT + 1, timeout=30)
    await tg.expect_silence(FLOODER, seconds=0.5)
    async with db.transaction() as session:  # a minute passing, shortened
        await session.execute(update(ChatAccount).values(
            flood_since=utcnow() - timedelta(seconds=61)))

    await tg.send_text(FLOODER, "/help", language_code="en")

    [answer] = await tg.wait_messages(FLOODER, 1)
    assert "slow" not in (answer.text or "").lower() and "Coso" in (answer.text or "")


async def test_a_stranger_is_told_about_invites_once_in_a_while(
        start_bot: StartBot, tg: TelegramDouble) -> None:
    """Before: each of a stranger's messages got the invite answer, 10 for 10."""
    db = await start(start_bot, tg)
    for n in range(10):
        await tg.send_text(FLOODER, f"xin chào {n}", language_code="en")

    [hint] = await tg.wait_messages(FLOODER, 1)
    await tg.expect_silence(FLOODER, seconds=1.0)

    assert "invite code" in (hint.text or ""), hint.describe()
    assert await ledgered(db) == 10
    # A command still gets its reason (within the flood limit): they asked for something.
    await tg.send_text(FLOODER, "/report", language_code="en")
    [refused] = await tg.wait_messages(FLOODER, 1)
    assert "not registered yet" in (refused.text or ""), refused.describe()
    async with db.transaction() as session:  # five minutes passing, shortened
        await session.execute(update(ChatAccount).values(
            invite_hint_at=utcnow() - timedelta(minutes=5)))
    await tg.send_text(FLOODER, "xin chào", language_code="en")
    [again] = await tg.wait_messages(FLOODER, 1)
    assert "invite code" in (again.text or ""), again.describe()
