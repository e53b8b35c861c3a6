"""`coso doctor` against the Telegram and Zalo doubles, a running bot and a real data
directory: every check green, then each kind of failure named."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import text

from bot.i18n import Translator
from bot.ops import doctor
from storage.db import Database
from storage.migrate import current_heads
from tests.conftest import Coso, StartBot
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import free_port

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def statuses(out: str) -> dict[str, str]:
    return {item["check"]: item["status"] for item in json.loads(out)}


def details(out: str) -> dict[str, str]:
    return {item["check"]: item["detail"] for item in json.loads(out)}


@pytest.fixture
def configured(coso: Coso, tg: TelegramDouble, zalo: ZaloDouble, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    for name, value in (("TELEGRAM_BOT_TOKEN", tg.token), ("TELEGRAM_API_BASE", tg.base_url),
                        ("ZALO_BOT_TOKEN", zalo.token), ("ZALO_API_BASE", zalo.base_url),
                        ("COSO_DATA_DIR", str(data))):
        monkeypatch.setenv(name, value)
    return data


async def test_all_green_with_a_running_bot(configured: Path, coso: Coso,
                                            start_bot: StartBot,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = await start_bot()  # what COSO_PUBLIC_URL reaches (through a proxy, in life)
    monkeypatch.setenv("COSO_PUBLIC_URL", f"http://127.0.0.1:{runtime.port}")

    code, out, err = await coso("doctor", "--json")

    assert code == 0, out + err
    found = statuses(out)
    assert found == {"settings": "ok", "settings.https": "warn", "event_loop": "ok",
                     "timezone": "ok",
                     "database": "ok", "migrations": "ok", "telegram.token": "ok",
                     "telegram.webhook": "ok", "zalo.token": "ok", "zalo.webhook": "ok",
                     "public_url": "ok", "data_dir.space": "ok"}
    said = details(out)
    assert said["telegram.token"] == "accepted: @coso_test_bot"
    assert said["telegram.webhook"] == "none: long polling"
    # The time as every other command writes it (Babel, the full year), not ISO.
    now = datetime.now(HCM)
    day = re.escape(Translator("en", HCM).date(now))  # Dec 7, 2026
    assert re.fullmatch(rf"Asia/Ho_Chi_Minh \(UTC\+07:00\): now {day} at \d{{1,2}}:\d\d\s[AP]M",
                        said["timezone"]), said
    code, out, _ = await coso("--lang", "vi", "doctor")
    [line] = [line for line in out.splitlines() if line.startswith("Múi giờ")]
    assert re.search(rf"Asia/Ho_Chi_Minh \(UTC\+07:00\): bây giờ là "
                     rf"{now.day}/{now.month}/{now.year} lúc \d\d:\d\d$", line), line
    assert said["settings.https"] == "COSO_PUBLIC_URL is not HTTPS: the platforms need HTTPS"


async def test_each_failure_is_named_and_exits_1(
        configured: Path, coso: Coso, db: Database, tg: TelegramDouble,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:not-the-token")
    monkeypatch.setenv("COSO_PUBLIC_URL", f"https://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://coso.example.vn/webhook/telegram")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret-path")
    await asyncio.to_thread(configured.chmod, 0o755)
    async with db.transaction() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    try:
        code, out, _ = await coso("doctor", "--json")
        monkeypatch.setenv("COSO_DEFAULT_LOCALE", "vi")
        vi_code, table, _ = await coso("doctor")
    finally:
        async with db.transaction() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = :head"),
                                  {"head": current_heads()[0]})

    assert code == 1
    found = statuses(out)
    assert found["telegram.token"] == "fail"
    assert "telegram.webhook" not in found  # nothing to ask with a refused token
    assert found["migrations"] == "fail" and found["public_url"] == "fail"
    assert found["data_dir.permissions"] == "warn"
    said = details(out)
    assert said["telegram.token"] == "refused by the platform (401): check the token"
    assert "run `coso db upgrade`" in said["migrations"]
    assert said["public_url"].endswith("unreachable: nothing answers there; check that the "
                                       "reverse proxy is running and its port is open")
    assert "chmod 700" in said["data_dir.permissions"]
    assert vi_code == 1
    assert "LỖI" in table and "Cơ sở dữ liệu" in table  # the table in Vietnamese
    # The default bot is named by its id, as the others are; no exception's class name.
    assert [line for line in table.splitlines() if line.startswith("Token Telegram 123456 ")]
    for said_there in (out, table):
        assert not EXCEPTION_NAME.search(said_there), said_there


EXCEPTION_NAME = re.compile(r"[A-Z][A-Za-z]+(Error|Exception)\b")


async def test_each_unreachable_part_is_a_sentence_saying_what_to_do(
        configured: Path, coso: Coso, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: "API not reached: TelegramNetworkError", "cannot reach it: OperationalError",
    "unreachable: ClientConnectorError"."""
    # Bound and held, never listening: connections are refused, and no other test's double
    # can take the port meanwhile (a free port picked and let go once was, under xdist).
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        monkeypatch.setenv("TELEGRAM_API_BASE", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("ZALO_API_BASE", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("COSO_DATABASE_URL",
                           f"sqlite+aiosqlite:///{configured / 'missing' / 'coso.db'}")
        monkeypatch.setenv("COSO_PUBLIC_URL", "https://coso.invalid")
        code, out, _ = await coso("doctor", "--json")
        monkeypatch.setenv("COSO_DEFAULT_LOCALE", "vi")
        vi_code, table, _ = await coso("doctor")
    assert (code, vi_code) == (1, 1)
    said = details(out)
    assert said["telegram.token"] == (
        f"the Telegram API (http://127.0.0.1:{port}) is not reached from this machine: check "
        "the network, a firewall or proxy, and TELEGRAM_API_BASE")
    assert said["zalo.token"].startswith("the Zalo API (")
    assert said["zalo.token"].endswith("and ZALO_API_BASE")
    assert said["database"].startswith("cannot reach it now: check that the database server")
    assert said["public_url"] == ("https://coso.invalid/healthz unreachable: its name does "
                                  "not resolve from here; check COSO_PUBLIC_URL and the "
                                  "name's DNS record")
    assert "từ máy này không kết nối được API Telegram" in table
    for said_there in (out, table):
        assert not EXCEPTION_NAME.search(said_there), said_there


@pytest.mark.parametrize(("locale", "figure"), [("vi", "1.234,5 GB"), ("en", "1,234.5 GB")])
async def test_free_space_is_written_in_the_readers_locale(
        configured: Path, coso: Coso, monkeypatch: pytest.MonkeyPatch, locale: str,
        figure: str) -> None:
    """Babel's figures: before, Python's "1234.5 GB" whatever the language."""
    free = int(1234.5 * 1024 ** 3)
    monkeypatch.setattr(doctor.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(2 * free, free, free))  # type: ignore[attr-defined]
    monkeypatch.setenv("COSO_DEFAULT_LOCALE", locale)
    _, table, _ = await coso("doctor")
    [line] = [line for line in table.splitlines() if str(configured) in line]
    assert line.endswith(f"{configured}: còn trống {figure}" if locale == "vi"
                         else f"{configured}: {figure} free")


async def test_uvloop_asked_for_and_missing_fails_naming_the_setting(
        configured: Path, coso: Coso, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: doctor said nothing, and coso run then stopped at start."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it is not installed
    monkeypatch.setenv("COSO_EVENT_LOOP", "uvloop")
    code, out, _ = await coso("doctor", "--json")
    assert code == 1 and statuses(out)["event_loop"] == "fail"
    assert details(out)["event_loop"] == ("COSO_EVENT_LOOP=uvloop, but uvloop is not "
                                          "installed: pip install 'coso-bot[fast]', or set "
                                          "COSO_EVENT_LOOP=asyncio")
    monkeypatch.setenv("COSO_EVENT_LOOP", "auto")
    code, out, _ = await coso("doctor", "--json")
    assert statuses(out)["event_loop"] == "ok"


async def test_webhook_pointing_elsewhere_fails(configured: Path, coso: Coso,
                                                tg: TelegramDouble,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://coso.example.vn/webhook/telegram")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret-path")
    code, out, _ = await coso("doctor", "--json")
    assert statuses(out)["telegram.webhook"] == "warn"  # not set yet: coso run sets it

    async with aiohttp.ClientSession() as http:  # another bot set its own webhook
        await http.post(f"{tg.base_url}/bot{tg.token}/setWebhook",
                        json={"url": "https://old.example.vn/hook"})
    code, out, _ = await coso("doctor", "--json")
    assert code == 1 and statuses(out)["telegram.webhook"] == "fail"
    assert "https://old.example.vn/hook" in details(out)["telegram.webhook"]
