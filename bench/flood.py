"""One chat floods the bot while others use it, against the Telegram double enforcing its limits.

`python -m bench flood [--messages=1000] [--helps=20] [--recipients=2000] [--rate=30]
[--db=sqlite|postgresql]`

`coso run`'s runtime (polling, the real sender, aiogram) talks to the Telegram double, which
enforces 30 sends/s and 1/s per chat (429 `retry_after` 1 when exceeded). Two phases:

1. **replies**: one Telegram user sends --messages updates as fast as the double takes them,
   while another user sends --helps `/help`, one every 1.5 s; the figure is that other
   user's time from sending `/help` to the reply's arrival at the double (p50 / p99 / max).
2. **broadcast**: --recipients bulk messages are queued, and the flooding user floods again
   meanwhile; the figure is the sends accepted per second between the first and the last
   broadcast arrival (all sends counted), divided by the limit.

PostgreSQL: COSO_BENCH_POSTGRES_URL, else postgresql+asyncpg://postgres@127.0.0.1:5432/
coso_bench_flood (created when missing, emptied at each run).
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.broadcast import FIRST_CHAT, enqueue_broadcast
from bench.delivery import option
from bench.load import _empty_postgres
from bot.app import Runtime
from bot.settings import load_settings
from storage.db import Database
from storage.migrate import upgrade_async
from tests.doubles.telegram_api import TelegramDouble

FLOODER = 7_000
ASKER = 7_001
# Spaced wider than Telegram's 1 message/s to one chat: closer, the replies would queue behind
# each other whatever the flood.
HELP_EVERY_SECONDS = 1.5
WAIT_SECONDS = 30.0  # for the replies still missing once all is sent
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/coso_bench_flood"


async def main(argv: list[str]) -> None:
    messages = int(option(argv, "messages", 1000))
    helps = int(option(argv, "helps", 20))
    recipients = int(option(argv, "recipients", 2000))
    rate = option(argv, "rate", 30.0)
    kind = next((arg.split("=", 1)[1] for arg in argv if arg.startswith("--db=")), "sqlite")
    print(f"flood: {messages} updates from one chat, {helps} /help from another, then a "
          f"{recipients}-message broadcast at {rate:g}/s; {kind}; {datetime.now():%Y-%m-%d}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="coso-flood-") as folder:
        url = await _database(kind, Path(folder))
        async with TelegramDouble() as tg:
            tg.rate_limit_per_second = rate
            tg.chat_rate_limit_per_second = 1
            db = Database(url)
            runtime = Runtime(load_settings(
                _env_file=None, COSO_DATABASE_URL=url, COSO_WEB_PORT=0,
                COSO_DATA_DIR=str(Path(folder) / "data"), TELEGRAM_BOT_TOKEN=tg.token,
                TELEGRAM_API_BASE=tg.base_url, ZALO_BOT_TOKEN=None, COSO_SCHEDULER=False,
                TELEGRAM_RATE_PER_SECOND=rate))
            await runtime.start()
            try:
                delays = await replies_phase(tg, messages, helps)
                print(describe_replies(delays), flush=True)
                print(await broadcast_phase(tg, db, messages, recipients, rate), flush=True)
            finally:
                await runtime.stop()
                await db.dispose()
            print(f"flood: replies sent to the flooding chat: {len(tg.messages_to(FLOODER))} "
                  f"for {2 * messages} updates")


def describe_replies(delays: list[float]) -> str:
    cuts = {p: _percentile(delays, p) for p in (50, 99)}
    missing = sum(1 for delay in delays if delay == float("inf"))
    return (f"flood: the other chat's /help → reply: p50 {_ms(cuts[50])}, p99 {_ms(cuts[99])}, "
            f"max {_ms(max(delays))}; {missing} of {len(delays)} unanswered "
            f"{WAIT_SECONDS:.0f} s after the last ({'ok' if cuts[99] < 1.0 else 'MISSED'}: "
            "p99 < 1 s)")


async def _database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'flood.db'}"
    else:
        url = os.environ.get("COSO_BENCH_POSTGRES_URL") or POSTGRES_URL
        await _empty_postgres(url)
    await upgrade_async(url)
    return url


async def flood(tg: TelegramDouble, count: int) -> None:
    for n in range(count):
        await tg.send_text(FLOODER, f"/help {n}", language_code="en")
        if n % 100 == 99:
            await asyncio.sleep(0.5)  # a thousand in a few seconds, as a script sends them


async def replies_phase(tg: TelegramDouble, messages: int, helps: int) -> list[float]:
    """The other chat's delays (inf: no reply within WAIT_SECONDS), sent every 1.5 s from
    when the flood starts: the i-th reply answers the i-th /help."""
    flooding = asyncio.create_task(flood(tg, messages))
    sent = []
    for _ in range(helps):
        sent.append(time.monotonic())
        await tg.send_text(ASKER, "/help", language_code="en")
        await asyncio.sleep(HELP_EVERY_SECONDS)
    await flooding
    await tg._wait_sent(lambda: len(tg.messages_to(ASKER)) >= helps, WAIT_SECONDS)
    arrived = [m.at for m in tg.messages_to(ASKER)]
    return [arrived[i] - sent[i] if i < len(arrived) else float("inf") for i in range(helps)]


async def broadcast_phase(tg: TelegramDouble, db: Database, messages: int,
                          recipients: int, rate: float) -> str:
    """Sends per second while the broadcast ran (until done, or a deadline well past what
    the limit allows), with a second flood under way."""
    await enqueue_broadcast(db, recipients)
    began = time.monotonic()
    await flood(tg, messages)
    await tg._wait_sent(lambda: _bulk(tg) >= recipients, recipients / rate * 1.5 + WAIT_SECONDS)
    bulk = sorted(m.at for m in tg.sent if m.chat_id >= FIRST_CHAT)
    if len(bulk) < 2:
        return (f"flood: broadcast with the flood: {len(bulk)} of {recipients} sent in "
                f"{time.monotonic() - began:.0f} s (MISSED: ≥ 95% of the limit)")
    end = bulk[-1] if len(bulk) == recipients else time.monotonic()
    arrivals = [m.at for m in tg.sent if bulk[0] <= m.at <= end]
    achieved = (len(arrivals) - 1) / (end - bulk[0])
    return (f"flood: broadcast with the flood: {len(bulk)} of {recipients} sent, all sends "
            f"{achieved:.2f}/s = {achieved / rate:.1%} of the limit "
            f"({'ok' if achieved / rate >= 0.95 else 'MISSED'}: ≥ 95%)")


def _bulk(tg: TelegramDouble) -> int:
    return sum(1 for m in tg.sent if m.chat_id >= FIRST_CHAT)


def _ms(seconds: float) -> str:
    return "never" if seconds == float("inf") else f"{seconds * 1000:,.0f} ms"


def _percentile(values: list[float], p: int) -> float:
    """Nearest rank: defined when some values are infinite (never answered)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
