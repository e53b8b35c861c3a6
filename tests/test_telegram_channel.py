"""The bot on Telegram, driven only through the Bot API double, on both databases.

Users here write from an English Telegram app (language_code="en"), so the replies asserted
on stay English whatever the Vietnamese catalog says; elsewhere the tests check state.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

import bot.handlers.router as router_module
from bot.channels.base import DeliveryError
from bot.channels.telegram import TelegramChannel
from bot.messages import Button, Outgoing
from bot.settings import SettingsError, load_settings
from bot.turn import Turn
from storage import invites
from storage.models import (
    ChatAccount,
    OutboxMessage,
    OutboxStatus,
    Person,
    ProcessedUpdate,
    utcnow,
)
from tests.conftest import StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import SECRET_HEADER, TelegramDouble
from tests.telegram_helpers import (
    UNIT_PATH,
    answered,
    counts,
    data_for,
    eventually,
    free_port,
    register,
    replies,
    say,
    send_unsupported,
    start_telegram,
    tap,
    texts,
)

USER = 1001
OTHER = 1002


# ---------------------------------------------------------------- registration


async def test_registration_welcomes_with_the_unit_path(tg: TelegramDouble,
                                                        start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    [welcome] = await say(tg, USER, f"/start {seeded.codes['leader:KP1']}")
    assert UNIT_PATH in (welcome.text or "") and "Lê Văn Cường" in (welcome.text or "")
    async with runtime.db.read() as session:
        account = (await session.execute(select(ChatAccount))).scalar_one()
        person = (await session.execute(select(Person))).scalar_one()
    assert (account.channel, account.external_id, account.person_id) == (
        "telegram", str(USER), person.id)
    assert (await counts(runtime.db))["roles"] == 1


async def test_bad_used_and_expired_codes_bind_nothing(tg: TelegramDouble,
                                                       start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    await register(tg, OTHER, seeded.codes["leader:KP1"])  # now that code is used
    expired = seeded.codes["leader:KP2"]
    async with runtime.db.transaction() as session:
        invite = await invites.find(session, expired)
        assert invite is not None
        invite.expires_at = utcnow() - timedelta(minutes=1)
    before = await counts(runtime.db)
    [bad] = await say(tg, USER, "/start ZZZZ2222")
    # The registration question stays open: the next codes are answers to it.
    [used] = await say(tg, USER, seeded.codes["leader:KP1"])
    [late] = await say(tg, USER, expired.lower())
    assert "not valid" in (bad.text or "") and "ZZZZ2222" not in (bad.text or "")
    assert "already been used" in (used.text or "")
    assert "expired" in (late.text or "")
    after = await counts(runtime.db)
    assert (after["people"], after["roles"], after["invites used"]) == (
        before["people"], before["roles"], before["invites used"])
    async with runtime.db.read() as session:
        account = await session.scalar(select(ChatAccount).where(
            ChatAccount.external_id == str(USER)))
    assert account is not None and account.person_id is None


# ---------------------------------------------------------------- language and buttons


async def test_language_buttons_stale_taps_and_shortcut(tg: TelegramDouble,
                                                        start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    await register(tg, USER, (await seed_ward(runtime.db)).codes["leader:KP1"])
    [menu] = await say(tg, USER, "/lang")
    # The first (and only) step: Cancel under the choices, as the steering row, last.
    assert menu.button_texts == ["Tiếng Việt", "English", "Cancel"]
    assert all(len(row) == 1 for row in menu.buttons)  # one button per row
    await tg.tap(USER, data_for(menu, "English"))
    [done] = await answered(tg, USER)  # the answered question's keyboard taken away first
    assert done.text == "Language set to English."
    assert len(tg.callback_answers) == 1  # the spinner stopped

    [older] = await say(tg, USER, "/lang")
    newer = await say(tg, USER, "/lang", count=2)  # "stopped ..." and the new question
    assert newer[-1].button_texts == ["Tiếng Việt", "English", "Cancel"]
    [stale] = await tap(tg, USER, data_for(older, "Tiếng Việt"), message_id=older.message_id)
    assert stale.text == "This question is no longer open."
    assert len(tg.callback_answers) == 2
    assert await _locale(runtime) == "en"

    await tg.send_text(USER, "/lang vi", language_code="en")
    await tg.wait_messages(USER, 2)  # "stopped ..." and the confirmation
    assert await _locale(runtime) == "vi"


async def _locale(runtime: Any) -> str | None:
    async with runtime.db.read() as session:
        return (await session.execute(select(Person.locale))).scalar_one()


# ---------------------------------------------------------------- commands and roles


async def test_help_unknown_commands_and_roles(tg: TelegramDouble, start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    [stranger_help] = await say(tg, USER, "/help")
    assert "/start" in (stranger_help.text or "") and "/checkin" not in (stranger_help.text or "")
    [unknown] = await say(tg, USER, "/frobnicate now")
    assert "I do not know the command /frobnicate" in (unknown.text or "")
    [refused] = await say(tg, USER, "/checkin")
    assert "not registered yet" in (refused.text or "")

    await register(tg, USER, seeded.codes["leader:KP1"])
    [leader_help] = await say(tg, USER, "/help")
    assert UNIT_PATH in (leader_help.text or "") and "/checkin" in (leader_help.text or "")

    await register(tg, OTHER, seeded.codes["monitor:WARD"], unit="Phường Bến Thành")
    [monitor] = await say(tg, OTHER, "/checkin")
    assert "only for" in (monitor.text or "") and "leader" in (monitor.text or "")


async def test_command_menu_is_set_in_vietnamese_and_english(tg: TelegramDouble,
                                                             start_bot: StartBot) -> None:
    await start_telegram(start_bot, tg)
    assert {"vi", "en", ""} <= tg.my_commands.keys()  # "": any other app language
    for language in ("vi", "en", ""):
        names = [command["command"] for command in tg.my_commands[language]]
        assert {"start", "help", "lang"} <= set(names), language
    english = {c["command"]: c["description"] for c in tg.my_commands["en"]}
    assert english["help"] == "What I can do for you"


# ---------------------------------------------------------------- restarts and redelivery


async def test_a_restart_mid_question_resumes_at_the_same_step(tg: TelegramDouble,
                                                               start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    await register(tg, USER, (await seed_ward(runtime.db)).codes["leader:KP1"])
    [menu] = await say(tg, USER, "/lang")
    await runtime.stop()

    restarted = await start_telegram(start_bot, tg)
    [done] = await tap(tg, USER, data_for(menu, "English"))
    assert done.text == "Language set to English."
    [again] = await say(tg, USER, "/lang")
    await restarted.stop()
    await start_telegram(start_bot, tg)
    [typed] = await say(tg, USER, "english")  # typing the option works as well as tapping
    assert typed.text == "Language set to English." and again.buttons


async def test_the_same_update_twice_has_one_effect(tg: TelegramDouble,
                                                    start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    await register(tg, USER, (await seed_ward(runtime.db)).codes["leader:KP1"])
    update_id = await tg.send_text(USER, "/help", language_code="en")
    await tg.next_message(USER)
    await tg.redeliver(update_id)
    await tg.expect_silence(USER, 0.6)
    async with runtime.db.read() as session:
        ledger = await session.scalar(select(func.count()).select_from(ProcessedUpdate).where(
            ProcessedUpdate.update_id == str(update_id)))
    assert ledger == 1


async def test_a_failed_update_is_retried_while_polling(
        tg: TelegramDouble, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch) -> None:
    await start_telegram(start_bot, tg)
    _fail_once(monkeypatch)
    [reply] = await say(tg, USER, "/help")
    assert "/start" in (reply.text or "")
    await tg.expect_silence(USER, 0.3)


def _fail_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The core fails on the next update (say, the database blinked), then recovers."""
    failures: list[int] = []
    real = router_module.dispatch

    async def flaky(turn: Turn) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("database went away")
        await real(turn)

    monkeypatch.setattr(router_module, "dispatch", flaky)
    return failures


