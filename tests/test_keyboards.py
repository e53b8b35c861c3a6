"""Keyboards as a phone shows them (issue 14 items 1 and 2), through each platform's double.

A multi-select ticks in the same message (Telegram: editMessageText; refused: sent anew), an
answered question loses its keyboard (editMessageReplyMarkup), steering buttons under every
question; Zalo answers a multi-select in one message ("3,5") and goes back with "0"; the web
chat's API names the bubble an edit changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.handlers.router import Router
from bot.messages import Outgoing
from storage import households, units
from storage.db import Database
from storage.models import Household, Report
from tests.chat import Chat
from tests.conftest import Seeded, StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import SentMessage, TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import data_for
from tests.test_web_chat import WebUser

LEADER = 931


async def register(tg: TelegramDouble, code: str) -> None:
    """A leader whose Telegram is in Vietnamese, as most are."""
    await tg.send_text(LEADER, f"/start {code}", language_code="vi")
    await tg.wait_messages(LEADER)


def on_screen(tg: TelegramDouble, chat: int) -> dict[int, SentMessage]:
    """Each message of the chat as it looks now: its latest send or edit."""
    latest: dict[int, SentMessage] = {}
    for message in tg.messages_to(chat):
        latest[message.message_id] = message
    return latest


async def _next_question(tg: TelegramDouble, previous: SentMessage) -> SentMessage:
    """After an answer: the previous question's keyboard taken away, then the next one."""
    dropped, question = await tg.wait_messages(LEADER, 2)
    assert (dropped.method, dropped.message_id, dropped.buttons) == (
        "editMessageReplyMarkup", previous.message_id, []), dropped.describe()
    return question


async def _to_flags(tg: TelegramDouble) -> SentMessage:
    """/household → add → unit → code → skip the name → members: the flag question."""
    await tg.send_text(LEADER, "/household")
    [menu] = await tg.wait_messages(LEADER)
    assert menu.button_texts[-1] == "Hủy", menu.describe()  # Cancel on the first step
    await tg.tap(LEADER, data_for(menu, "Thêm hộ"))
    unit = await _next_question(tg, menu)
    assert unit.buttons[-1] == [{"text": "Quay lại", "callback_data": data_for(unit, "Quay lại")}]
    await tg.tap(LEADER, data_for(unit, "Tổ dân phố 1"))
    code = await _next_question(tg, unit)
    await tg.send_text(LEADER, "12 Lê Lợi")  # typed: its keyboard (Back) goes all the same
    name = await _next_question(tg, code)
    # Skip and Back share the last row: short words under a long question.
    assert [b["text"] for b in name.buttons[-1]] == ["Bỏ qua", "Quay lại"], name.describe()
    await tg.tap(LEADER, data_for(name, "Bỏ qua"))
    members = await _next_question(tg, name)
    await tg.send_text(LEADER, "4 người")  # the number with its word, as people type it
    flags = await _next_question(tg, members)
    assert flags.method == "sendMessage" and "☐ Hộ nghèo" in flags.button_texts, \
        flags.describe()
    return flags


async def test_telegram_ticks_in_place_and_answered_keyboards_go(
        start_bot: StartBot, tg: TelegramDouble) -> None:
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    seeded = await seed_ward(runtime.db)
    await register(tg, seeded.codes["leader:KP1"])
    flags = await _to_flags(tg)

    await tg.tap(LEADER, data_for(flags, "☐ Hộ nghèo"))
    [ticked] = await tg.wait_messages(LEADER)
    assert (ticked.method, ticked.message_id) == ("editMessageText", flags.message_id)
    assert "☑ Hộ nghèo" in ticked.button_texts and "☐ Có trẻ nhỏ" in ticked.button_texts
    await tg.tap(LEADER, data_for(ticked, "☐ Có trẻ nhỏ"))
    [twice] = await tg.wait_messages(LEADER)
    assert (twice.method, twice.message_id) == ("editMessageText", flags.message_id)
    await tg.tap(LEADER, data_for(twice, "Xong"))
    confirm = await _next_question(tg, flags)
    assert "Hộ nghèo, Có trẻ nhỏ" in (confirm.text or ""), confirm.describe()

    # One keyboard on screen: the open question's. Every answered one lost its buttons.
    live = [m for m in on_screen(tg, LEADER).values() if m.buttons]
    assert [m.message_id for m in live] == [confirm.message_id], [m.describe() for m in live]
    await tg.tap(LEADER, data_for(confirm, "Xác nhận"))
    await tg.wait_messages(LEADER, 2)
    async with runtime.db.read() as session:
        household = (await session.execute(select(Household))).scalar_one()
    assert (household.code, household.poor, household.young_children, household.disability) == (
        "12 Lê Lợi", True, True, False)


