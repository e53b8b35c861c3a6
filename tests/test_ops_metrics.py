"""/metrics: scraped after real traffic through the Telegram double, and parsed with
prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.app import Runtime
from storage.models import utcnow
from tests.conftest import StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import register, say, start_telegram

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def fetch(port: int | None, path: str = "/metrics") -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{port}{path}") as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def scrape(runtime: Runtime) -> Samples:
    status, kind, body = await fetch(runtime.metrics.port)
    assert status == 200 and kind.startswith("text/plain; version=")
    return samples(sample for family in text_string_to_metric_families(body)
                   for sample in family.samples)


def samples(found: Iterable[Sample]) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for s in found}


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_real_traffic(start_bot: StartBot, tg: TelegramDouble) -> None:
    runtime = await start_telegram(start_bot, tg, COSO_METRICS="on", COSO_METRICS_PORT=0)
    before = await scrape(runtime)  # the counters live as long as the process: compare
    seeded = await seed_ward(runtime.db)

    await register(tg, 601, seeded.codes["leader:KP1"])  # a handled update, a sent reply
    update = await tg.send_text(601, "/help", language_code="en")
    await tg.wait_messages(601, 1)
    await tg.redeliver(update)  # Telegram thinks we missed it: the ledger refuses it
    tg.fail_next("sendMessage", 429, retry_after=1)
    await say(tg, 601, "/help")  # goes out after one 429
    await register(tg, 603, seeded.codes["leader:KP1:1"])
    ward_id = seeded.unit_ids["26734"]
    day = utcnow().astimezone(runtime.settings.tz).date()
    assert await runtime.scheduler.run("digest", ward_id, day, utcnow())
    assert not await runtime.scheduler.run("digest", ward_id, day, utcnow())  # done already
    try:
        async with runtime.db.read() as session:
            await session.execute(text("SELECT * FROM no_such_table"))
    except DBAPIError:
        pass

    after = await scrape(runtime)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("coso_updates_total", channel="telegram", outcome="handled") == 4
    assert grew("coso_updates_total", channel="telegram", outcome="duplicate") == 1
    assert grew("coso_turn_seconds_count", channel="telegram") == 5
    assert grew("coso_turn_seconds_bucket", channel="telegram", le="+Inf") == 5
    assert grew("coso_sends_total", channel="telegram", result="ok") >= 4
    assert grew("coso_sends_total", channel="telegram", result="429") == 1
    assert grew("coso_scheduler_runs_total", job="digest", outcome="ok") == 1
    assert grew("coso_scheduler_runs_total", job="digest", outcome="skipped") == 1
    assert grew("coso_digest_seconds_count") == 1
    assert sum(grew(name, kind=kind) for (name, labels) in after
               if name == "coso_database_errors_total"
               for key, kind in labels if key == "kind") >= 1
    assert value(after, "coso_outbox_depth", channel="telegram", priority="interactive") >= 0
    assert ("coso_outbox_depth", frozenset({("channel", "web"), ("priority", "bulk")})) in after
    # No person, chat or unit in any label.
    labels = {v for (_, pairs) in after for _, v in pairs}
    assert not labels & {"601", "602", "603", "26734", str(ward_id)}


async def test_metrics_stay_off_the_public_listener(start_bot: StartBot,
                                                     tg: TelegramDouble) -> None:
    private = await start_telegram(start_bot, tg, COSO_METRICS="on", COSO_METRICS_PORT=0)
    assert (await fetch(private.port))[0] == 404  # the public web server: no /metrics
    assert (await fetch(private.metrics.port, "/readyz"))[0] == 200
    await private.stop()

    off = await start_bot()
    assert off.metrics.port is None and (await fetch(off.port))[0] == 404

    public = await start_bot(COSO_METRICS="public")
    status, _, body = await fetch(public.port)
    assert status == 200 and "coso_updates_total" in body