# ---------------------------------------------------------------- webhook mode


async def _webhook_bot(tg: TelegramDouble, start_bot: StartBot) -> tuple[Any, str]:
    port = free_port()  # the webhook URL must name the port before the bot starts
    url = f"http://127.0.0.1:{port}/webhook/telegram"
    runtime = await start_telegram(start_bot, tg, COSO_WEB_PORT=port, TELEGRAM_WEBHOOK_URL=url,
                                   TELEGRAM_WEBHOOK_SECRET="s3cret_s3cret-1")
    assert (tg.webhook_url, tg.webhook_secret) == (url, "s3cret_s3cret-1")
    return runtime, url


async def test_webhook_mode_needs_the_secret(tg: TelegramDouble, start_bot: StartBot) -> None:
    runtime, url = await _webhook_bot(tg, start_bot)
    await register(tg, USER, (await seed_ward(runtime.db)).codes["leader:KP1"])
    forged = {"update_id": 900001, "message": {
        "message_id": 1, "date": 1, "text": "/help",
        "chat": {"id": USER, "type": "private", "first_name": "X"},
        "from": {"id": USER, "is_bot": False, "first_name": "X"}}}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {SECRET_HEADER: "wrong"}):
            async with http.post(url, json=forged, headers=headers) as response:
                assert response.status == 401
    await tg.expect_silence(USER, 0.4)
    async with runtime.db.read() as session:
        processed = await session.scalar(select(func.count()).select_from(ProcessedUpdate)
                                         .where(ProcessedUpdate.update_id == "900001"))
    assert processed == 0


