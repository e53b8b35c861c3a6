"""The urgent alert to ward staff (issue 14 item 9): it stands out and it acts.

Golden transcripts (tests/golden/alerts/<channel>.txt) replay a ward's morning on Telegram,
Zalo and the web chat: a quarter leader files an urgent report in one message, two ward
staff get the alert, one takes it ("Đã nhận xử lý"), the leader and the other are told, the
second tap and the other's tap are harmless, "Xem" and "Gọi" answer; the effects block pins
what was written. Then the hostile payloads, the first-tap-wins race, name rules, and one
run through the real Telegram and Zalo doubles over HTTP. COSO_GOLDEN_UPDATE=1 rewrites the
transcripts; read the diff.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.channels.web import render
from bot.channels.zalo import TEXT_LIMIT as ZALO_TEXT_LIMIT
from bot.handlers.router import Router
from bot.messages import URGENT_ALERT, Outgoing
from storage import households, invites, roster, units
from storage import reports as store
from storage.db import Database
from storage.models import OutboxMessage, Person, Post, Report, ReportEvent
from tests.chat import Chat, transcript_lines
from tests.conftest import Seeded, StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.effects import EFFECTS, Effects
from tests.telegram_helpers import data_for, free_port, next_reply

GOLDEN = Path(__file__).parent / "golden" / "alerts"
UPDATE = os.environ.get("COSO_GOLDEN_UPDATE") == "1"
ONE_MESSAGE = "/report 12 Lê Lợi F0 3 người khẩn ghi chú sốt cao, cần y tế đến nhà"
PHONE = "0903123456"
CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")


@dataclass
class Ward:
    router: Router
    db: Database
    seeded: Seeded
    codes: dict[str, str]  # who → invite code: kp1 (a post holder with a phone), dung, hai


async def _roster(db: Database, seeded: Seeded) -> dict[str, str]:
    """Khu phố 1's head on the roster (post and phone), a household, ward staff invites."""
    async with db.transaction() as session:
        kp1 = await units.by_code(session, "26734-KP1")
        assert kp1 is not None
        await households.add(session, kp1, "12 Lê Lợi", head_name="Trần Văn Bình", members=4)
        head = Person(full_name="Nguyễn Văn An", phone=PHONE)
        session.add(head)
        await session.flush()
        post = await session.get(Post, "truong_khu_pho")
        assert post is not None
        seat = await roster.seat(session, kp1, post, create=True)
        assert seat is not None
        await roster.assign(session, seat, head)
        code = (await roster.invite_person(session, head, timedelta(days=7))).code
    return {"kp1": code, "dung": seeded.codes["ward_staff:WARD:0"],
            "hai": seeded.codes["ward_staff:WARD:1"], "other": seeded.codes["ward_staff:WARD:2"]}


@pytest.fixture
async def ward(db_url: str) -> AsyncIterator[Ward]:
    database = Database(db_url)
    seeded = await seed_ward(database)
    codes = await _roster(database, seeded)
    yield Ward(Router(database, make_settings(db_url)), database, seeded, codes)
    await database.dispose()


NAMES = {"kp1": "Nguyễn Văn An", "dung": "Phạm Thị Dung", "hai": "Lê Văn Hải",
         "admin": "Võ Văn Tùng", "outsider": "Đỗ Thị Mai"}


def _chat(ward: Ward, who: str, channel: str = "telegram", language: str = "vi") -> Chat:
    return Chat(ward.router, ward.db, channel=channel, external_id=f"{channel}-{who}",
                display_name=NAMES[who], language=language)


def _shown(channel: str, replies: list[Outgoing]) -> list[str]:
    """What the person reads: buttons on Telegram and the web chat, Zalo's numbered list;
    the clock time of the filing as <hh:mm> (the golden file is replayed at any hour)."""
    if channel != "zalo":
        lines = transcript_lines(replies)
    else:
        lines = [f"< {line}" for message in replies
                 for part in message.numbered_parts(ZALO_TEXT_LIMIT)
                 for line in part.split("\n")]
    return [CLOCK.sub("<hh:mm>", line) for line in lines]


