"""Two `coso run` processes on one PostgreSQL, behind a reverse proxy (docs/deploy.md §8).

PostgreSQL only (skipped without COSO_TEST_POSTGRES_URL): SQLite is one process's database.

The proxy here spreads the double's webhook requests over both processes at random, one
request at a time per chat and up to 40 at once over all chats, as Telegram delivers: it
sends a chat's next update once the previous one was answered (and Coso answers 200 only
after the update's transaction committed). So one person's updates land on either process,
and what is proven is what deployment gets: every update handled exactly once, each
person's replies in the order of their updates, every outbox row sent once, every daily
job run once, with both processes serving, sending and ticking at the same time.

The first test is the case the platforms do not send but a retry, a slow answer or a second
device can: two updates of one chat handled at the very same time by two processes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bench.broadcast import FIRST_CHAT as BROADCAST_CHAT
from bench.broadcast import enqueue_broadcast
from bench.load import (
    FIRST_CHAT,
    SECRET,
    SENDS,
    STEPS,
    Leader,
    LoadDouble,
    Process,
    act,
    clean_env,
    coso_process,
    free_port,
    seed,
)
from bench.processes import REPOSITORY, Proxy, TelegramLike
from storage import people, schedules
from storage.db import Database
from storage.models import (
    ChatAccount,
    Conversation,
    JobRun,
    OutboxMessage,
    OutboxStatus,
    ProcessedUpdate,
    Report,
)

PEOPLE = 200
BURST = 3  # commands each person sends at once, without waiting for the replies
BROADCAST = 300
BURST_REPLY = re.compile(r"/(z\d+n\d+)\b")


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("several processes share a PostgreSQL database, not a SQLite file")
    return db_url


# ---------------------------------------------------------------- two turns at one instant

async def test_a_turn_that_waited_for_another_process_sees_all_it_committed(
        pg_url: str) -> None:
    """Process A's turn creates the chat's conversation; process B's turn of the same chat,
    arriving meanwhile, waits, then must see that conversation (not the state before A)."""
    first, second = Database(pg_url), Database(pg_url)
    try:
        async with first.transaction() as session:
            session.add(ChatAccount(channel="telegram", external_id="7"))
        inside, release = asyncio.Event(), asyncio.Event()

        async def turn_a() -> None:
            async with first.transaction() as session:
                sender = await people.sender_of(session, "telegram", "7")
                assert sender.conversation is None
                session.add(Conversation(chat_account_id=sender.account.id, flow="report",
                                         step="household"))
                await session.flush()
                inside.set()
                await release.wait()

        async def turn_b() -> Conversation | None:
            await inside.wait()
            async with second.transaction() as session:
                return (await people.sender_of(session, "telegram", "7")).conversation

        a, b = asyncio.create_task(turn_a()), asyncio.create_task(turn_b())
        await asyncio.sleep(0.5)
        assert not b.done()  # B waits for A's turn to end
        release.set()
        await a
        seen = await b
        assert seen is not None and seen.step == "household"
    finally:
        await first.dispose()
        await second.dispose()


# ---------------------------------------------------------------- the processes

def bot_process(tg: LoadDouble, url: str, proxy: Proxy, port: int, folder: Path, name: str
                ) -> Process:
    process, _, _ = coso_process(tg, url, "webhook", folder)
    env = clean_env(**{**{k: v for k, v in process.env.items()
                          if k.startswith(("COSO_", "TELEGRAM_"))},
                       "PYTHONPATH": str(REPOSITORY),  # this checkout's code
                       "COSO_WEB_PORT": str(port), "COSO_METRICS": "off",
                       "COSO_DATA_DIR": str(folder / name),
                       "TELEGRAM_WEBHOOK_URL": proxy.url, "TELEGRAM_WEBHOOK_SECRET": SECRET,
                       # The day's jobs: the check-in question and the digest are due at
                       # start (both schedulers catch up at once); the reminder and the
                       # escalation not before 23:59.
                       "COSO_SCHEDULER": "true", "COSO_CHECK_IN_AT": "00:00",
                       "COSO_DIGEST_AT": "00:00", "COSO_REMINDER_AT": "23:59",
                       "COSO_ESCALATION_AFTER_MINUTES": "0", "COSO_WEEKDAYS_ONLY": "false"})
    return Process(name, process.argv, env, folder)


@pytest.fixture
async def tg() -> AsyncIterator[TelegramLike]:
    async with TelegramLike() as double:
        yield double


async def wait_for(what: str, predicate: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def scalar(db: Database, query: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(query) or 0)


# ---------------------------------------------------------------- the two processes

async def test_two_processes_behind_a_proxy_handle_everything_once_and_in_order(
        pg_url: str, tg: TelegramLike, tmp_path: Path) -> None:
    leaders = await seed(pg_url, PEOPLE)
    db = Database(pg_url)
    ports = [free_port(), free_port()]
    async with Proxy(ports) as proxy:
        bots = [bot_process(tg, pg_url, proxy, port, tmp_path, f"coso-{n}")
                for n, port in enumerate(ports)]
        try:
            # Both at once, so both schedulers catch the day's jobs up at the same moment;
            # each sets the same webhook, the proxy's address.
            ready = lambda: sum(1 for m, _ in tg.calls if m == "setMyCommands") >= 6  # noqa: E731
            await asyncio.gather(*(bot.start(ready) for bot in bots))

            # The day's jobs: each (job, ward) claimed once, the question reaching everyone.
            async def asked() -> bool:
                return sum(1 for m in tg.sent if FIRST_CHAT <= m.chat_id
                           < FIRST_CHAT + PEOPLE) >= PEOPLE

            async def finished() -> bool:
                return await scalar(db, select(func.count()).select_from(JobRun).where(
                    JobRun.finished_at.is_not(None))) >= 2

            await wait_for("the check-in question", asked)
            await wait_for("the day's jobs", finished)
            prompts = Counter(m.chat_id for m in tg.sent)
            assert all(prompts[leader.chat] == 1 for leader in leaders)
            tg.unexpected = 0

            began = time.monotonic()
            await asyncio.gather(enqueue_broadcast(db, BROADCAST, ref="directive"),
                                 *(person(tg, leader) for leader in leaders))
            handled_in = time.monotonic() - began

            async def sent() -> bool:
                return await scalar(db, select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.status != OutboxStatus.SENT)) == 0
            await wait_for("every outbox row sent", sent)
            for bot in bots:
                assert bot.proc is not None and bot.proc.returncode is None, bot.log.read_text()
        finally:
            for bot in bots:
                await bot.stop()
        served = dict(proxy.served)
        statuses = dict(proxy.statuses)
        logs = "\n".join(bot.log.read_text(errors="replace") for bot in bots)

    updates = PEOPLE * (STEPS + BURST)
    async with db.read() as session:
        ledgered = await session.scalar(select(func.count()).select_from(ProcessedUpdate))
        reports = await session.scalar(select(func.count()).select_from(Report))
        # A keyboard taken away is an edit, not a message: the double counts messages.
        rows = sum(1 for payload in (await session.scalars(select(OutboxMessage.payload)))
                   if not payload.get("extra", {}).get("keyboard_only"))
        runs = Counter((job, unit) for job, unit in (await session.execute(
            select(JobRun.job, JobRun.unit_id))).all())
    await db.dispose()
    print(f"two processes: {updates} updates in {handled_in:.1f}s "
          f"({updates / handled_in:.0f}/s) with a {BROADCAST}-message broadcast; "
          f"served {sorted(served.values())}, answers {statuses}, "
          f"{sum(served.values()) - updates} redelivered; {rows} outbox rows")

    # Every update once: each in the ledger, both processes took a share of them.
    assert ledgered == updates
    # The double (as Telegram) delivers again what it got no answer to in time; those
    # deliveries, whichever process they reached, were each found in the ledger.
    redelivered = sum(served.values()) - updates
    assert logs.count("already handled") == redelivered
    assert set(statuses) == {200}, "\n".join(
        line for line in logs.splitlines() if "WARNING" in line or "ERROR" in line)[-4000:]
    assert min(served.values()) > updates / 4
    assert reports == PEOPLE
    # Each job once, and every row sent once: as many messages as rows, none twice.
    assert {job for job, _ in runs} == {schedules.PROMPT, schedules.DIGEST}
    assert set(runs.values()) == {1}
    sends = [m for m in tg.sent if m.method in SENDS]  # not the keyboards' edits
    copies = Counter(m.chat_id for m in sends)
    assert len(sends) == rows
    assert all(copies[BROADCAST_CHAT + n] == 1 for n in range(BROADCAST))
    # Each person: the question, one reply per report step, then the burst's in order.
    for leader in leaders:
        texts = [m.text or "" for m in tg.messages_to(leader.chat) if m.method in SENDS]
        assert len(texts) == 1 + STEPS + BURST, texts
        assert [found.group(1) if (found := BURST_REPLY.search(text)) else text
                for text in texts[-BURST:]] == [
            burst_command(leader, n) for n in range(BURST)], texts[-BURST:]


def burst_command(leader: Leader, n: int) -> str:
    return f"z{leader.chat}n{n}"


async def person(tg: LoadDouble, leader: Leader) -> None:
    """One household report, answer after answer, then a burst of commands sent at once."""
    for _ in range(STEPS):
        await act(tg, leader, echo=False)
    def sent() -> int:  # messages, not the edits taking answered keyboards away
        return sum(1 for m in tg.messages_to(leader.chat) if m.method in SENDS)

    before = sent()
    for n in range(BURST):
        await tg.send_text(leader.chat, f"/{burst_command(leader, n)}", language_code="en")
    deadline = time.monotonic() + 60
    while sent() < before + BURST:
        assert time.monotonic() < deadline, "the burst's replies did not come"
        await asyncio.sleep(0.05)

