"""Scenario drills end to end: ward staff start one on Telegram; leaders on Telegram and on Zalo
acknowledge, tick the steps in order and report done; /drill status and `coso drill report`
show each unit's times; silent units are reminded; the wrong people are refused."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import Runtime
from bot.cli import main as cli_main
from bot.handlers.drills import remind
from bot.settings import get_settings
from storage import units
from storage.models import ChatAccount, DrillParticipant, Person, RoleAssignment, utcnow
from tests.conftest import Coso, Seeded, StartBot
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import WardTeam, data_for, say, tap, ward_team

STAFF, KP1, T1, OTHER = 701, 702, 703, 704
ZALO_KP2 = "zalo-kp2"
SCENARIO = "A confirmed case found in a residential group: isolate and list contacts"


async def _ward(start_bot: StartBot, tg: TelegramDouble, zalo: ZaloDouble
                ) -> tuple[Runtime, Seeded]:
    return await ward_team(start_bot, tg, zalo, WardTeam(staff=STAFF, kp1=KP1, t1=T1,
                                                         other=OTHER, zalo_kp2=ZALO_KP2))


async def _start_drill(tg: TelegramDouble) -> str:
    [scenarios] = await say(tg, STAFF, "/drill")
    # Telegram shows at most 64 characters of a button; the catalogue's label is longer.
    assert scenarios.button_texts[0] == SCENARIO[:63] + "…"
    [areas] = await tap(tg, STAFF, scenarios.button_data[0])
    assert areas.button_texts == ["The whole ward", "Khu phố 1", "Khu phố 2", "Back"]
    [summary] = await tap(tg, STAFF, data_for(areas, "The whole ward"))
    assert "3 units take part: Khu phố 1, Tổ dân phố 1, Khu phố 2" in (summary.text or "")
    [started] = await tap(tg, STAFF, data_for(summary, "Confirm"))
    return started.text or ""


async def test_a_drill_from_start_to_each_units_times(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, db_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    runtime, _ = await _ward(start_bot, tg, zalo)
    assert (await _start_drill(tg)).startswith("Drill #1 started: 3 units")

    # Telegram: acknowledge, then four steps in order, then done.
    [first] = await tg.wait_messages(KP1)
    assert "1. Confirm the case with the health station" in (first.text or "")
    [step] = await tap(tg, KP1, data_for(first, "Received"))
    assert "Step 1 of 4: Confirm the case" in (step.text or "")
    [again] = await tap(tg, KP1, data_for(first, "Received"))  # a double tap changes nothing
    assert "Step 1 of 4" in (again.text or "")
    for number in range(1, 5):
        [step] = await tap(tg, KP1, data_for(step, f"Step {number} done"))
    assert step.button_texts == ["Drill done"]
    [thanks] = await tap(tg, KP1, data_for(step, "Drill done"))
    assert "Khu phố 1 completed drill #1" in (thanks.text or "")

    # Zalo: the same by numbers; an old step's number is refused politely.
    card = await zalo.next_message(ZALO_KP2)
    assert (card.text or "").endswith("1. Received")
    await zalo.send_text(ZALO_KP2, "1")
    assert "Step 1 of 4" in ((await zalo.next_message(ZALO_KP2)).text or "")
    for _ in range(2, 6):
        await zalo.send_text(ZALO_KP2, "1")
        reply = (await zalo.next_message(ZALO_KP2)).text or ""
    assert reply.endswith("1. Drill done")
    await zalo.send_text(ZALO_KP2, "1")
    assert "Khu phố 2 completed drill #1" in ((await zalo.next_message(ZALO_KP2)).text or "")

    # The group's leader only acknowledges.
    [card_t1] = await tg.wait_messages(T1)
    await tap(tg, T1, data_for(card_t1, "Received"))
    [status] = await say(tg, STAFF, "/drill status")
    text = status.text or ""
    assert "Acknowledged 3/3, completed 2/3." in text
    assert "• Tổ dân phố 1: acknowledged in" in text and "step 0/4" in text
    assert "Median time to complete:" in text

    # The command line reads the same figures.
    monkeypatch.setenv("COSO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    capsys.readouterr()
    assert await asyncio.to_thread(cli_main, ["drill", "report", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    get_settings.cache_clear()
    assert (report["units_total"], report["acknowledged"], report["completed"]) == (3, 3, 2)
    units = {u["code"]: u for u in report["units"]}
    assert units["26734-KP1"]["steps_done"] == 4 and units["26734-KP1-T1"]["steps_done"] == 0
    assert units["26734-KP1-T1"]["seconds_to_complete"] is None
    assert report["median_seconds_to_complete"] >= 0
    await tg.expect_silence(OTHER, 0.3)  # the other ward took no part


async def test_steps_go_in_order_and_silent_units_are_reminded(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot) -> None:
    runtime, _ = await _ward(start_bot, tg, zalo)
    await _start_drill(tg)
    [card] = await tg.wait_messages(KP1)
    [step] = await tap(tg, KP1, data_for(card, "Received"))
    skip = data_for(step, "Step 1 done").replace(":s1", ":s3")
    await tg.tap(KP1, skip, strict=False)  # forged: step 3 is on no button yet
    refused = await tg.wait_messages(KP1, 2)
    assert refused[0].text == "Please go through the steps in order."
    assert "Step 1 of 4" in (refused[1].text or "")

    await tg.wait_messages(T1)
    now = utcnow()
    await remind(runtime.db, runtime.settings, now + timedelta(minutes=10))
    await tg.expect_silence(T1, 0.3)
    for minutes in (31, 45, 62, 93, 124):
        await remind(runtime.db, runtime.settings, now + timedelta(minutes=minutes))
    reminders = await tg.wait_messages(T1, 3)
    assert all((m.text or "").startswith("Reminder: Drill #1") for m in reminders)
    await tg.expect_silence(T1, 0.3)
    async with runtime.db.read() as session:
        counts = dict((await session.execute(select(
            DrillParticipant.unit_id, DrillParticipant.reminders))).all())
        assert max(counts.values()) == 3
        assert await session.scalar(select(func.count()).select_from(DrillParticipant)) == 3


async def test_only_ward_staff_start_and_only_the_units_leaders_press(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot) -> None:
    await _ward(start_bot, tg, zalo)
    [refusal] = await say(tg, KP1, "/drill")
    assert "only for" in (refusal.text or "")
    await _start_drill(tg)
    [card] = await tg.wait_messages(KP1)
    [languages] = await say(tg, OTHER, "/lang")  # any keyboard to forge a tap on
    # On the open question's keyboard (an answered one loses it), before answering it.
    forged = data_for(card, "Received")  # by another ward
    await tg.tap(OTHER, forged, message_id=languages.message_id, strict=False)
    [foreign] = await tg.wait_messages(OTHER)
    assert "only for" in (foreign.text or "")
    [step] = await tap(tg, KP1, data_for(card, "Received"))
    assert "Step 1 of 4" in (step.text or "")


async def test_drill_status_by_id_names_the_leaders_not_done_and_reminds_once_an_hour(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso) -> None:
    runtime, seeded = await _ward(start_bot, tg, zalo)
    async with runtime.db.transaction() as session:
        person = Person(full_name="Lê Thị Không Chat", phone="0901234567", active=True)
        session.add(person)
        await session.flush()
        session.add(RoleAssignment(person_id=person.id, unit_id=seeded.unit_ids["26734-KP2"],
                                   role="leader", active=True))
        names = {external: name for external, name in await session.execute(
            select(ChatAccount.external_id, Person.full_name).join(Person))}
    await _start_drill(tg)
    [card] = await tg.wait_messages(KP1)
    [step] = await tap(tg, KP1, data_for(card, "Received"))
    for number in range(1, 5):
        [step] = await tap(tg, KP1, data_for(step, f"Step {number} done"))
    await tap(tg, KP1, data_for(step, "Drill done"))
    await tg.wait_messages(T1)
    await zalo.next_message(ZALO_KP2)

    # An id after "status" opens that drill's results, never the start flow.
    [status] = await say(tg, STAFF, "/drill status 1")
    lines = (status.text or "").splitlines()
    assert lines[0].startswith("Drill #1: "), status.describe()
    kp1 = lines.index(next(line for line in lines if line.startswith("• Khu phố 1: done in")))
    assert lines[kp1 + 1].startswith("• ")  # done: no one to chase
    t1 = lines.index("• Tổ dân phố 1: no answer yet")
    assert lines[t1 + 1] == f"   – {names[str(T1)]}"
    kp2 = lines.index("• Khu phố 2: no answer yet")
    # Her phone where known (the seeded leaders have none on file).
    assert sorted(lines[kp2 + 1:kp2 + 3]) == sorted(
        ["   – Lê Thị Không Chat, 0901234567 (no chat connected)", f"   – {names[ZALO_KP2]}"])
    # Right under the names it speaks of; the per-step figures follow.
    assert lines[kp2 + 3] == "1 of them has no chat connected: phone them."
    assert status.button_texts == ["Remind the 2 units not done"]
    code, out, _ = await coso("drill", "report", "1", "--json")
    assert code == 0
    units = {u["code"]: u for u in json.loads(out)["units"]}
    assert sorted((m["name"], m["connected"], m["phone"] or "")
                  for m in units["26734-KP2"]["missing"]) == sorted(
        [("Lê Thị Không Chat", False, "0901234567"), (names[ZALO_KP2], True, "")])

    [sent] = await tap(tg, STAFF, data_for(status, "Remind the 2 units not done"))
    assert sent.text == "Reminder for drill #1 sent to 2 units."
    assert ((await tg.wait_messages(T1))[0].text or "").startswith("Reminder: Drill #1")
    assert ((await zalo.next_message(ZALO_KP2)).text or "").startswith("Reminder: Drill #1")
    await tg.expect_silence(KP1, 0.2)
    [again] = await tap(tg, STAFF, data_for(status, "Remind the 2 units not done"))
    assert "less than an hour ago" in (again.text or "")
    await tg.expect_silence(T1, 0.2)
    [unknown] = await say(tg, STAFF, "/drill status 7")
    assert unknown.text == "There is no drill #7 in your ward."


async def test_the_start_names_the_units_no_chat_reaches(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot) -> None:
    """Found by a new-user trial: "sent the scenario to 3 units" when one unit's leader had
    no chat. The start now says how many it reached and whom to phone."""
    runtime, _ = await _ward(start_bot, tg, zalo)
    async with runtime.db.transaction() as session:
        kp2 = await units.by_code(session, "26734-KP2")
        assert kp2 is not None
        group = await units.upsert(session, "26734-KP2-T3", "Tổ dân phố 3", "group", kp2)
        offline = Person(full_name="Đinh Văn Không Chat", active=True)
        session.add(offline)
        await session.flush()
        session.add(RoleAssignment(person_id=offline.id, unit_id=group.id, role="leader",
                                   active=True))
    [scenarios] = await say(tg, STAFF, "/drill")
    [areas] = await tap(tg, STAFF, scenarios.button_data[0])
    [summary] = await tap(tg, STAFF, data_for(areas, "The whole ward"))
    assert "4 units take part" in (summary.text or ""), summary.describe()
    [started] = await tap(tg, STAFF, data_for(summary, "Confirm"))
    assert (started.text or "").splitlines() == [
        "Drill #1 started: the scenario reached 3 of 4 units. Send /drill status to follow "
        "it.",
        "1 unit has no leader with a chat connected; phone them:",
        "• Tổ dân phố 3 — Đinh Văn Không Chat"], started.describe()