# --- the golden transcripts: several people, one channel ------------------------------------

@pytest.mark.parametrize("channel", ["telegram", "zalo", "web"])
async def test_transcript(channel: str, ward: Ward) -> None:
    """Lines 'who> input' are what that person sends ('tap LABEL' taps the newest button so
    labelled, on Zalo its number; 'payload P' sends a button's payload as a forging client
    would); after each, every participant's new messages, as 'who< line'."""
    path = GOLDEN / f"{channel}.txt"
    expected = await asyncio.to_thread(path.read_text, encoding="utf-8")
    chats = {who: _chat(ward, who, channel) for who in ("kp1", "dung", "hai")}
    printed = dict.fromkeys(chats, 0)
    effects = await Effects.begin(ward.db)
    produced: list[str] = []
    for line in expected.splitlines():
        if line == EFFECTS:
            break
        if line.startswith("#"):
            produced.append(line)
            continue
        who, marker, said = line.partition("> ")
        if not marker or who not in chats:
            continue
        produced.append(line)
        said = said.replace("{code}", ward.codes[who])
        if said.startswith("tap "):
            await chats[who].tap(said[4:])
        elif said.startswith("payload "):  # a forged button: any client can send one
            await chats[who].send(payload=said[8:])
        else:
            await chats[who].send(said)
        for name in (who, *(name for name in chats if name != who)):  # the speaker first
            chat = chats[name]
            await chat.inbox()
            produced += [f"{name}{shown}"
                         for shown in _shown(channel, chat.shown[printed[name]:])]
            printed[name] = len(chat.shown)
    produced += await effects.block(list(chats.values()))
    actual = "\n".join(produced) + "\n"
    if UPDATE:
        await asyncio.to_thread(path.write_text, actual, encoding="utf-8")
    assert actual == expected



# --- the alert itself ------------------------------------------------------------------------

async def _file(ward: Ward, channel: str = "telegram") -> tuple[Chat, Chat, Chat]:
    """Khu phố 1's head files the urgent report; (leader, dung, hai), all registered."""
    leader, dung, hai = (_chat(ward, who, channel, "en") for who in ("kp1", "dung", "hai"))
    for chat, who in ((leader, "kp1"), (dung, "dung"), (hai, "hai")):
        await chat.send(f"/start {ward.codes[who]}")
    await leader.send(ONE_MESSAGE)
    saved = await leader.tap("🚨 Save as URGENT")
    assert "alerted (2 people)" in _text(saved)
    for staff in (dung, hai):
        assert [m.text.splitlines()[0] for m in await staff.inbox()] == [
            "🚨 URGENT · report #1: Confirmed case (F0), 3 people"]
    return leader, dung, hai


def _text(messages: list[Outgoing]) -> str:
    """The messages' texts; an edit of an earlier one (its keyboard) is not a message."""
    return "\n".join(message.text for message in messages if message.edit_of is None)


async def _report(db: Database) -> Report:
    async with db.read() as session:
        return (await session.execute(select(Report))).scalar_one()


async def _events(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(select(ReportEvent.kind))).scalars())


async def test_the_alert_leads_with_what_and_where_and_is_flagged_for_the_web_chat(
        ward: Ward) -> None:
    _, dung, _ = await _file(ward)
    alert = dung.shown[-1]
    assert [b.label for b in alert.buttons] == ["I'm on it", "View", "Call"]
    assert [b.payload for b in alert.buttons] == ["al:1:t", "al:1:v", "al:1:c"]
    assert alert.extra == {URGENT_ALERT: True}
    async with ward.db.read() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
                ).scalars().all()
    shown = [render(row) for row in rows]
    assert [item["text"].splitlines()[0] for item in shown if item.get("urgent")] == [
        "🚨 URGENT · report #1: Confirmed case (F0), 3 people"] * 2
    assert sum(1 for item in shown if "urgent" in item) == 2  # none of the replies


