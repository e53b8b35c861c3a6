"""The bot on Zalo, driven only through the Zalo Bot API double, on both databases."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from datetime import UTC
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import Runtime
from bot.i18n import Translator
from bot.messages import Button, Outgoing
from bot.settings import SettingsError
from storage.models import (
    ChatAccount,
    Invite,
    OutboxMessage,
    OutboxStatus,
    Person,
    ProcessedUpdate,
)
from tests.conftest import StartBot, make_settings, seed_ward
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import eventually

USER = "zalo-user-1"


async def _bot(start_bot: StartBot, zalo: ZaloDouble, **extra: object) -> Runtime:
    return await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url, **extra)


async def _register(runtime: Runtime, zalo: ZaloDouble, user: str = USER) -> None:
    seeded = await seed_ward(runtime.db)
    await zalo.send_text(user, f"/start {seeded.codes['leader:KP1']}",
                         display_name="Lê Văn Cường")
    welcome = await zalo.next_message(user)
    assert "Khu phố 1, Phường Bến Thành, Thành phố Hồ Chí Minh" in (welcome.text or "")


async def test_registration_and_language_by_number_and_by_text(
        start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime = await _bot(start_bot, zalo)
    await _register(runtime, zalo)
    await zalo.send_text(USER, "/lang")
    menu = await zalo.next_message(USER)
    assert "1. Tiếng Việt" in (menu.text or "") and "2. English" in (menu.text or "")
    await zalo.send_text(USER, "2")
    assert (await zalo.next_message(USER)).text == "Language set to English."
    await zalo.send_text(USER, "/lang")
    await zalo.next_message(USER)
    await zalo.send_text(USER, "tieng viet")  # no diacritics, any case
    reply = await zalo.next_message(USER)
    assert reply.text != "Language set to English."
    async with runtime.db.read() as session:
        person = (await session.execute(select(Person))).scalar_one()
    assert person.locale == "vi"


async def test_a_bare_code_registers_and_a_bad_one_is_explained(
        start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime = await _bot(start_bot, zalo)
    seeded = await seed_ward(runtime.db)
    await zalo.send_text(USER, "ZZZZ2222")
    refusal = await zalo.next_message(USER)
    assert "ZZZZ2222" not in (refusal.text or "")
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 0
    await zalo.send_text(USER, seeded.codes["leader:KP2"].lower())
    welcome = await zalo.next_message(USER)
    assert "Khu phố 2" in (welcome.text or "")


async def test_the_same_update_twice_has_one_effect(start_bot: StartBot,
                                                    zalo: ZaloDouble) -> None:
    runtime = await _bot(start_bot, zalo)
    await _register(runtime, zalo)
    message_id = await zalo.send_text(USER, "/help")
    await zalo.next_message(USER)
    await zalo.redeliver(message_id)
    await zalo.expect_silence(USER, 0.6)
    async with runtime.db.read() as session:
        ledger = await session.scalar(select(func.count()).select_from(ProcessedUpdate)
                                      .where(ProcessedUpdate.update_id == message_id))
    assert ledger == 1


async def test_long_text_is_split_at_line_breaks(start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime = await _bot(start_bot, zalo)
    await _register(runtime, zalo)
    lines = [f"Dòng {i}: " + "nội dung " * 10 for i in range(50)]
    message = Outgoing("\n".join(lines), buttons=(Button("Đã nhận", "ack:1"),))
    await runtime.channel("zalo").deliver(USER, message)
    parts = await zalo.wait_messages(USER, 3)
    assert all(len(part.text or "") <= 2000 for part in parts)
    assert all((part.text or "").split("\n")[0].startswith("Dòng") for part in parts)
    assert (parts[-1].text or "").endswith("1. Đã nhận")
    assert "\n".join(p.text or "" for p in parts).count("Dòng") == 50


async def test_blocked_person_is_marked_and_not_retried(start_bot: StartBot,
                                                        zalo: ZaloDouble) -> None:
    runtime = await _bot(start_bot, zalo)
    await _register(runtime, zalo)
    await zalo.block_bot(USER)
    await zalo.send_text(USER, "/help")

    async def marked_failed() -> bool:
        async with runtime.db.read() as session:
            return await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status == OutboxStatus.FAILED)) == 1

    await eventually(marked_failed)  # the sender's first try is final: no retry follows
    await zalo.expect_silence(USER, 1.0)
    async with runtime.db.read() as session:
        account = (await session.execute(select(ChatAccount))).scalar_one()
        failed = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.FAILED))
    assert failed == 1
    # Writing to us again means they unblocked the bot.
    assert account.blocked_at is None or failed == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_needs_the_secret(start_bot: StartBot, zalo: ZaloDouble) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/webhook/zalo"
    runtime = await _bot(start_bot, zalo, COSO_WEB_PORT=port, ZALO_WEBHOOK_URL=url,
                         ZALO_WEBHOOK_SECRET="s3cret-s3cret")
    assert zalo.webhook_url == url and zalo.webhook_secret == "s3cret-s3cret"
    await _register(runtime, zalo)
    body = {"event_name": "message.text.received", "message": {
        "message_id": "forged-1", "text": "/help", "date": 1,
        "from": {"id": USER, "display_name": "X", "is_bot": False},
        "chat": {"id": USER, "chat_type": "PRIVATE"}}}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 401
    await zalo.expect_silence(USER, 0.5)
    async with runtime.db.read() as session:
        forged = await session.scalar(select(func.count()).select_from(ProcessedUpdate)
                                      .where(ProcessedUpdate.update_id == "forged-1"))
    assert forged == 0


GROUP = "zalo-group-1"


async def _nothing_registered(runtime: Runtime) -> None:
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 0
        assert await session.scalar(select(func.count()).select_from(ChatAccount).where(
            ChatAccount.external_id == GROUP)) == 0
        assert await session.scalar(select(func.count()).select_from(Invite).where(
            Invite.used_at.is_not(None))) == 0


@pytest.mark.parametrize("chat_type", ["GROUP", "group", "OA", None])
async def test_group_chats_are_ignored(start_bot: StartBot, zalo: ZaloDouble,
                                       caplog: pytest.LogCaptureFixture,
                                       chat_type: str | None) -> None:
    """Before: a group's "/start CODE" made the group a leader, so every member acted as
    that leader and household data went to the group."""
    caplog.set_level(logging.INFO)
    runtime = await _bot(start_bot, zalo)
    code = (await seed_ward(runtime.db)).codes["leader:KP1"]
    await zalo.send_group_text(GROUP, USER, f"/start {code}", chat_type=chat_type)
    await zalo.send_text(USER, "/help")  # handled after the group's: it had its chance
    await zalo.next_message(USER)
    await zalo.expect_silence(GROUP, 0.2)
    await _nothing_registered(runtime)
    [line] = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert "only private chats" in line.getMessage()
    for secret in (code, GROUP, USER, "Tester"):
        assert secret not in line.getMessage()


async def test_a_group_update_on_the_webhook_is_acknowledged_and_ignored(
        start_bot: StartBot, zalo: ZaloDouble) -> None:
    port = _free_port()
    runtime = await _bot(start_bot, zalo, COSO_WEB_PORT=port, ZALO_WEBHOOK_SECRET="s3cret-s3cret",
                         ZALO_WEBHOOK_URL=f"http://127.0.0.1:{port}/webhook/zalo")
    code = (await seed_ward(runtime.db)).codes["leader:KP1"]
    await zalo.send_group_text(GROUP, USER, f"/start {code}")
    await zalo.drain_webhook()
    assert (zalo.webhook_failures, zalo.webhook_dropped) == (0, 0)  # 200: not sent again
    await zalo.expect_silence(GROUP, 0.2)
    await _nothing_registered(runtime)


async def test_an_image_caption_is_read_as_its_text(start_bot: StartBot,
                                                    zalo: ZaloDouble) -> None:
    """As on Telegram (photo and text in one Incoming). Before: the caption was dropped, so
    a captioned command got "I did not understand that"."""
    runtime = await _bot(start_bot, zalo)
    await _register(runtime, zalo)
    await zalo.send_image(USER, caption="/lang")
    menu = await zalo.next_message(USER)
    assert "1. Tiếng Việt" in (menu.text or "") and "2. English" in (menu.text or "")
    await zalo.send_image(USER, caption="huỷ")  # a caption steers an open question too
    assert (await zalo.next_message(USER)).text == "Đã hủy; chưa lưu gì."


async def test_a_refused_token_stops_start_up_with_one_line(
        start_bot: StartBot, zalo: ZaloDouble, caplog: pytest.LogCaptureFixture) -> None:
    """Before: polling met 401 on every getUpdates, logged it and tried again, forever."""
    for extra in ({}, {"ZALO_WEBHOOK_URL": f"http://127.0.0.1:{_free_port()}/webhook/zalo",
                       "ZALO_WEBHOOK_SECRET": "s3cret-s3cret"}):
        with pytest.raises(SettingsError) as refused:
            await start_bot(ZALO_BOT_TOKEN="123:wrong", ZALO_API_BASE=zalo.base_url, **extra)
        assert str(refused.value) == ("ZALO_BOT_TOKEN: Zalo refused the token of bot 123 "
                                      "(401 Unauthorized): check it, or take a new one from "
                                      "the platform")
    assert [method for method, _ in zalo.calls] == ["getMe", "getMe"]  # nothing after it
    assert not [r for r in caplog.records if "123:wrong" in r.getMessage()]


async def test_coso_run_with_a_refused_token_exits_with_one_line(
        db_url: str, zalo: ZaloDouble, tmp_path: Path) -> None:
    only_sqlite(db_url)
    stderr = await coso_run(tmp_path, ZALO_BOT_TOKEN="123:wrong", ZALO_API_BASE=zalo.base_url)
    assert stderr == ["coso: ZALO_BOT_TOKEN: Zalo từ chối token của bot 123 (401 Unauthorized): "
                      "hãy kiểm tra lại, hoặc lấy token mới từ nền tảng"]


@pytest.mark.parametrize("secret", ["", "7-chars", "x" * 257])
async def test_a_webhook_secret_outside_8_to_256_characters_is_refused_at_start_up(
        db_url: str, zalo: ZaloDouble, tmp_path: Path, secret: str) -> None:
    """Before: found out only when setWebhook failed (7 or 257 characters: a traceback)."""
    only_sqlite(db_url)
    url = f"http://127.0.0.1:{_free_port()}/webhook/zalo"
    settings = {"ZALO_BOT_TOKEN": zalo.token, "ZALO_API_BASE": zalo.base_url,
                "ZALO_WEBHOOK_URL": url, "ZALO_WEBHOOK_SECRET": secret}
    with pytest.raises(SettingsError) as refused:
        make_settings(db_url, **settings)
    assert str(refused.value).startswith("ZALO_WEBHOOK_SECRET: ")
    assert "8 to 256" in str(refused.value) or "required" in str(refused.value)
    [line] = await coso_run(tmp_path, **settings)  # in Vietnamese, the default locale
    assert line == f"coso: {refused.value.say(Translator('vi', UTC))}"
    assert line.startswith("coso: ZALO_WEBHOOK_SECRET: ") and "8 to 256" not in line
    assert zalo.calls == []  # refused before anything was asked of Zalo
    for fine in ("8-chars!", "x" * 256):
        make_settings(db_url, **{**settings, "ZALO_WEBHOOK_SECRET": fine})


COSO = "import sys; from bot.cli import main; sys.exit(main())"  # the console script
REPOSITORY = Path(__file__).resolve().parents[1]


def only_sqlite(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("start-up checks do not involve the database: run once")


async def coso_run(tmp_path: Path, **env: str) -> list[str]:
    """`coso run` as a process, in Vietnamese (the default): its stderr lines once it exits
    (it must, within a minute, with code 2 and no traceback anywhere)."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("COSO_", "TELEGRAM_", "ZALO_"))}
    environment.update({"COSO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
                        "COSO_DATA_DIR": str(tmp_path / "data"), "COSO_WEB_PORT": "0",
                        "COSO_SCHEDULER": "false", "COSO_LOG_LEVEL": "WARNING", **env})
    environment["PYTHONPATH"] = str(REPOSITORY)  # this checkout's code
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", COSO, "run", cwd=tmp_path, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("coso run did not stop by itself") from None
    assert process.returncode == 2, stderr.decode()
    assert b"Traceback" not in stdout + stderr, stderr.decode()
    return stderr.decode().splitlines()
