"""The bot on Zalo, driven only through the Zalo Bot API double, on both databases."""

from __future__ import annotations

import logging
import socket

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import Runtime
from bot.messages import Button, Outgoing
from storage.models import (
    ChatAccount,
    Invite,
    OutboxMessage,
    OutboxStatus,
    Person,
    ProcessedUpdate,
)
from tests.conftest import StartBot, seed_ward
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
