"""The delivery pipeline over the Telegram double: exactly once under faults, a crash, two
senders; blocked chats; replies ahead of a broadcast.

The achieved rate against a 30/s limit is measured by the benchmark (`python -m bench
delivery`), not here: a timed assertion would flake on a busy machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bench.broadcast import FIRST_CHAT, enqueue_broadcast
from storage import outbox
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import ChatAccount, OutboxMessage, OutboxStatus, utcnow
from tests.conftest import StartBot
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import start_telegram


@pytest.fixture
async def tg() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble() as double:
        yield double


async def settled(db: Database, expected: int, seconds: float = 90.0) -> dict[str, int]:
    """Waits until `expected` rows are sent or failed; the count of rows by status."""
    async with asyncio.timeout(seconds):
        while True:
            async with db.read() as session:
                counts = dict((await session.execute(select(
                    OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all())
            done = counts.get(OutboxStatus.SENT, 0) + counts.get(OutboxStatus.FAILED, 0)
            if done >= expected:
                return {str(status): n for status, n in counts.items()}
            await asyncio.sleep(0.2)


def copies(tg: TelegramDouble) -> Counter[int]:
    return Counter(message.chat_id for message in tg.sent)


async def test_broadcast_reaches_everyone_once_through_429s_502s_and_drops(
        start_bot: StartBot, db: Database, db_url: str, tg: TelegramDouble) -> None:
    # The rate is not the point here (see the benchmark): a high limit keeps the test short.
    tg.rate_limit_per_second = 400
    tg.chat_rate_limit_per_second = 1
    tg.inject_random_faults(0.05)
    await upgrade_async(db_url)
    await enqueue_broadcast(db, 2000)
    await start_telegram(start_bot, tg, TELEGRAM_RATE_PER_SECOND=400)

    counts = await settled(db, 2000)

    assert counts == {str(OutboxStatus.SENT): 2000}
    received = copies(tg)
    assert set(received) == {FIRST_CHAT + n for n in range(2000)}
    assert set(received.values()) == {1}
    statuses = Counter(failure.status for failure in tg.failures)
    assert statuses[429] > 0 and statuses[502] > 0


async def test_blocked_chat_fails_once_and_marks_the_account(
        start_bot: StartBot, db: Database, db_url: str, tg: TelegramDouble) -> None:
    await upgrade_async(db_url)
    await enqueue_broadcast(db, 3)
    await tg.block_bot(FIRST_CHAT + 1)
    await start_telegram(start_bot, tg, TELEGRAM_RATE_PER_SECOND=100)

    counts = await settled(db, 3)

    assert counts == {str(OutboxStatus.SENT): 2, str(OutboxStatus.FAILED): 1}
    async with db.read() as session:
        blocked = (await session.execute(select(ChatAccount.external_id).where(
            ChatAccount.blocked_at.is_not(None)))).scalars().all()
    assert blocked == [str(FIRST_CHAT + 1)]
    tries = [params for method, params in tg.calls if method == "sendMessage"
             and int(params["chat_id"]) == FIRST_CHAT + 1]
    assert len(tries) == 1  # a permanent failure is not retried


async def test_interactive_reply_overtakes_a_broadcast(
        start_bot: StartBot, db: Database, db_url: str, tg: TelegramDouble) -> None:
    await upgrade_async(db_url)
    await enqueue_broadcast(db, 300)
    await start_telegram(start_bot, tg, TELEGRAM_RATE_PER_SECOND=50)
    await tg.wait_messages(FIRST_CHAT + 19)  # the broadcast is under way
    async with db.transaction() as session:
        account = ChatAccount(channel="telegram", external_id="42", locale="vi")
        session.add(account)
        await session.flush()
        outbox.enqueue(session, account, {"text": "Trả lời"}, priority=outbox.INTERACTIVE)
    reply = await tg.next_message(42)

    position = tg.sent.index(reply)
    # Behind at most the claimed window (a quarter second at 50/s) plus the first 20.
    assert position < 20 + 30
    await settled(db, 301)
    assert set(copies(tg).values()) == {1}


async def test_two_processes_share_one_postgresql_outbox_without_duplicates(
        db: Database, db_url: str, tg: TelegramDouble) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one sender")
    await upgrade_async(db_url)
    await enqueue_broadcast(db, 600)
    # Two `coso run` processes in webhook mode (two workers behind one address, as deployed;
    # two long pollers of one bot would be refused by Telegram), both draining the outbox.
    env = {**_run_env(db_url, tg), "TELEGRAM_RATE_PER_SECOND": "300",
           "TELEGRAM_WEBHOOK_URL": "https://coso.example/webhook/telegram",
           "TELEGRAM_WEBHOOK_SECRET": "two-workers"}
    workers = [await asyncio.create_subprocess_exec(_coso(), "run", env=env) for _ in range(2)]
    try:
        counts = await settled(db, 600)
    finally:
        for worker in workers:
            worker.terminate()
        await asyncio.gather(*(worker.wait() for worker in workers))

    assert counts == {str(OutboxStatus.SENT): 600}
    assert set(copies(tg).values()) == {1} and len(copies(tg)) == 600


def _run_env(db_url: str, tg: TelegramDouble) -> dict[str, str]:
    return {**os.environ, "COSO_DATABASE_URL": db_url, "COSO_WEB_PORT": "0",
            "COSO_SCHEDULER": "false", "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE": tg.base_url, "ZALO_BOT_TOKEN": ""}


def _coso() -> str:
    return str(Path(sys.executable).with_name("coso"))


async def test_kill_9_mid_broadcast_then_restart_loses_nothing(
        db: Database, db_url: str, tg: TelegramDouble) -> None:
    tg.rate_limit_per_second = 100
    await upgrade_async(db_url)
    await enqueue_broadcast(db, 400)
    env = {**_run_env(db_url, tg), "TELEGRAM_RATE_PER_SECOND": "100"}
    coso = _coso()

    first = await asyncio.create_subprocess_exec(coso, "run", env=env)
    await tg.wait_messages(FIRST_CHAT + 150, timeout=90)  # the broadcast is under way
    first.send_signal(signal.SIGKILL)
    await first.wait()
    async with db.transaction() as session:
        in_flight = (await session.execute(select(func.count()).where(
            OutboxMessage.status == OutboxStatus.SENDING))).scalar_one()
        # Time passing, shortened: the dead sender's leases run out.
        await session.execute(update(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.SENDING).values(lease_until=utcnow()))
    second = await asyncio.create_subprocess_exec(coso, "run", env=env)
    try:
        counts = await settled(db, 400)
    finally:
        second.terminate()
        await second.wait()

    assert counts == {str(OutboxStatus.SENT): 400}
    received = copies(tg)
    assert set(received) == {FIRST_CHAT + n for n in range(400)}  # nothing lost
    duplicates = sum(received.values()) - 400
    print(f"kill -9: {in_flight} rows in flight, {duplicates} duplicates")
    assert duplicates <= in_flight


async def test_zalo_sender_keeps_the_same_rules(
        start_bot: StartBot, db: Database, db_url: str) -> None:
    zalo = ZaloDouble()
    await zalo.start()
    try:
        zalo.rate_limit_per_second = 100
        zalo.fail_next("sendMessage", 429, count=3, retry_after=1)
        zalo.fail_next("sendMessage", 502, count=3)
        await zalo.block_bot(str(FIRST_CHAT + 7))
        await upgrade_async(db_url)
        await enqueue_broadcast(db, 60, channel="zalo")
        await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url,
                        ZALO_RATE_PER_SECOND=100)

        counts = await settled(db, 60)

        assert counts == {str(OutboxStatus.SENT): 59, str(OutboxStatus.FAILED): 1}
        received = Counter(sent.chat_id for sent in zalo.sent)
        assert set(received) == {str(FIRST_CHAT + n) for n in range(60)} - {str(FIRST_CHAT + 7)}
        assert set(received.values()) == {1}
        async with db.read() as session:
            blocked = (await session.execute(select(ChatAccount.external_id).where(
                ChatAccount.blocked_at.is_not(None)))).scalars().all()
        assert blocked == [str(FIRST_CHAT + 7)]
    finally:
        await zalo.stop()


async def test_sqlite_restart_sends_what_the_stopped_sender_held_at_once(
        start_bot: StartBot, db: Database, db_url: str, tg: TelegramDouble) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL another process may hold the rows: the lease decides")
    await upgrade_async(db_url)
    await enqueue_broadcast(db, 5)
    async with db.transaction() as session:  # as a crashed sender left them: claimed for 60 s
        await session.execute(update(OutboxMessage).values(
            status=OutboxStatus.SENDING, lease_until=utcnow() + timedelta(minutes=1)))
    await start_telegram(start_bot, tg)
    assert await settled(db, 5, seconds=10) == {str(OutboxStatus.SENT): 5}


async def test_a_send_waiting_its_turn_past_the_lease_is_not_sent_twice(
        start_bot: StartBot, db: Database, db_url: str, tg: TelegramDouble,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Four replies to one chat go out a second apart (Telegram's 1/s per chat), so the last
    # waits three seconds in the sender, past a lease of half a second: the sender must not
    # claim the rows it holds itself again.
    monkeypatch.setattr("bot.delivery.LEASE", timedelta(seconds=0.5))
    await upgrade_async(db_url)
    async with db.transaction() as session:
        account = ChatAccount(channel="telegram", external_id="42", locale="vi")
        session.add(account)
        await session.flush()
        for n in range(4):
            outbox.enqueue(session, account, {"text": f"Tin {n}"})
    await start_telegram(start_bot, tg, TELEGRAM_RATE_PER_SECOND=30)

    assert await settled(db, 4) == {str(OutboxStatus.SENT): 4}
    await asyncio.sleep(1.5)  # a second copy would be on its way by now
    assert sorted(message.text or "" for message in tg.sent) == [f"Tin {n}" for n in range(4)]


async def _long_reply(db: Database, channel: str, chat: str, limit: int) -> None:
    async with db.transaction() as session:
        account = ChatAccount(channel=channel, external_id=chat, locale="vi")
        session.add(account)
        await session.flush()
        text = "\n".join(f"Phần {i}: " + "x" * (limit - 100) for i in range(3))
        outbox.enqueue(session, account, {"text": text})


async def _parts_sent(db: Database) -> list[int]:
    async with db.read() as session:
        return list((await session.execute(select(OutboxMessage.parts_sent))).scalars())


async def test_a_429_on_a_later_part_resends_only_the_missing_parts_telegram(
        start_bot: StartBot, db: Database, db_url: str, tg: TelegramDouble) -> None:
    """Issue 11, item 14. Before: the retry sent the whole message again, so its first part
    arrived twice (here the in-line wait's one retry of the part drew a 429 too)."""
    tg.fail_next("sendMessage", 429, after=1, count=2, retry_after=1)
    await upgrade_async(db_url)
    await _long_reply(db, "telegram", "42", 4096)
    await start_telegram(start_bot, tg)

    assert await settled(db, 1) == {str(OutboxStatus.SENT): 1}
    await tg.wait_messages(42, 3)
    await tg.expect_silence(42, 1.0)
    assert [(m.text or "")[:6] for m in tg.sent] == ["Phần 0", "Phần 1", "Phần 2"]
    assert [f.status for f in tg.failures] == [429, 429]
    assert await _parts_sent(db) == [1]


async def test_a_429_on_a_later_part_resends_only_the_missing_parts_zalo(
        start_bot: StartBot, db: Database, db_url: str, zalo: ZaloDouble) -> None:
    zalo.fail_next("sendMessage", 429, after=1, retry_after=1)
    await upgrade_async(db_url)
    await _long_reply(db, "zalo", "zalo-42", 2000)
    await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)

    assert await settled(db, 1) == {str(OutboxStatus.SENT): 1}
    await zalo.wait_messages("zalo-42", 3)
    await zalo.expect_silence("zalo-42", 1.0)
    assert [(m.text or "")[:6] for m in zalo.sent] == ["Phần 0", "Phần 1", "Phần 2"]
    assert await _parts_sent(db) == [1]
