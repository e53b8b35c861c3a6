"""A broadcast against the Telegram double enforcing its limits, with replies made meanwhile.

`python -m bench delivery [--recipients=N] [--rate=R] [--faults=P] [--paid]`; --paid: the
broadcast goes with allow_paid_broadcast, against the double's 1,000/s paid limit.
Prints the achieved rate ÷ limit (from the double's arrival times of all sends while the
broadcast ran) and the p50/p99 delay from enqueue to arrival of replies queued every half
second meanwhile.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.broadcast import FIRST_CHAT, enqueue_broadcast
from bot.app import Runtime
from bot.settings import load_settings
from storage import outbox
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import ChatAccount
from tests.doubles.telegram_api import TelegramDouble

REPLY_EVERY_SECONDS = 0.5
FIRST_REPLY_CHAT = 1_000


def option(argv: list[str], name: str, default: float) -> float:
    prefix = f"--{name}="
    return next((float(arg[len(prefix):]) for arg in argv if arg.startswith(prefix)), default)


async def main(argv: list[str]) -> None:
    recipients = int(option(argv, "recipients", 10_000))
    rate = option(argv, "rate", 30.0)
    faults = option(argv, "faults", 0.0)
    paid = "--paid" in argv
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        async with TelegramDouble() as tg:
            tg.rate_limit_per_second = rate
            tg.chat_rate_limit_per_second = 1
            tg.inject_random_faults(faults)
            tg.star_balance = recipients  # ten times what the broadcast costs
            started = time.monotonic()
            measured = await broadcast(url, tg, recipients, rate, paid)
            limit = tg.paid_rate_limit_per_second if paid else rate
            await report(measured, recipients, limit, faults)
            reached = len({m.chat_id for m in tg.sent if m.chat_id >= FIRST_CHAT})
            print(f"  {'paid ' if paid else ''}broadcast: {reached}/{recipients} recipients "
                  f"reached ({recipients - reached} lost), "
                  f"{measured[0][-1] - measured[0][0]:.1f} s first to last send, "
                  f"{time.monotonic() - started:.1f} s with set-up")
            print(f"  platform errors answered: {len(tg.failures)}")


async def broadcast(url: str, tg: TelegramDouble, recipients: int, rate: float,
                    paid: bool = False) -> tuple[list[float], list[float]]:
    """Arrival times of the broadcast, and the delays of the replies made while it ran."""
    await upgrade_async(url)
    db = Database(url)
    await enqueue_broadcast(db, recipients, paid=paid)
    settings = load_settings(_env_file=None, COSO_DATABASE_URL=url, COSO_WEB_PORT=0,
                             TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                             ZALO_BOT_TOKEN=None, COSO_SCHEDULER=False,
                             TELEGRAM_RATE_PER_SECOND=rate)
    runtime = Runtime(settings)
    await runtime.start()
    queued: dict[int, float] = {}
    try:
        while _bulk_count(tg) < recipients:
            chat = FIRST_REPLY_CHAT + len(queued)
            await _reply(db, chat)
            queued[chat] = time.monotonic()
            await asyncio.sleep(REPLY_EVERY_SECONDS)
        await asyncio.sleep(1.0)  # the last replies
    finally:
        await runtime.stop()
        await db.dispose()
    # Replies share the limit: the rate counts every send while the broadcast ran.
    bulk = sorted(m.at for m in tg.sent if m.chat_id >= FIRST_CHAT)
    arrivals = sorted(m.at for m in tg.sent if bulk[0] <= m.at <= bulk[-1])
    delays = [m.at - queued[m.chat_id] for m in tg.sent if m.chat_id in queued]
    return arrivals, delays


def _bulk_count(tg: TelegramDouble) -> int:
    return sum(1 for m in tg.sent if m.chat_id >= FIRST_CHAT)


async def _reply(db: Database, chat: int) -> None:
    async with db.transaction() as session:
        account = ChatAccount(channel="telegram", external_id=str(chat), locale="vi")
        session.add(account)
        await session.flush()
        outbox.enqueue(session, account, {"text": "Trả lời"}, priority=outbox.INTERACTIVE)


async def report(measured: tuple[list[float], list[float]], recipients: int, rate: float,
                 faults: float) -> None:
    arrivals, delays = measured
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    cuts = statistics.quantiles(delays, n=100)
    print(f"delivery: {recipients} recipients at {rate:g}/s (faults {faults:.0%}): "
          f"{len(arrivals)} sends during the broadcast, "
          f"achieved {achieved:.2f}/s = {achieved / rate:.1%} of the limit; "
          f"{len(delays)} replies meanwhile, enqueue→send p50 {cuts[49] * 1000:.0f} ms, "
          f"p99 {cuts[98] * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