async def test_no_call_button_without_a_phone_and_a_forged_one_says_so(ward: Ward) -> None:
    async with ward.db.transaction() as session:
        head = (await session.execute(select(Person).where(
            Person.full_name == "Nguyễn Văn An"))).scalar_one()
        head.phone = None
    _, dung, _ = await _file(ward)
    assert [b.label for b in dung.shown[-1].buttons] == ["I'm on it", "View"]
    assert _text(await dung.send(payload="al:1:c")) == (
        "No phone number is on record for whoever filed report #1.")


# --- taking it -------------------------------------------------------------------------------

async def test_taking_it_tells_the_leader_and_the_others_once(ward: Ward) -> None:
    leader, dung, hai = await _file(ward)
    replies = await dung.tap("I'm on it")
    assert _text(replies) == (
        "You are handling report #1 (Confirmed case (F0) · 12 Lê Lợi) now.\n"
        "Nguyễn Văn An, who reported it, has been told.\n"
        "1 other ward staff member who got the alert has been told.")
    assert _text(await leader.inbox()) == (
        "Your urgent report #1 (Confirmed case (F0) · 12 Lê Lợi) has been taken: Phạm Thị "
        "Dung (ward staff, Phường Bến Thành) is handling it.")
    assert "is taken: Phạm Thị Dung (ward staff" in _text(await hai.inbox())
    report = await _report(ward.db)
    assert report.assigned_to_person_id is not None and report.assigned_at is not None
    assert await _events(ward.db) == ["assigned"]

    # The taker's alert keeps View only; the same tap again (an old client, a forged
    # payload) and the other's change nothing and tell nobody else.
    assert [b.label for b in dung.shown[-2].buttons] == ["View", "Call"], dung.shown[-2]
    assert _text(await dung.send(payload="al:1:t")) == "You have already taken report #1."
    assert _text(await hai.tap("I'm on it")) == (
        "Report #1 is already taken: Phạm Thị Dung (ward staff, Phường Bến Thành) is "
        "handling it.")
    assert await leader.inbox() == [] and await _events(ward.db) == ["assigned"]
    assert (await _report(ward.db)).assigned_at == report.assigned_at


async def test_the_one_who_took_it_hears_when_the_leader_resolves_it(ward: Ward) -> None:
    """Found by a new-user trial: Dung kept handling a case its leader had closed."""
    leader, dung, hai = await _file(ward)
    await dung.tap("I'm on it")
    await leader.inbox()
    await hai.inbox()
    await leader.send("/open")
    await leader.send("1")
    await leader.tap("Mark as resolved")
    await leader.send("Đã đưa đi cách ly")
    assert "resolved" in _text(await leader.tap("Confirm"))
    assert _text(await dung.inbox()) == (
        "Report #1 (12 Lê Lợi, Khu phố 1), which you took, was resolved by Nguyễn Văn An.\n"
        "Closing note: Đã đưa đi cách ly")
    assert await hai.inbox() == []  # who did not take it is not told again


async def test_two_staff_tapping_at_once_one_takes_it(ward: Ward) -> None:
    leader, dung, hai = await _file(ward)
    before = len(dung.shown), len(hai.shown)
    await asyncio.gather(dung.send(payload="al:1:t"), hai.send(payload="al:1:t"))
    await dung.inbox()
    await hai.inbox()
    # Each one's reply; the loser may also get the winner's "is taken" notice, before or after.
    answers = [next(m.text for m in chat.shown[start:] if "is taken:" not in m.text)
               for chat, start in zip((dung, hai), before, strict=True)]
    won = [a for a in answers if a.startswith("You are handling report #1")]
    # The other hears who has it, or (PostgreSQL, both in flight) that someone is taking it.
    lost = [a for a in answers if a.startswith(("Report #1 is already taken",
                                                "Someone else is taking report #1"))]
    assert len(won) == 1 and len(lost) == 1, answers
    assert await _events(ward.db) == ["assigned"]
    assert len([m for m in await leader.inbox() if "has been taken" in m.text]) == 1


