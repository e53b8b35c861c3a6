"""Directives end to end: an admin on Telegram sends one to a ward; every leader there, on
Telegram and on Zalo, gets it once per chat account and acknowledges; `coso directive status`
shows exact counts; refusals send nothing; reminders follow the clock; leaders cannot send."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import time_machine
from sqlalchemy import func, select, update

from bot.app import Runtime
from bot.handlers.directives import remind
from storage.models import (
    ChatAccount,
    Directive,
    DirectiveRecipient,
    OutboxMessage,
    Person,
    RoleAssignment,
    utcnow,
)
from tests.conftest import Coso, Seeded, StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import (
    WardTeam,
    data_for,
    eventually,
    free_port,
    replies,
    say,
    tap,
    ward_team,
)
from tests.test_web_chat import WebUser

ADMIN, STAFF, KP1, T1, OTHER = 801, 802, 803, 804, 805
ZALO_KP2, ZALO_T1 = "zalo-kp2", "zalo-t1"
TEXT = "Rà soát hộ nghèo trong khu phố, báo cáo trước thứ Sáu."


TEAM = WardTeam(staff=STAFF, kp1=KP1, t1=T1, other=OTHER, zalo_kp2=ZALO_KP2, admin=ADMIN)


async def _ward(start_bot: StartBot, tg: TelegramDouble, zalo: ZaloDouble
                ) -> tuple[Runtime, Seeded]:
    runtime, seeded = await ward_team(start_bot, tg, zalo, TEAM)
    # The group's leader also uses Zalo: a second chat account linked to the same person.
    await zalo.send_text(ZALO_T1, "xin chào")
    await zalo.next_message(ZALO_T1)
    async with runtime.db.transaction() as session:
        person = await session.scalar(select(ChatAccount.person_id).where(
            ChatAccount.external_id == str(T1)))
        await session.execute(update(ChatAccount).where(ChatAccount.external_id == ZALO_T1)
                              .values(person_id=person))
    return runtime, seeded


async def _send_from_chat(tg: TelegramDouble, user: int, scope: str, recipients: int = 3,
                          unconnected: int = 0, named: str | None = None) -> str:
    [scopes] = await say(tg, user, "/directive")
    [roles] = await tap(tg, user, data_for(scopes, scope))
    [text] = await tap(tg, user, data_for(roles, "Leaders"))
    assert "at most 3500 characters" in (text.text or "").replace(",", "").replace(".", "")
    [photo] = await say(tg, user, TEXT)
    [deadline] = await tap(tg, user, data_for(photo, "Skip"))
    assert "(e.g. 5pm 5/12, tomorrow 5pm, Friday)" in (deadline.text or "")
    [summary] = await say(tg, user, "/skip")
    assert f"\n{recipients} recipient" in (summary.text or ""), summary.describe()
    assert (f"\n{unconnected} of them" in (summary.text or "")) == bool(unconnected), (
        summary.describe())
    if named is not None:  # whom to phone before sending, with their unit
        assert named in (summary.text or ""), summary.describe()
    [sent] = await tap(tg, user, data_for(summary, "Confirm"))
    return sent.text or ""


async def test_an_admin_sends_and_every_leader_acknowledges(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso) -> None:
    runtime, _ = await _ward(start_bot, tg, zalo)
    sent = await _send_from_chat(tg, ADMIN, "Phường Bến Thành")
    assert sent.startswith("Directive #1 sent to 3 recipients"), sent

    # Telegram: one card with a Received button, taken away once pressed; a second tap (a
    # stale client still showing it) changes nothing.
    [card] = await tg.wait_messages(KP1)
    assert TEXT in (card.text or "") and card.button_texts == ["Received"]
    received = data_for(card, "Received")
    await tg.tap(KP1, received)
    [edit, thanks] = await tg.wait_messages(KP1, 2)
    assert edit.method == "editMessageReplyMarkup" and not edit.buttons, edit.describe()
    assert thanks.text == "Thank you: directive #1 is acknowledged."
    await tg.tap(KP1, received, message_id=card.message_id, strict=False)
    [again] = await replies(tg, KP1)
    assert again.text == "You have already acknowledged directive #1."

    # Zalo: the card ends with the numbered button; the number acknowledges.
    zalo_card = await zalo.next_message(ZALO_KP2)
    assert TEXT in (zalo_card.text or "") and (zalo_card.text or "").endswith("1. Received")
    await zalo.send_text(ZALO_KP2, "1")
    assert (await zalo.next_message(ZALO_KP2)).text == (
        "Thank you: directive #1 is acknowledged.")

    # The group's leader gets it once on each account and has not answered yet.
    [t1_card] = await tg.wait_messages(T1)
    assert TEXT in ((await zalo.next_message(ZALO_T1)).text or "")
    await tg.expect_silence(T1, 0.2)
    await zalo.expect_silence(ZALO_T1, 0.2)
    await tg.expect_silence(OTHER, 0.2)
    await tg.expect_silence(KP1, 0.1)

    async def delivered() -> bool:
        async with runtime.db.read() as session:
            return await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.ref.startswith("directive:1:"),
                OutboxMessage.status == "sent")) == 4
    await eventually(delivered)

    code, out, _ = await coso("directive", "status", "1", "--json")
    assert code == 0
    status = json.loads(out)
    assert {key: status[key] for key in ("recipients", "sent", "delivered", "failed",
                                         "acknowledged", "outstanding")} == {
        "recipients": 3, "sent": 4, "delivered": 4, "failed": 0, "acknowledged": 2,
        "outstanding": 1}
    units = {u["code"]: u for u in status["units"]}
    t1 = units["26734-KP1-T1"]
    assert [m["connected"] for m in t1.pop("missing")] == [True]
    assert t1 == {
        "code": "26734-KP1-T1", "name": "Tổ dân phố 1", "path": "Tổ dân phố 1", "done": False,
        "recipients": 1, "sent": 2, "delivered": 2, "failed": 0, "acknowledged": 0,
        "outstanding": 1}
    assert sorted(units) == ["26734-KP1", "26734-KP1-T1", "26734-KP2"]

    [report] = await say(tg, STAFF, "/directive status")
    assert "acknowledged 2/3, outstanding 1" in (report.text or "")
    assert "• Tổ dân phố 1: acknowledged 0/1" in (report.text or "")


async def test_refusals_send_nothing(tg: TelegramDouble, zalo: ZaloDouble,
                                     start_bot: StartBot, coso: Coso, tmp_path: Path
                                     ) -> None:
    runtime, _ = await _ward(start_bot, tg, zalo)
    text = tmp_path / "d.txt"
    text.write_text(TEXT, encoding="utf-8")
    big = tmp_path / "map.jpg"
    with big.open("wb") as handle:
        handle.truncate(11 * 1024 * 1024)
    long_text = tmp_path / "long.txt"
    long_text.write_text("x" * 3501, encoding="utf-8")
    cases = [
        (("--scope", "26734-KP2", "--role", "monitor"), "No one holds that role"),
        (("--scope", "26734", "--attach", str(big)), "larger than the chat platforms accept"),
        (("--scope", "26734", "--deadline", "2020-01-01T08:00"), "already passed"),
        (("--scope", "26734", "--deadline", "hôm nay 0h"), "already passed"),
        (("--scope", "26734", "--deadline", "chào"), "--deadline must look like"),
    ]
    for extra, message in cases:
        code, _, err = await coso("directive", "send", "--text-file", str(text), *extra)
        assert code == 1 and message in err, err
    code, _, err = await coso("directive", "send", "--scope", "26734", "--text-file",
                             str(long_text))
    assert code == 1 and "at most 3,500 characters" in err, err
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Directive)) == 0
        assert await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.ref.startswith("directive:"))) == 0
    assert not list((tmp_path / "data").glob("directives/*"))
    await tg.expect_silence(KP1, 0.2)

    # A PDF goes as a document on Telegram and as text with a note on Zalo.
    pdf = tmp_path / "plan.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    code, out, err = await coso("directive", "send", "--scope", "26734-KP1-T1", "--text-file",
                               str(text), "--attach", str(pdf), "--json")
    assert code == 0, err
    assert json.loads(out) == {"id": 1, "recipients": 1, "messages": 2, "unconnected": []}
    [document] = await tg.wait_messages(T1)
    assert document.filename == "plan.pdf", document.describe()
    note = (await zalo.next_message(ZALO_T1)).text or ""
    assert "A file (plan.pdf) comes with this directive" in note
    [stored] = (tmp_path / "data" / "directives").iterdir()
    assert stored.read_bytes() == pdf.read_bytes()


async def test_reminders_and_done_by_the_deadline(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso, tmp_path: Path
        ) -> None:
    runtime, _ = await _ward(start_bot, tg, zalo)
    text = tmp_path / "d.txt"
    text.write_text(TEXT, encoding="utf-8")
    with time_machine.travel(utcnow(), tick=True) as clock:
        deadline = (utcnow() + timedelta(hours=7, days=1)).strftime("%Y-%m-%dT%H:%M")
        code, out, err = await coso("directive", "send", "--scope", "26734-KP1", "--role",
                                   "leader", "--text-file", str(text), "--deadline", deadline,
                                   "--json")
        assert code == 0, err
        assert json.loads(out)["recipients"] == 2
        [card] = await tg.wait_messages(KP1)
        assert card.button_texts == ["Received", "Report done"]
        [kept, _] = await tap(tg, KP1, data_for(card, "Received"), count=2)
        assert kept.method == "editMessageReplyMarkup" and kept.button_texts == ["Report done"]
        await tg.wait_messages(T1)
        await zalo.next_message(ZALO_T1)

        clock.shift(timedelta(minutes=30))
        await remind(runtime.db, runtime.settings, utcnow())
        await tg.expect_silence(T1, 0.2)
        clock.shift(timedelta(minutes=91))
        await remind(runtime.db, runtime.settings, utcnow())
        await remind(runtime.db, runtime.settings, utcnow())  # twice: still one reminder
        [reminder] = await tg.wait_messages(T1)
        assert (reminder.text or "").startswith("Reminder: Directive #1 for Tổ dân phố 1")
        assert reminder.button_texts == ["Received", "Report done"]
        assert ((await zalo.next_message(ZALO_T1)).text or "").startswith("Reminder:")
        await tg.expect_silence(T1, 0.2)
        await tg.expect_silence(KP1, 0.1)  # acknowledged, and the deadline has not passed

        # After the deadline the quarter that acknowledged but is not done is reminded too,
        # until it reports done.
        clock.shift(timedelta(days=2))
        await remind(runtime.db, runtime.settings, utcnow())
        [late] = await tg.wait_messages(KP1)
        assert late.button_texts == ["Report done"]
        [done, ask] = await tap(tg, KP1, data_for(late, "Report done"), count=2)
        assert done.text == "Recorded: the unit has done directive #1."
        assert "A note for the ward on how it was done" in (ask.text or "")
        [noted] = await say(tg, KP1, "Tổ trực đã thông báo từng hộ")
        assert noted.text == "The note is added to directive #1."
        await tg.wait_messages(T1)
        clock.shift(timedelta(days=1))
        await remind(runtime.db, runtime.settings, utcnow())
        await tg.expect_silence(KP1, 0.2)
        await tg.wait_messages(T1)  # the group is still late: its third and last reminder
        clock.shift(timedelta(days=1))
        await remind(runtime.db, runtime.settings, utcnow())
        await tg.expect_silence(T1, 0.2)
    async with runtime.db.read() as session:
        rows = (await session.execute(select(DirectiveRecipient))).scalars().all()
    assert sorted(r.reminders for r in rows) == [1, 3]
    assert {r.done_note for r in rows} == {"Tổ trực đã thông báo từng hộ", None}
    code, out, _ = await coso("directive", "status", "1", "--json")
    assert json.loads(out)["units_done"] == 1


async def test_leaders_cannot_send_and_staff_see_only_their_ward(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot) -> None:
    await _ward(start_bot, tg, zalo)
    [refusal] = await say(tg, KP1, "/directive")
    assert "only for" in (refusal.text or "")
    [scopes] = await say(tg, STAFF, "/directive")
    assert scopes.button_texts == ["Phường Bến Thành", "Khu phố 1", "Khu phố 2", "Cancel"]
    # A forged "Received" for a directive that was not sent to this person is refused.
    [languages] = await say(tg, OTHER, "/lang")
    # On the open question's keyboard (an answered one loses it), before answering it.
    await tg.tap(OTHER, "dv:1:1:a", message_id=languages.message_id, strict=False)
    [foreign] = await tg.wait_messages(OTHER)
    assert "only for" in (foreign.text or "")


async def test_ward_staff_attach_a_photo_and_set_a_deadline_in_chat(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"

    async def start(**settings: Any) -> Runtime:
        return await start_bot(**settings, COSO_WEB_PORT=port, COSO_PUBLIC_URL=public)

    runtime, seeded = await _ward(start, tg, zalo)
    web = WebUser(runtime)  # a leader of Khu phố 2 on the web chat
    assert (await web.login(seeded.codes["leader:KP2:1"]))[0] == 200
    await web.messages(wait=False)
    zalo.fetch_photos = True  # the double fetches the photo's URL, as Zalo does
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    tg.files["AgAC-map"] = jpeg
    [scopes] = await say(tg, STAFF, "/directive")
    [roles] = await tap(tg, STAFF, data_for(scopes, "Phường Bến Thành"))
    [text] = await tap(tg, STAFF, data_for(roles, "Leaders"))
    await say(tg, STAFF, TEXT)
    await tg.send_photo(STAFF, file_id="AgAC-map")
    [deadline] = await replies(tg, STAFF)
    [refused] = await say(tg, STAFF, "2020-01-01 08:00")
    assert refused.text is not None and "The deadline has already passed." in refused.text
    [unread] = await say(tg, STAFF, "chào")
    assert (unread.text or "").startswith("Write the deadline as you would say it, e.g. 5pm")
    [no_day] = await say(tg, STAFF, "17h 31/2")
    assert (no_day.text or "").startswith("There is no day 31/2; check the day and the month.")
    [typed] = await say(tg, STAFF, "mai 17h")  # read in COSO_TIMEZONE, read back in words
    # The day in words with its full year beside "tomorrow", so a wrong guess shows.
    tomorrow = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + timedelta(days=1)
    in_words = f"{tomorrow:%A}, {tomorrow:%B} {tomorrow.day}, {tomorrow.year}"
    assert f"Deadline: 5:00\u202fPM tomorrow ({in_words})" in (typed.text or ""), (
        typed.describe())
    await say(tg, STAFF, "back")
    [summary] = await say(tg, STAFF, "2099-12-31 17:00")
    assert "Deadline: 5:00\u202fPM Thursday, December 31, 2099" in (summary.text or ""), (
        summary.describe())
    assert "\nPhoto: attached\n" in (summary.text or ""), summary.describe()
    [sent] = await tap(tg, STAFF, data_for(summary, "Confirm"))
    assert (sent.text or "").startswith("Directive #1 sent to 4 recipients")

    # Telegram gets the photo itself. Zalo (URLs only) and the web chat get it too, fetched
    # through the Telegram bot and kept a day in relayed/; before, they got "open it on
    # Telegram" (found by a new-user trial).
    [card] = await tg.wait_messages(KP1)
    assert card.photo == "AgAC-map" and card.button_texts == ["Received", "Report done"]
    on_zalo = await zalo.next_message(ZALO_KP2)
    assert on_zalo.method == "sendPhoto" and TEXT in (on_zalo.text or ""), on_zalo
    assert (on_zalo.photo or "").startswith(f"{public}/files/relayed/")
    assert on_zalo.photo_bytes == jpeg and "Telegram" not in (on_zalo.text or "")
    try:
        shown = await web.reply(lambda m: TEXT in m["text"])
        assert "Telegram" not in shown["text"] and shown["photo"].startswith("/api/file/")
        async with web.http.get(web.base + shown["photo"]) as response:
            assert response.status == 200 and await response.read() == jpeg
            assert response.content_type == "image/jpeg"
    finally:
        await web.close()
    [kept] = (runtime.settings.data_dir / "relayed").iterdir()  # one copy for both
    assert kept.stat().st_mode & 0o777 == 0o600
    async with runtime.db.read() as session:
        stored = await session.scalar(select(Directive))
    assert stored is not None and stored.deadline is not None
    assert stored.deadline.isoformat() == "2099-12-31T10:00:00+00:00"  # 17:00 in Hồ Chí Minh


async def _unconnected_leader(runtime: Runtime, seeded: Seeded, name: str) -> None:
    """A leader of Khu phố 2 who never opened a chat with the bot: only a phone reaches her."""
    async with runtime.db.transaction() as session:
        person = Person(full_name=name, phone="0901234567", active=True)
        session.add(person)
        await session.flush()
        session.add(RoleAssignment(person_id=person.id, unit_id=seeded.unit_ids["26734-KP2"],
                                   role="leader", active=True))


async def test_status_by_id_names_who_is_missing_and_reminds_once_an_hour(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso) -> None:
    runtime, seeded = await _ward(start_bot, tg, zalo)
    await _unconnected_leader(runtime, seeded, "Lê Thị Không Chat")
    async with runtime.db.read() as session:
        names = {external: name for external, name in await session.execute(
            select(ChatAccount.external_id, Person.full_name).join(Person))}
    sent = await _send_from_chat(
        tg, STAFF, "Phường Bến Thành", recipients=4, unconnected=1,
        named="1 of them has no chat connected yet; phone them: Lê Thị Không Chat (Khu phố 2).")
    # Found by a new-user trial: the count included her, whom no chat reaches.
    assert sent.startswith("Directive #1 sent to 3 recipients"), sent
    assert sent.splitlines()[1] == (
        "1 recipient has no chat connected yet, so it did not reach them: Lê Thị Không Chat. "
        "They get it when they join; phone them meanwhile."), sent
    [card] = await tg.wait_messages(KP1)
    await tap(tg, KP1, data_for(card, "Received"))
    await zalo.next_message(ZALO_KP2)
    await tg.wait_messages(T1)
    await zalo.next_message(ZALO_T1)

    # An id after "status" opens that directive's status, never the send flow (the bug).
    [report] = await say(tg, STAFF, "/directive status 1")
    text = report.text or ""
    assert text.startswith("Directive #1, sent"), report.describe()
    assert "Which unit" not in text
    lines = text.splitlines()
    t1 = lines.index("• Tổ dân phố 1: acknowledged 0/1")
    assert lines[t1 + 1] == f"   – {names[str(T1)]}"
    kp2 = lines.index("• Khu phố 2: acknowledged 0/2")
    # Her phone where known (the seeded leaders have none on file).
    assert sorted(lines[kp2 + 1:kp2 + 3]) == sorted(
        ["   – Lê Thị Không Chat, 0901234567 (no chat connected)", f"   – {names[ZALO_KP2]}"])
    assert "1 of them has no chat connected: phone them." in lines
    kp1 = lines.index("• Khu phố 1: acknowledged 1/1")
    assert lines[kp1 + 1].startswith("• ")  # acknowledged: no one listed under it
    # Only those a chat reaches: she is named above, to be phoned.
    assert report.button_texts == ["Remind the 2 missing"]

    # The same from the command line, by unit, with the flag.
    code, out, _ = await coso("directive", "status", "1", "--json")
    assert code == 0
    units = {u["code"]: u for u in json.loads(out)["units"]}
    assert units["26734-KP1"]["missing"] == []
    assert sorted((m["name"], m["connected"], m["phone"] or "")
                  for m in units["26734-KP2"]["missing"]) == sorted(
        [("Lê Thị Không Chat", False, "0901234567"), (names[ZALO_KP2], True, "")])
    assert units["26734-KP1-T1"]["path"] == "Tổ dân phố 1"

    # Staff remind: the group's leader (both accounts) and Khu phố 2's get one nudge each.
    [done] = await tap(tg, STAFF, data_for(report, "Remind the 2 missing"))
    assert done.text == "Reminder for directive #1 sent to 2 recipients.", done.describe()
    [phone] = await tg.wait_messages(STAFF)
    assert phone.text == ("1 has no chat connected: phone them.\n"
                          "   – Lê Thị Không Chat, 0901234567 (no chat connected)")
    [nudge] = await tg.wait_messages(T1)
    assert (nudge.text or "").startswith("Reminder: Directive #1")
    assert ((await zalo.next_message(ZALO_KP2)).text or "").startswith("Reminder: Directive #1")
    await tg.expect_silence(KP1, 0.2)
    # A second press within the hour sends nothing more.
    [again] = await tap(tg, STAFF, data_for(report, "Remind the 2 missing"))
    assert "less than an hour ago" in (again.text or ""), again.describe()
    await tg.expect_silence(T1, 0.2)


async def test_status_of_an_unknown_or_foreign_directive_is_refused(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot) -> None:
    await _ward(start_bot, tg, zalo)
    # Sent to the other ward: Bến Thành's staff neither see it nor can remind its people.
    await _send_from_chat(tg, ADMIN, "Phường Sài Gòn", recipients=1)
    await tg.wait_messages(OTHER)  # the directive itself
    for asked, answer in (("/directive status 1", "There is no directive #1 in your units."),
                          ("/directive status 99", "There is no directive #99 in your units."),
                          ("/directive status abc", "Write /directive status, or /directive "
                                                    "status with a directive's number (e.g. "
                                                    "/directive status 3).")):
        [reply] = await say(tg, STAFF, asked)
        assert reply.text == answer
    # A forged reminder for a directive outside the presser's units is refused.
    await say(tg, STAFF, "/lang")  # a message with buttons to forge a tap on
    await tg.tap(STAFF, "dvr:1", strict=False)
    [foreign] = await tg.wait_messages(STAFF)
    assert "only for" in (foreign.text or "")
    [languages] = await say(tg, OTHER, "/lang")
    # On the open question's keyboard (an answered one loses it), before answering it.
    await tg.tap(OTHER, "dvr:1", message_id=languages.message_id, strict=False)
    [foreign] = await tg.wait_messages(OTHER)
    assert "only for" in (foreign.text or "")


async def test_zalo_gets_an_attachment_as_a_signed_link(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("COSO_PUBLIC_URL", public)  # the command line signs the links too

    async def start(**settings: Any) -> Runtime:
        return await start_bot(**settings, COSO_WEB_PORT=port, COSO_PUBLIC_URL=public,
                               COSO_DATA_DIR=str(tmp_path / "data"))

    await _ward(start, tg, zalo)
    text = tmp_path / "d.txt"
    text.write_text(TEXT, encoding="utf-8")
    pdf = tmp_path / "plan.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    code, _, err = await coso("directive", "send", "--scope", "26734-KP1-T1", "--text-file",
                              str(text), "--attach", str(pdf))
    assert code == 0, err
    [document] = await tg.wait_messages(T1)
    assert document.filename == "plan.pdf"
    note = (await zalo.next_message(ZALO_T1)).text or ""
    assert "The attached file (plan.pdf), for 7 days: " + public + "/files/directives/" in note
    link = note.split("for 7 days: ", 1)[1].split()[0]
    assert "plan" not in link  # the stored name is random, not the sender's file name
    async with aiohttp.ClientSession() as client, client.get(link) as got:
        assert got.status == 200 and got.content_type == "application/pdf"
        assert await got.read() == pdf.read_bytes()


async def test_a_leader_who_joins_after_the_send_gets_what_is_still_owed(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso) -> None:
    """Found by a new-user trial: a post filled after the send never saw the directive."""
    runtime, seeded = await _ward(start_bot, tg, zalo)
    await _unconnected_leader(runtime, seeded, "Võ Thị Hoa")
    assert "Võ Thị Hoa" in (await _send_from_chat(tg, STAFF, "Phường Bến Thành", recipients=4,
                                                  unconnected=1))
    async with runtime.db.read() as session:
        hoa = await session.scalar(select(Person.id).where(Person.full_name == "Võ Thị Hoa"))
    code, out, err = await coso("invite", "create", "--person", str(hoa), "--json")
    assert code == 0, err
    await tg.send_text(OTHER + 10, f"/start {json.loads(out)[0]['code']}",
                       language_code="en", first_name="Hoa")
    welcome, card = await tg.wait_messages(OTHER + 10, 2)
    assert (welcome.text or "").startswith("Welcome, Võ Thị Hoa!"), welcome.describe()
    assert TEXT in (card.text or "") and card.button_texts == ["Received"]
    # On the web chat too, which shows messages in the order they were written (found by
    # a new-user trial: the card came before the welcome there).
    code, out, err = await coso("invite", "create", "--person", str(hoa), "--json")
    assert code == 0, err
    web = WebUser(runtime)
    try:
        assert (await web.login(json.loads(out)[0]["code"]))[0] == 200
        shown = [message["text"] for message in await web.messages(wait=False)]
    finally:
        await web.close()
    assert shown[0].startswith("Welcome, Võ Thị Hoa!") and TEXT in shown[1], shown
    await tap(tg, OTHER + 10, data_for(card, "Received"))
    [status] = await say(tg, STAFF, "/directive status 1")
    lines = (status.text or "").splitlines()
    kp2 = lines.index("• Khu phố 2: acknowledged 1/2")
    assert "Võ Thị Hoa" not in "\n".join(lines[kp2:kp2 + 3])
    # Connecting a second chat later shows it again only while it is still owed: it is not.
    code, out, err = await coso("invite", "create", "--person", str(hoa), "--json")
    await zalo.send_text("zalo-hoa", f"/start {json.loads(out)[0]['code']}")
    greeting = (await zalo.next_message("zalo-hoa")).text or ""
    assert "Võ Thị Hoa" in greeting and TEXT not in greeting
    await zalo.expect_silence("zalo-hoa")


def test_a_deadline_is_confirmed_with_its_day_in_words_and_full_year() -> None:
    from bot.i18n import Translator
    hcm = ZoneInfo("Asia/Ho_Chi_Minh")
    now = datetime(2026, 12, 3, 9, 0, tzinfo=hcm)
    vi = Translator("vi", hcm)
    assert vi.long_datetime(datetime(2026, 12, 4, 17, 0, tzinfo=hcm), now=now) == (
        "17:00 ngày mai (thứ Sáu ngày 4 tháng 12 năm 2026)")
    assert vi.long_datetime(datetime(2026, 12, 6, 17, 0, tzinfo=hcm), now=now) == (
        "17:00 chủ nhật ngày 6 tháng 12 năm 2026")


async def _web_directive_with_photo(staff: Any, png: bytes) -> dict[str, Any]:
    """Staff on the web chat (Vietnamese) send Phường Bến Thành's leaders a directive with a
    photo and a deadline, as far as the confirmation, which is returned."""
    from tests.test_web_chat import answer, payload, upload

    await staff.messages(wait=False)
    scopes = await answer(staff, text="Chỉ đạo")
    roles = await answer(staff, choice=payload(scopes, "Phường Bến Thành"))
    await answer(staff, choice=payload(roles, "Trưởng đơn vị"))
    photo_step = await answer(staff, text=TEXT)
    assert "ảnh" in photo_step["text"], photo_step
    status, _ = await upload(staff, png, page_id="directive-photo")
    assert status == 200
    await staff.messages(wait=False)
    return await answer(staff, text="17h 31/12/2099")


async def test_a_photo_sent_in_the_web_chat_reaches_web_and_zalo_recipients(
        zalo: ZaloDouble, start_bot: StartBot, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a new-user trial (no Telegram in the deployment): with COSO_DATA_DIR=./data,
    the default, the photo was stored as the relative data/photos/….png, which the cards
    took for a Telegram file id: every web chat recipient read 'see the photo on Telegram'
    and Zalo got no link. The data directory is resolved once, at start."""
    from tests.test_web_chat import on_disk, payload, picture

    monkeypatch.chdir(tmp_path)
    port = free_port()
    zalo.fetch_photos = True  # the double fetches the photo's URL, as Zalo does
    runtime = await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url,
                              COSO_WEB_PORT=port, COSO_PUBLIC_URL=f"http://127.0.0.1:{port}",
                              COSO_DATA_DIR="./data")
    seeded = await seed_ward(runtime.db)
    staff, leader = WebUser(runtime), WebUser(runtime)
    try:
        assert (await staff.login(seeded.codes["ward_staff:WARD"]))[0] == 200
        assert (await leader.login(seeded.codes["leader:KP1"]))[0] == 200
        await zalo.send_text(ZALO_KP2, f"/start {seeded.codes['leader:KP2']}")
        await zalo.next_message(ZALO_KP2)
        await leader.messages(wait=False)
        png = picture()
        summary = await _web_directive_with_photo(staff, png)
        assert "Ảnh: có kèm" in summary["text"].splitlines(), summary
        sent = await answer_choice(staff, payload(summary, "Xác nhận"))
        assert sent["text"].startswith("Đã gửi chỉ đạo #1 tới 2 người nhận"), sent

        card = await leader.reply(lambda m: TEXT in m["text"])
        assert "Telegram" not in card["text"], card
        assert card["photo"].startswith("/api/file/"), card
        async with leader.http.get(leader.base + card["photo"]) as response:
            assert response.status == 200 and await response.read() == png
        on_zalo = await zalo.next_message(ZALO_KP2)
        assert on_zalo.method == "sendPhoto" and TEXT in (on_zalo.text or ""), on_zalo
        assert (on_zalo.photo or "").startswith(f"http://127.0.0.1:{port}/files/photos/")
        assert on_zalo.photo_bytes == png
    finally:
        await staff.close()
        await leader.close()
    async with runtime.db.read() as session:
        stored = await session.scalar(select(Directive.attachment))
    assert stored is not None and Path(stored).is_absolute(), stored
    assert on_disk(Path(stored)) == (png, 0o600)


async def answer_choice(user: WebUser, choice: str) -> dict[str, Any]:
    from tests.test_web_chat import answer

    return await answer(user, choice=choice)