async def test_webhook_failure_answers_5xx_and_telegram_redelivers(
        tg: TelegramDouble, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch) -> None:
    await _webhook_bot(tg, start_bot)
    failures = _fail_once(monkeypatch)
    [reply] = await say(tg, USER, "/help")
    assert "/start" in (reply.text or "") and failures == [1]
    assert tg.webhook_failures == 1
    await tg.drain_webhook()
    await tg.expect_silence(USER, 0.3)


async def test_webhook_url_without_a_secret_is_refused() -> None:
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET: required"):
        load_settings(_env_file=None, TELEGRAM_WEBHOOK_URL="https://example.org/webhook/telegram")


# ---------------------------------------------------------------- delivery errors


async def test_429_and_502_are_retried_and_arrive_once(
        tg: TelegramDouble, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch) -> None:
    # The sender looks for due retries this often when nothing wakes it; 2 s in production.
    monkeypatch.setattr("bot.delivery.IDLE_POLL_SECONDS", 0.1)
    runtime = await start_telegram(start_bot, tg)
    await register(tg, USER, (await seed_ward(runtime.db)).codes["leader:KP1"])
    for status in (429, 502):
        tg.fail_next("sendMessage", status, retry_after=1 if status == 429 else None)
        [reply] = await say(tg, USER, "/help")
        assert UNIT_PATH in (reply.text or "")
        await tg.expect_silence(USER, 0.2)
    assert [f.status for f in tg.failures] == [429, 502]
    async with runtime.db.read() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert {row.status for row in rows} == {OutboxStatus.SENT}


