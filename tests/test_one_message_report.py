"""The whole report in one message ("12 Lê Lợi F0 3 người khẩn ghi chú sốt cao"), end to end.

Golden transcripts (tests/golden/one_message/<channel>.txt) replay it on each channel through
the shared chat client: Telegram and the web chat tap buttons, Zalo answers with numbers and
its transcript shows the numbered lists it gets. The first report takes 2 answers on every
channel: the message and Save (here the urgent one, F0's own).
Then one run per channel through the real transport: the Telegram and Zalo doubles over HTTP
and the web chat's own API. COSO_GOLDEN_UPDATE=1 rewrites the transcripts; read the diff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.handlers.router import Router
from storage import households, units
from storage.db import Database
from storage.models import Report
from tests import transcripts
from tests.chat import Chat
from tests.conftest import Seeded, StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import answered, data_for, register
from tests.test_web_chat import WebUser

GOLDEN = Path(__file__).parent / "golden" / "one_message"


async def _households(db: Database) -> None:
    """Khu phố 1's households: 12 Lê Lợi, and two Nguyễn Văn households (ambiguous)."""
    async with db.transaction() as session:
        kp1 = await units.by_code(session, "26734-KP1")
        assert kp1 is not None
        await households.add(session, kp1, "12 Lê Lợi", head_name="Trần Văn Bình", members=4)
        await households.add(session, kp1, "3 Hàm Nghi", head_name="Nguyễn Văn An", members=2)
        await households.add(session, kp1, "5 Hàm Nghi", head_name="Nguyễn Văn Ba", members=3)


@pytest.fixture
async def ward(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    database = Database(db_url)
    seeded = await seed_ward(database)
    await _households(database)
    yield Router(database, make_settings(db_url)), database, seeded
    await database.dispose()


@pytest.mark.parametrize("channel", ["telegram", "zalo", "web"])
async def test_transcript(channel: str, ward: tuple[Router, Database, Seeded]) -> None:
    router, db, seeded = ward
    chat = Chat(router, db, channel=channel, external_id=f"{channel}-kp1", language="vi")
    await transcripts.replay(GOLDEN / f"{channel}.txt", chat, seeded.codes)


# --- through each channel's transport: the message and Save, 2 answers ------------------

MESSAGE = "12 Lê Lợi F0 3 người khẩn ghi chú sốt cao"


async def _filed(db: Database) -> Report:
    async with db.read() as session:
        [report] = (await session.execute(select(Report))).scalars().all()
    assert (report.category_key, report.people_count, report.urgent, report.note) == (
        "f0", 3, True, "sốt cao")
    return report


async def test_on_telegram_through_the_double(start_bot: StartBot, tg: TelegramDouble
                                              ) -> None:
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    seeded = await seed_ward(runtime.db)
    await _households(runtime.db)
    await register(tg, 901, seeded.codes["leader:KP1"])
    await tg.send_text(901, f"/report {MESSAGE}", language_code="en")
    [summary] = await tg.wait_messages(901)
    assert "Household: 12 Lê Lợi · T.V.B. · 4 people" in (summary.text or ""), summary.describe()
    assert "Urgency: Urgent" in (summary.text or "") and "Note: sốt cao" in (summary.text or "")
    await tg.tap(901, data_for(summary, "🚨 Save as URGENT"))
    [saved, *_] = await answered(tg, 901)
    assert (saved.text or "").startswith("Saved: report #1")
    await _filed(runtime.db)


async def test_on_zalo_through_the_double(start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime = await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    seeded = await seed_ward(runtime.db)
    await _households(runtime.db)
    await zalo.send_text("zl-kp1", f"/start {seeded.codes['leader:KP1']}")
    await zalo.next_message("zl-kp1")
    await zalo.send_text("zl-kp1", MESSAGE)  # no /report: no question is open
    summary = (await zalo.next_message("zl-kp1")).text or ""
    assert "Hộ: 12 Lê Lợi" in summary and "1. 🚨 Lưu, báo KHẨN" in summary, summary
    await zalo.send_text("zl-kp1", "1")
    assert ((await zalo.next_message("zl-kp1")).text or "").startswith("Đã lưu: báo cáo #1")
    await _filed(runtime.db)


async def test_on_the_web_chat_through_its_api(start_bot: StartBot) -> None:
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    await _households(runtime.db)
    user = WebUser(runtime)
    try:
        assert await user.login(seeded.codes["leader:KP1"]) == (200, {"ok": True})
        await user.reply()  # the welcome
        assert await user.say(text=MESSAGE) == 200
        summary = await user.reply()
        assert "Hộ: 12 Lê Lợi" in summary["text"], summary
        confirm = next(b["payload"] for b in summary["buttons"] if b["label"] == "🚨 Lưu, báo KHẨN")
        assert await user.say(choice=confirm) == 200
        assert (await user.reply())["text"].startswith("Đã lưu: báo cáo #1")
    finally:
        await user.close()
    await _filed(runtime.db)


async def test_hostile_one_message_reports_are_answered_and_save_nothing(
        ward: tuple[Router, Database, Seeded]) -> None:
    router, db, seeded = ward
    chat = Chat(router, db, channel="zalo", external_id="zl-hostile", language="vi")
    await chat.send(f"/start {seeded.codes['leader:KP1']}")
    long_note = "sốt " * 400
    for text in (f"12 Lê Lợi F0 3 người ghi chú {long_note}", "F0 " + "9" * 50 + " người",
                 "F0 ... !!! ---", "\u200bF0\u200b 12\u202e Lê Lợi", "/report " + "x " * 2000,
                 "f0 " + "12 le loi " * 300):
        replies = await chat.send(text)
        assert replies and all(message.text for message in replies), text[:40]
        await chat.send("/cancel")
    async with db.read() as session:
        assert (await session.execute(select(Report))).first() is None


async def test_a_household_of_one_is_not_asked_how_many_are_concerned(
        ward: tuple[Router, Database, Seeded]) -> None:
    """Found by a new-user trial: "(1 to 1)?" was asked, a third answer with one possible
    value. Now the message and Save, as for the others (the guided report skips it too: the
report_checkin golden)."""
    router, db, seeded = ward
    async with db.transaction() as session:
        kp1 = await units.by_code(session, "26734-KP1")
        assert kp1 is not None
        await households.add(session, kp1, "9 Lý Tự Trọng", head_name="Phan Thị Mai", members=1)
    chat = Chat(router, db, channel="zalo", external_id="zl-alone", language="vi")
    await chat.send(f"/start {seeded.codes['leader:KP1']}")
    [summary] = await chat.send("/report 9 ly tu trong thieu an")
    assert "Số người liên quan: 1" in summary.text, summary.text
    await chat.send("1")  # Lưu
    async with db.read() as session:
        [report] = (await session.execute(select(Report))).scalars().all()
    assert (report.category_key, report.people_count) == ("short_food", 1)