async def test_telegram_refused_edits_fall_back(start_bot: StartBot, tg: TelegramDouble
                                               ) -> None:
    """An edit Telegram refuses (the message deleted, too old): the ticks come as a new
    message; a keyboard that cannot be taken away is left, and the flow goes on."""
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    seeded = await seed_ward(runtime.db)
    await register(tg, seeded.codes["leader:KP1"])
    flags = await _to_flags(tg)
    tg.fail_next("editMessageText", 400, description="Bad Request: message to edit not found")
    await tg.tap(LEADER, data_for(flags, "☐ Người khuyết tật"))
    [anew] = await tg.wait_messages(LEADER)
    assert anew.method == "sendMessage" and anew.message_id != flags.message_id
    assert "☑ Người khuyết tật" in anew.button_texts, anew.describe()
    tg.fail_next("editMessageReplyMarkup", 400,
                 description="Bad Request: message can't be edited")
    await tg.tap(LEADER, data_for(anew, "Xong"))
    [confirm] = await tg.wait_messages(LEADER)
    assert confirm.method == "sendMessage" and "Người khuyết tật" in (confirm.text or "")
    await tg.tap(LEADER, data_for(anew, "Xong"))  # the stale keyboard: refused
    [stale] = await tg.wait_messages(LEADER)
    assert stale.text == "Câu hỏi này đã đóng.", stale.describe()


async def test_telegram_back_and_cancel_buttons(start_bot: StartBot, tg: TelegramDouble
                                                ) -> None:
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    seeded = await seed_ward(runtime.db)
    await register(tg, seeded.codes["leader:KP1"])
    await tg.send_text(LEADER, "/household")
    [menu] = await tg.wait_messages(LEADER)
    await tg.tap(LEADER, data_for(menu, "Thêm hộ"))
    unit = await _next_question(tg, menu)
    await tg.tap(LEADER, data_for(unit, "Quay lại"))
    again = await _next_question(tg, unit)
    assert (again.text or "").startswith("Sổ hộ: anh/chị muốn làm gì?"), again.describe()
    await tg.tap(LEADER, data_for(again, "Hủy"))
    cancelled = await _next_question(tg, again)
    assert cancelled.text == "Đã hủy; chưa lưu gì.", cancelled.describe()


