"""Decree 13/2023/ND-CP in the logs: a whole day's work through the Telegram double, every log
record of the bot captured at DEBUG, and no household name, phone number, address or note in
any of them."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import next_reply, start_telegram

HEAD, PHONE, ADDRESS, NOTE = "Nguyễn Văn An", "0903 123 456", "12 Lê Lợi", "Sốt cao về đêm"
LEADER, STAFF, MONITOR = 801, 802, 803


async def test_a_days_work_leaves_no_personal_data_in_the_logs(
        tg: TelegramDouble, start_bot: StartBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG, logger="storage")
    caplog.set_level(logging.INFO)
    # A person here answers at once; a real one takes longer than the 1/s a chat allows.
    runtime = await start_telegram(start_bot, tg, TELEGRAM_CHAT_RATE_PER_SECOND=50)
    seeded = await seed_ward(runtime.db)

    async def say(user: int, text: str) -> str:
        await tg.send_text(user, text, language_code="en", first_name=HEAD)
        return (await next_reply(tg, user)).text or ""

    async def tap(user: int, label: str) -> str:
        message = next(m for m in reversed(tg.messages_to(user)) if label in m.button_texts)
        await tg.tap(user, message.button_data[message.button_texts.index(label)])
        return (await next_reply(tg, user)).text or ""

    await say(STAFF, f"/start {seeded.codes['ward_staff:WARD']}")
    await say(MONITOR, f"/start {seeded.codes['monitor:WARD']}")
    await say(LEADER, f"/start {seeded.codes['leader:KP1']}")
    await say(LEADER, "/report")
    await tap(LEADER, "Add a new household")
    await tap(LEADER, "Khu phố 1")
    await say(LEADER, ADDRESS)
    await say(LEADER, HEAD)
    await say(LEADER, "4")
    await tap(LEADER, "Done")
    await tap(LEADER, "Confirmed case (F0)")
    await say(LEADER, "3")
    await say(LEADER, f"{NOTE}, gọi {PHONE}")
    await tap(LEADER, "🚨 Save as URGENT")  # F0 is urgent by itself: its Save is the first
    assert "alerted" in ((await next_reply(tg, LEADER)).text or "")
    alert = (await tg.next_message(STAFF)).text or ""
    assert ADDRESS in alert and NOTE in alert  # the ward staff do get it, in the chat
    await say(LEADER, "/household search")
    assert f"{ADDRESS} · N.V.A." in await say(LEADER, "nguyen van")  # initials only
    await say(LEADER, "/cancel")
    await say(STAFF, "/open")
    await say(MONITOR, "/deliveries")
    await say(MONITOR, "/report")  # refused, and the refusal is logged

    ours = [r for r in caplog.records if not r.name.startswith("tests.")]
    assert any(r.name.startswith("bot.") for r in ours)  # the bot did log its work
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in ours)
    digits = re.sub(r"\D", "", PHONE)
    for secret in (HEAD, "Nguyen Van An", ADDRESS, "Le Loi", NOTE, PHONE, digits):
        assert secret.casefold() not in text.casefold(), secret
