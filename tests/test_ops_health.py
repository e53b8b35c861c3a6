"""/healthz and /readyz on the bot's own web server: each check asks the part it checks, and
a failure answers 503 naming it, with no personal data."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from bot.app import Runtime
from bot.ops import health
from storage.migrate import current_heads
from tests.conftest import StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import register, start_telegram


async def get(runtime: Runtime, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{runtime.port}{path}") as response:
        return response.status, await response.json()


async def test_ready_when_every_part_answers(start_bot: StartBot, tg: TelegramDouble) -> None:
    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    await register(tg, 501, seeded.codes["leader:KP1"])

    assert await get(runtime, "/healthz") == (200, {"status": "ok"})
    status, body = await get(runtime, "/readyz")

    assert status == 200, body
    assert body["status"] == "ok" and body["failed"] == []
    assert set(body["checks"]) == {"database", "migrations", "channel:telegram",
                                   "sender:telegram", "sender:web"}
    assert body["checks"]["migrations"]["database"] == body["checks"]["migrations"]["code"]
    assert body["checks"]["channel:telegram"]["last_success_seconds_ago"] < 60
    # Nothing about the people: no names, no invite codes, no chat ids.
    dumped = json.dumps(body, ensure_ascii=False)
    assert "Lê Văn" not in dumped and "501" not in dumped
    assert seeded.codes["leader:KP1"] not in dumped


async def test_not_ready_names_what_failed(start_bot: StartBot, tg: TelegramDouble,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = await start_telegram(start_bot, tg)
    assert (await get(runtime, "/readyz"))[0] == 200

    # Telegram goes away, and its last answer is now older than allowed: the probe fails.
    tg.set_unreachable(True)
    monkeypatch.setattr(health, "API_FRESH_SECONDS", 0.0)
    # The schema is behind the code (a deploy that skipped `coso db upgrade`).
    [head] = current_heads()
    await set_revision(runtime, "0003")
    # The web chat's sender has stopped.
    await runtime.senders["web"].stop()

    status, body = await get(runtime, "/readyz")

    assert status == 503
    assert body["status"] == "failing"
    assert sorted(body["failed"]) == ["channel:telegram", "migrations", "sender:web"]
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"]["database"] == ["0003"]
    assert "coso db upgrade" in body["checks"]["migrations"]["error"]
    assert body["checks"]["channel:telegram"]["error"].startswith("API not answering")
    assert body["checks"]["sender:web"] == {"ok": False, "error": "not running"}
    assert (await get(runtime, "/healthz"))[0] == 200  # the process itself is up

    tg.set_unreachable(False)  # Telegram is back: the probe (getMe) succeeds again
    await set_revision(runtime, head)  # the schema is as it was (the next tests migrate)
    status, body = await get(runtime, "/readyz")
    assert body["failed"] == ["sender:web"]


async def set_revision(runtime: Runtime, revision: str) -> None:
    async with runtime.db.transaction() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = :revision"),
                              {"revision": revision})


async def test_database_away_is_named(start_bot: StartBot, db_url: str, tmp_path: Path
                                      ) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the SQLite file is moved away; PostgreSQL's restart is in test_faults")
    runtime = await start_bot()
    database = Path(db_url.split("///", 1)[1])
    await runtime.db.dispose()  # no pooled connection keeps the old file open
    # A directory where the file was: SQLite cannot open it.
    await asyncio.to_thread(database.rename, tmp_path / "elsewhere.db")
    await asyncio.to_thread(database.mkdir)

    status, body = await get(runtime, "/readyz")

    assert status == 503
    assert "database" in body["failed"] and "migrations" in body["failed"]
    assert body["checks"]["database"]["error"] == "unable to open database file"


async def test_systemd_hears_ready_watchdog_and_stopping(
        start_bot: StartBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.setblocking(False)
    loop = asyncio.get_running_loop()

    async def hear() -> str:
        async with asyncio.timeout(5):
            return (await loop.sock_recv(listener, 64)).decode()

    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # 0.2 s: a ping every 0.1 s
    try:
        runtime = await start_bot()
        heard = [await hear() for _ in range(3)]
        await runtime.stop()
        while (line := await hear()) == "WATCHDOG=1":
            pass
    finally:
        listener.close()
    assert heard == ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]
    assert line == "STOPPING=1"