async def test_a_resolved_report_is_not_taken(ward: Ward) -> None:
    _, dung, _ = await _file(ward)
    async with ward.db.transaction() as session:
        report = (await session.execute(select(Report))).scalar_one()
        await store.resolve(session, report, person_id=None, now=report.created_at)
    assert _text(await dung.tap("I'm on it")) == (
        "Report #1 is already resolved; there is nothing to take.")
    assert (await _report(ward.db)).assigned_to_person_id is None
    assert "resolved (" in _text(await dung.tap("View"))


# --- every payload is hostile ----------------------------------------------------------------

async def test_forged_payloads_and_the_wrong_people_are_refused_in_storage(ward: Ward) -> None:
    leader, dung, _ = await _file(ward)
    monitor = Chat(ward.router, ward.db, external_id="monitor", language="en")
    await monitor.send(f"/start {ward.seeded.codes['monitor:WARD']}")
    stranger = Chat(ward.router, ward.db, external_id="stranger", language="en")
    for payload in ("al:1", "al::t", "al:x:t", "al:-1:t", "al:1:t:t", "al:1:zz",
                    "al:99999999999999999999:t", "al:١:t"):
        assert _text(await dung.send(payload=payload)) == "This question is no longer open."
    assert _text(await dung.send(payload="al:2:v")) == "There is no report #2 in your units."
    for chat in (leader, monitor):
        for action in "tvc":
            assert _text(await chat.send(payload=f"al:1:{action}")) == (
                "Sorry, this is only for: administrator, ward staff.")
    assert "not registered" in _text(await stranger.send(payload="al:1:t"))
    assert (await _report(ward.db)).assigned_to_person_id is None
    assert await _events(ward.db) == []


async def test_another_wards_staff_cannot_see_or_take_it(ward: Ward) -> None:
    _, dung, _ = await _file(ward)
    async with ward.db.transaction() as session:
        other = await units.by_code(session, "26737")
        assert other is not None
        code = (await invites.create(session, other, "ward_staff", timedelta(days=1)))[0].code
    outsider = Chat(ward.router, ward.db, external_id="outsider", language="en",
                    display_name=NAMES["outsider"])
    await outsider.send(f"/start {code}")
    for action in "tvc":
        replies = _text(await outsider.send(payload=f"al:1:{action}"))
        assert replies == "There is no report #1 in your units.", replies
    assert (await _report(ward.db)).assigned_to_person_id is None
    assert await dung.inbox() == []


async def test_a_city_admin_reads_the_household_as_initials(ward: Ward) -> None:
    _, dung, _ = await _file(ward)
    admin = Chat(ward.router, ward.db, external_id="admin", language="en",
                 display_name=NAMES["admin"])
    await admin.send(f"/start {ward.seeded.codes['admin:CITY']}")
    seen = _text(await admin.send(payload="al:1:v"))
    assert "Household: 12 Lê Lợi · T.V.B. · 4 people" in seen and "Trần Văn Bình" not in seen
    assert "Household: 12 Lê Lợi · Trần Văn Bình · 4 people" in _text(await dung.tap("View"))


# --- through the real transports -------------------------------------------------------------