async def test_a_blocked_bot_fails_the_row_for_good(tg: TelegramDouble,
                                                    start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    await register(tg, USER, (await seed_ward(runtime.db)).codes["leader:KP1"])
    [menu] = await say(tg, USER, "/lang")
    await tg.block_bot(USER)
    await tg.tap(USER, data_for(menu, "English"))  # a tap does not unblock; a message would

    async def failed() -> bool:
        async with runtime.db.read() as session:
            statuses = (await session.execute(select(OutboxMessage.status))).scalars().all()
        return OutboxStatus.FAILED in statuses

    await eventually(failed)
    await tg.expect_silence(USER, 0.3)
    async with runtime.db.read() as session:
        account = (await session.execute(select(ChatAccount))).scalar_one()
        row = (await session.execute(select(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.FAILED))).scalar_one()
    assert account.blocked_at is not None and row.attempts == 1
    assert [f.status for f in tg.failures] == [403]


# ---------------------------------------------------------------- bad input


async def test_bad_input_gets_an_answer_and_writes_nothing(tg: TelegramDouble,
                                                           start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    code = (await seed_ward(runtime.db)).codes["leader:KP1"]
    [question] = await say(tg, USER, "/start")
    assert "invite code" in (question.text or "")
    before = await counts(runtime.db)
    nfd = unicodedata.normalize("NFD", f"Mã mời của tôi là {code}, cảm ơn")
    for text, reason in [("   ", "empty message"),
                         ("x" * 10_000, "10,000 characters"),
                         ("🙂🙏", "not valid"),
                         (nfd, "not valid")]:
        [reply] = await say(tg, USER, text)
        assert reason in (reply.text or ""), (text[:20], reply.text)
    await tg.send_photo(USER, caption=code)  # the code as a photo caption is still a photo
    await tg.send_document(USER)
    await send_unsupported(tg, USER, {"sticker": _sticker()})
    await send_unsupported(tg, USER, {"location": {"latitude": 10.77, "longitude": 106.7}})
    # Each re-asked question takes the previous one's keyboard away (passed over here).
    answers = await replies(tg, USER, 4)
    assert texts(answers).count("Please answer in text") == 4
    after = await counts(runtime.db)
    assert after["ledger"] == before["ledger"] + 8
    assert {k: v for k, v in after.items() if k not in ("ledger", "outbox")} == {
        k: v for k, v in before.items() if k not in ("ledger", "outbox")}
    [welcome] = await say(tg, USER, f"  {code.lower()} ")  # the question is still open
    assert UNIT_PATH in (welcome.text or "")


def _sticker() -> dict[str, Any]:
    return {"file_id": "CAAC-sticker", "file_unique_id": "u-sticker", "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False}


async def test_group_chats_are_ignored(tg: TelegramDouble, start_bot: StartBot) -> None:
    runtime = await start_telegram(start_bot, tg)
    group = -100123
    message = {"message_id": 5, "date": 1, "text": "/help",
               "chat": {"id": group, "type": "supergroup", "title": "KP1"},
               "from": {"id": USER, "is_bot": False, "first_name": "X"}}
    await tg._new_update("message", message)  # noqa: SLF001 - the double has no group chats
    await say(tg, USER, "/help")  # handled after the group message: it had its chance
    await tg.expect_silence(group, 0.1)
    assert (await counts(runtime.db))["accounts"] == 1


# ---------------------------------------------------------------- rendering (no database)


@pytest.fixture
async def channel(tg: TelegramDouble) -> AsyncIterator[TelegramChannel]:
    settings = load_settings(_env_file=None, TELEGRAM_BOT_TOKEN=tg.token,
                             TELEGRAM_API_BASE=tg.base_url)
    telegram = TelegramChannel(settings, lambda locale: [])
    yield telegram
    await telegram.stop()


async def test_long_text_is_split_with_buttons_on_the_last_part(
        tg: TelegramDouble, channel: TelegramChannel) -> None:
    lines = [f"Dòng {i}: " + "nội dung báo cáo " * 8 for i in range(80)]
    label = "Đã nhận chỉ đạo của Ban Chỉ đạo phòng, chống dịch phường Bến Thành hôm nay"
    await channel.deliver(str(USER), Outgoing("\n".join(lines), (Button(label, "ack:1"),)))
    parts = await tg.wait_messages(USER, 3)
    assert all(len(part.text or "") <= 4096 for part in parts)
    assert all((part.text or "").startswith("Dòng") for part in parts)
    assert [bool(part.buttons) for part in parts] == [False] * (len(parts) - 1) + [True]
    [shown] = parts[-1].button_texts
    assert len(shown) <= 64 and shown.endswith("…")
    assert "\n".join(p.text or "" for p in parts).count("Dòng") == 80


async def test_a_429_mid_message_says_how_many_parts_went_and_the_retry_sends_the_rest(
        tg: TelegramDouble, channel: TelegramChannel) -> None:
    tg.rate_limit_per_second = 2  # the third part of one message hits flood control
    text = "\n".join(f"Phần {i}: " + "x" * 3000 for i in range(3))
    with pytest.raises(DeliveryError) as caught:
        await channel.deliver(str(USER), Outgoing(text))
    assert (caught.value.parts_sent, caught.value.retry_after) == (2, 1.0)
    await asyncio.sleep(1.0)
    await channel.deliver(str(USER), Outgoing(text), skip_parts=caught.value.parts_sent)
    parts = await tg.wait_messages(USER, 3)
    assert [(p.text or "")[:6] for p in parts] == ["Phần 0", "Phần 1", "Phần 2"]
    assert [f.status for f in tg.failures] == [429]
    await tg.expect_silence(USER, 0.1)


async def test_photos_and_documents(tg: TelegramDouble, channel: TelegramChannel,
                                    tmp_path: Path) -> None:
    picture = tmp_path / "anh.png"
    picture.write_bytes(b"\x89PNG fake")
    sheet = tmp_path / "x.xlsx"
    sheet.write_bytes(b"PK fake")
    await channel.deliver(str(USER), Outgoing("Ảnh hiện trường", photo=str(picture)))
    await channel.deliver(str(USER), Outgoing("Báo cáo", document=str(sheet),
                                              filename="bao-cao-KP1.xlsx"))
    await channel.deliver(str(USER), Outgoing("a" * 1500, photo="https://example.org/a.jpg",
                                              buttons=(Button("OK", "ok"),)))
    photo, document, bare, text = await tg.wait_messages(USER, 4)
    assert (photo.photo, photo.text) == (b"\x89PNG fake", "Ảnh hiện trường")
    assert (document.document, document.filename) == (b"PK fake", "bao-cao-KP1.xlsx")
    assert (bare.photo, bare.text, bare.buttons) == ("https://example.org/a.jpg", None, [])
    assert text.text == "a" * 1500 and text.button_texts == ["OK"]
    with pytest.raises(DeliveryError) as missing:
        await channel.deliver(str(USER), Outgoing("x", photo=str(tmp_path / "gone.png")))
    assert missing.value.permanent


@pytest.mark.parametrize(("status", "permanent", "blocked", "retry_after"), [
    (429, False, False, 3.0), (502, False, False, None), (500, False, False, None),
    (403, True, True, None), (400, True, False, None), (401, True, False, None)])
async def test_api_errors_map_to_delivery_errors(
        tg: TelegramDouble, channel: TelegramChannel, status: int, permanent: bool,
        blocked: bool, retry_after: float | None) -> None:
    tg.fail_next("sendMessage", status, retry_after=3 if status == 429 else None)
    with pytest.raises(DeliveryError) as caught:
        await channel.deliver(str(USER), Outgoing("Xin chào"))
    error = caught.value
    assert (error.permanent, error.blocked, error.retry_after) == (permanent, blocked,
                                                                  retry_after)
    assert "Xin chào" not in error.reason


async def test_an_unreachable_api_is_a_retryable_error(tg: TelegramDouble,
                                                       channel: TelegramChannel) -> None:
    tg.set_unreachable(True)
    with pytest.raises(DeliveryError) as caught:
        await channel.deliver(str(USER), Outgoing("Xin chào"))
    assert not caught.value.permanent


async def test_start_refuses_a_token_telegram_does_not_know(tg: TelegramDouble) -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", TELEGRAM_BOT_TOKEN="999:nope",
                             TELEGRAM_API_BASE=tg.base_url)
    telegram = TelegramChannel(settings, lambda locale: [])

    async def handle(incoming: Any) -> None:
        raise AssertionError("no update expected")

    with pytest.raises(SettingsError) as refused:  # one line at start-up, not a traceback
        await telegram.start(handle)
    assert str(refused.value).startswith("TELEGRAM_BOT_TOKEN: Telegram refused the token of "
                                         "bot 999 (401 Unauthorized)")
    assert "nope" not in str(refused.value)
    await telegram.stop()