async def test_zalo_flags_in_one_message_and_zero_goes_back(
        start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime = await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    seeded = await seed_ward(runtime.db)
    user = "zl-kb"

    async def say(text: str) -> str:
        await zalo.send_text(user, text)
        return (await zalo.next_message(user)).text or ""

    await say(f"/start {seeded.codes['leader:KP1']}")
    assert (await say("/household")).endswith("1. Thêm hộ\n2. Sửa thông tin hộ\n"
                                              "3. Tìm trong sổ hộ\n4. Hủy")
    assert (await say("1")).endswith("2. Tổ dân phố 1\n0. Quay lại")
    await say("2")
    name = await say("12 Lê Lợi")
    assert name.endswith("1. Bỏ qua\n0. Quay lại"), name
    members = await say("Nguyen Van An")
    assert members.endswith("0. Quay lại") and "1." not in members.split("\n")[-1], members
    assert (await say("0")).startswith("Tên chủ hộ, nếu muốn lưu.")  # back to the name
    await say("Nguyễn Văn An")
    flags = await say("4")
    assert "nhiều mục cùng lúc như “1 3”" in flags and "7. Xong" in flags, flags
    refused = await say("3, 9")
    assert refused.startswith("Vui lòng chọn theo số trong danh sách (1 đến 6)"), refused
    confirm = await say("3,5")
    assert "Hoàn cảnh hộ: Hộ nghèo, Có trẻ nhỏ" in confirm, confirm
    assert confirm.endswith("1. Xác nhận\n2. Hủy\n0. Quay lại"), confirm
    assert (await say("1")).startswith("Đã lưu: 12 Lê Lợi")


async def test_web_chat_edits_name_their_bubble(start_bot: StartBot) -> None:
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    user = WebUser(runtime)
    try:
        await user.login(seeded.codes["leader:KP1"])
        await user.reply()  # the welcome
        flags = await _web_to_flags(user)
        assert await _tap(user, flags, "☐ Hộ nghèo") == 200
        [ticked] = await _replies(user, 1)
        assert ticked["edit"] == flags["id"] and ticked["question"], ticked
        assert "☑ Hộ nghèo" in [b["label"] for b in ticked["buttons"]]
        assert [b["label"] for b in ticked["buttons"] if b.get("steer")] == ["Quay lại"]
        assert await _tap(user, ticked, "Xong", bubble=flags["id"]) == 200
        dropped, confirm = await _replies(user, 2)
        assert (dropped["edit"], dropped.get("keyboard_only"), dropped["buttons"]) == (
            flags["id"], True, [])
        assert "edit" not in confirm and "Hoàn cảnh hộ: Hộ nghèo" in confirm["text"]
        # A bubble id that is no id is ignored: the page is told to retire the question.
        assert await user.say(choice=_payload(confirm, "Xác nhận"), message="-1") == 200
        retired, saved = await _replies(user, 2)
        assert retired.get("retire") and "edit" not in retired
        assert saved["text"].startswith("Đã lưu: 12 Lê Lợi") and "edit" not in saved
        assert {item["text"] for item in saved["menu"]} >= {"/report", "/household"}, saved
    finally:
        await user.close()


def _payload(message: dict[str, Any], label: str) -> str:
    return next(b["payload"] for b in message["buttons"] if b["label"] == label)


async def _tap(user: WebUser, message: dict[str, Any], label: str,
               bubble: int | None = None) -> int:
    return await user.say(choice=_payload(message, label),
                          message=str(bubble if bubble is not None else message["id"]))


async def _replies(user: WebUser, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        found += await user.messages()
    assert len(found) == count, found
    return found


async def _web_to_flags(user: WebUser) -> dict[str, Any]:
    assert await user.say(text="/household") == 200
    [menu] = await _replies(user, 1)
    assert await _tap(user, menu, "Thêm hộ") == 200
    dropped, unit = await _replies(user, 2)
    assert dropped["keyboard_only"] and dropped["edit"] == menu["id"]
    assert await _tap(user, unit, "Tổ dân phố 1") == 200
    await _replies(user, 2)
    for typed in ("12 Lê Lợi", "Nguyễn Văn An", "4"):
        assert await user.say(text=typed) == 200
        retired, question = await _replies(user, 2)
        assert retired == {"id": retired["id"], "text": "", "buttons": [], "retire": True}
    return question


# --- what a new user tried: back keeps what it should, the confirmation takes words --------

@pytest.fixture
async def ward(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    database = Database(db_url)
    seeded = await seed_ward(database)
    async with database.transaction() as session:
        kp1 = await units.by_code(session, "26734-KP1")
        assert kp1 is not None
        await households.add(session, kp1, "12 Lê Lợi", head_name="Trần Văn Bình", members=4,
                             flags=["poor"])
    yield Router(database, make_settings(db_url)), database, seeded
    await database.dispose()


async def _leader(ward: tuple[Router, Database, Seeded], channel: str) -> Chat:
    router, db, seeded = ward
    chat = Chat(router, db, channel=channel, external_id=f"{channel}-kb", language="vi")
    await chat.send(f"/start {seeded.codes['leader:KP1']}")
    return chat


def _text(replies: list[Outgoing]) -> str:
    """What the person reads, Zalo's numbered lists included."""
    return "\n".join(message.numbered_text() for message in replies)


async def test_back_keeps_the_photo_and_the_ticks(ward: tuple[Router, Database, Seeded]
                                                  ) -> None:
    chat = await _leader(ward, "telegram")
    await chat.send("12 Lê Lợi thiếu thuốc 2 người")
    assert "Ảnh: có kèm" in _text(await chat.send(photo="AgAC-receipt"))
    await chat.tap("Quay lại")  # back to the note: the photo is no answer to it, it stays
    summary = _text(await chat.send("ba cụ bị sốt"))
    assert "Ghi chú: ba cụ bị sốt" in summary and "Ảnh: có kèm" in summary, summary

    await chat.send("/household")
    await chat.tap("Thêm hộ")
    await chat.tap("Tổ dân phố 1")
    for typed in ("7 Pasteur", "bỏ qua", "3"):
        await chat.send(typed)
    await chat.tap("☐ Hộ nghèo")
    await chat.tap("Xong")
    [back] = [m for m in await chat.tap("Quay lại") if m.buttons]
    assert "☑ Hộ nghèo" in [b.label for b in back.buttons]  # as left, not cleared
    await chat.tap("☐ Có trẻ nhỏ")
    assert "Hoàn cảnh hộ: Hộ nghèo, Có trẻ nhỏ" in _text(await chat.tap("Xong"))


async def test_the_confirmation_takes_words_and_a_note(ward: tuple[Router, Database, Seeded]
                                                       ) -> None:
    router, db, _ = ward
    chat = await _leader(ward, "zalo")
    summary = _text(await chat.send("12 le loi thieu thuoc 2 nguoi"))
    assert summary.endswith("1. Lưu\n2. Hủy\n3. 🚨 Lưu, báo KHẨN\n0. Quay lại"), summary
    summary = _text(await chat.send("ba cụ bị sốt từ hôm qua"))  # typed at the confirmation
    assert "Ghi chú: ba cụ bị sốt từ hôm qua" in summary, summary
    assert "Vui lòng trả lời" not in summary
    saved = _text(await chat.send("khan"))  # the urgent Save, by its word
    assert saved.startswith("Đã lưu: báo cáo #1"), saved
    async with db.read() as session:
        report = (await session.execute(select(Report))).scalar_one()
    assert (report.urgent, report.note) == (True, "ba cụ bị sốt từ hôm qua")


async def test_zalo_typed_ticks_toggle_what_is_shown(ward: tuple[Router, Database, Seeded]
                                                     ) -> None:
    chat = await _leader(ward, "zalo")
    await chat.send("/household")
    await chat.send("2")  # Sửa thông tin hộ
    await chat.tap("Tìm")  # after the households of the leader's area
    await chat.send("12 le loi")
    await chat.send("1")  # the one found
    flags = _text(await chat.send("4"))  # Hoàn cảnh đặc biệt
    assert "3. ☑ Hộ nghèo" in flags, flags
    summary = _text(await chat.send("5 7"))  # tick 5; Done's number in the list is ignored
    assert "Hộ nghèo → Hộ nghèo, Có trẻ nhỏ" in summary, summary