async def test_through_the_telegram_and_zalo_doubles(
        start_bot: StartBot, tg: TelegramDouble, zalo: ZaloDouble) -> None:
    """The leader on Zalo files it; Dung on Telegram takes it with the inline button; Hải on
    Zalo reads the numbered list, is told it is taken, and types the numbers."""
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                              ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    seeded = await seed_ward(runtime.db)
    codes = await _roster(runtime.db, seeded)
    await zalo.send_text("lead", f"/start {codes['kp1']}")
    await zalo.next_message("lead")
    await tg.send_text(2001, f"/start {codes['dung']}", language_code="en",
                       first_name="Phạm Thị Dung")
    await tg.next_message(2001)
    await zalo.send_text("hai", f"/start {codes['hai']}")
    await zalo.next_message("hai")

    await zalo.send_text("lead", ONE_MESSAGE)
    assert "1. 🚨 Lưu, báo KHẨN" in ((await zalo.next_message("lead")).text or "")
    await zalo.send_text("lead", "1")
    assert "(2 người)" in ((await zalo.wait_messages("lead", 2))[1].text or "")

    alert = await tg.next_message(2001)
    assert (alert.text or "").startswith("🚨 URGENT · report #1: Confirmed case (F0), 3 people")
    assert alert.button_texts == ["I'm on it", "View", "Call"]
    numbered = (await zalo.next_message("hai")).text or ""
    assert numbered.startswith("🚨 KHẨN · báo cáo #1: Ca bệnh xác nhận (F0), 3 người")
    assert numbered.endswith("1. Đã nhận xử lý\n2. Xem\n3. Gọi")

    await tg.tap(2001, data_for(alert, "I'm on it"))
    kept, handling = await tg.wait_messages(2001, 2)  # the alert keeps View and Call
    assert (kept.method, kept.message_id, kept.button_texts) == (
        "editMessageReplyMarkup", alert.message_id, ["View", "Call"])
    assert "You are handling report #1" in (handling.text or "")
    told = (await zalo.next_message("lead")).text or ""
    assert "đã có người nhận: Phạm Thị Dung (cán bộ phường, Phường Bến Thành)" in told
    assert "đã có người nhận: Phạm Thị Dung" in ((await zalo.next_message("hai")).text or "")
    await zalo.send_text("hai", "1")
    assert "đã có người nhận" in ((await zalo.next_message("hai")).text or "")
    await zalo.send_text("hai", "3")
    assert "+84903123456" in ((await zalo.next_message("hai")).text or "")
    await tg.tap(2001, data_for(alert, "View"))
    assert "You took it just now." in ((await tg.next_message(2001)).text or "")
    async with runtime.db.read() as session:
        report = (await session.execute(select(Report))).scalar_one()
        dung = await session.get(Person, report.assigned_to_person_id)
        assert dung is not None and dung.full_name == "Phạm Thị Dung"


async def test_a_photo_taken_on_telegram_reaches_the_staff_on_zalo(
        start_bot: StartBot, tg: TelegramDouble, zalo: ZaloDouble) -> None:
    """Zalo takes photos by URL only, and a Telegram file id is no URL: the report's photo is
    fetched through the Telegram bot, kept a day under the data directory and sent to Zalo by
    a signed link (before, Hải on Zalo saw the view's text alone, with no word of a photo)."""
    port = free_port()
    zalo.fetch_photos = True  # the double fetches the photo's URL, as Zalo does
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                              ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url,
                              COSO_WEB_PORT=port, COSO_PUBLIC_URL=f"http://127.0.0.1:{port}")
    codes = await _roster(runtime.db, await seed_ward(runtime.db))
    await tg.send_text(3001, f"/start {codes['kp1']}", language_code="en")
    await tg.next_message(3001)
    await zalo.send_text("hai", f"/start {codes['hai']}")
    await zalo.next_message("hai")
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    tg.files["AgAC-tg-photo"] = jpeg

    await tg.send_text(3001, ONE_MESSAGE, language_code="en")
    await tg.next_message(3001)
    await tg.send_photo(3001, file_id="AgAC-tg-photo")  # at the confirmation
    summary = await next_reply(tg, 3001)
    await tg.tap(3001, data_for(summary, "🚨 Save as URGENT"))
    assert ((await zalo.next_message("hai")).text or "").endswith("2. Xem\n3. Gọi")
    await zalo.send_text("hai", "2")
    view = await zalo.next_message("hai")
    assert view.method == "sendPhoto" and "#1" in (view.text or ""), view
    assert "Báo cáo có kèm ảnh." in (view.text or "")
    assert (view.photo or "").startswith(f"http://127.0.0.1:{port}/files/relayed/")
    assert view.photo_bytes == jpeg
    [kept] = (runtime.settings.data_dir / "relayed").iterdir()
    assert kept.stat().st_mode & 0o777 == 0o600
