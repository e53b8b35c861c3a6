"""The daily runs under frozen time, on both databases: check-in question, reminder, escalation
and digest over the Telegram and Zalo doubles; catch-up after a restart; exactly once across
schedulers sharing one database; a failed run leaves no claim.

The digest's content is bot/digest's business: here a small real digest queues one message per
ward staff member through bot/notify, so "exactly once" is checked on real outbox rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from bot import notify
from bot.app import Runtime
from bot.i18n import Translator
from bot.messages import Outgoing
from bot.scheduler import Due, Scheduler
from bot.settings import Settings
from storage import digest, households, outbox, overview, schedules, units
from storage.db import Database
from storage.models import ChatAccount, JobRun, OutboxMessage, Person, Role, RoleAssignment, Unit
from storage.schedules import Change
from tests.conftest import Seeded, StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import SentMessage, TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import data_for, register, say, tap

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2026, 11, 24)  # a Tuesday
WARD = "26734"
KP1, T1, STAFF, OTHER = 101, 103, 201, 104  # Telegram users
KP2 = "z-kp2"  # the Khu phố 2 leader, on Zalo


def at(clock: str, day: date = DAY) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=HCM)


async def fake_digest(db: Database, settings: Settings, ward_id: int, day: date) -> int:
    """One message per ward staff member, queued through bot/notify as the real digest does."""
    async with db.transaction() as session:
        ward = await session.get(Unit, ward_id)
        assert ward is not None
        staff = await notify.holders_over(session, ward, Role.WARD_STAFF)

        def render(t: Translator) -> Outgoing:
            return Outgoing(text=f"DIGEST {ward.code} {day.isoformat()}")

        return await notify.notify_people(session, settings, staff, render,
                                          ref=f"digest:{ward_id}:{day.isoformat()}")


async def failing_digest(db: Database, settings: Settings, ward_id: int, day: date) -> int:
    await fake_digest(db, settings, ward_id, day)  # queued, then the run fails: rolled back
    raise RuntimeError("the digest broke")


def jobs(done: list[Due]) -> list[tuple[str, int]]:
    return [(due.job, due.ward_id) for due in done]


async def job_runs(db: Database) -> list[tuple[str, int, str]]:
    async with db.read() as session:
        rows = await session.execute(select(JobRun.job, JobRun.unit_id, JobRun.period)
                                     .order_by(JobRun.id))
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def digest_rows(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)
                                        .where(OutboxMessage.ref.like("digest:%"))) or 0)


async def last_outbox_id(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.max(OutboxMessage.id))) or 0)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Time starts at 15:00 in Hồ Chí Minh City on DAY and flows from there."""
    with time_machine.travel(at("15:00"), tick=True) as traveller:
        yield traveller


@pytest.fixture
async def doubles() -> AsyncIterator[tuple[TelegramDouble, ZaloDouble]]:
    tg, zalo = TelegramDouble(), ZaloDouble()
    await tg.start()
    await zalo.start()
    yield tg, zalo
    await zalo.stop()
    await tg.stop()


@dataclass
class Ward:
    runtime: Runtime
    tg: TelegramDouble
    zalo: ZaloDouble
    seeded: Seeded

    @property
    def db(self) -> Database:
        return self.runtime.db

    def scheduler(self, db: Database | None = None) -> Scheduler:
        return Scheduler(db or self.db, self.runtime.settings, send_digest=fake_digest)

    def id(self, code: str) -> int:
        return self.seeded.unit_ids[code]


@pytest.fixture
async def ward(clock: time_machine.Traveller, start_bot: StartBot,
               doubles: tuple[TelegramDouble, ZaloDouble]) -> Ward:
    """Leaders of Khu phố 1 and Tổ dân phố 1 on Telegram, of Khu phố 2 on Zalo, a leader in
    the other ward, and one ward staff member, all registered through the doubles."""
    tg, zalo = doubles
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                              ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    seeded = await seed_ward(runtime.db)
    for user, code in ((KP1, "leader:KP1"), (T1, "leader:T1"), (OTHER, "leader:OTHER"),
                       (STAFF, "ward_staff:WARD")):
        await register(tg, user, seeded.codes[code], unit="Thành phố Hồ Chí Minh")
    await zalo.send_text(KP2, f"/start {seeded.codes['leader:KP2']}")
    assert "Khu phố 2" in ((await zalo.next_message(KP2)).text or "")
    return Ward(runtime, tg, zalo, seeded)


async def test_a_day_prompt_reminder_escalation_digest(
        ward: Ward, clock: time_machine.Traveller) -> None:
    tg, zalo = ward.tg, ward.zalo
    scheduler = ward.scheduler()
    ben_thanh, sai_gon = ward.id(WARD), ward.id("26737")
    clock.move_to(at("15:59"))
    assert await scheduler.tick() == []

    clock.move_to(at("16:00"))
    assert jobs(await scheduler.tick()) == [("prompt", ben_thanh), ("prompt", sai_gon)]
    [kp1_prompt] = await tg.wait_messages(KP1)
    assert "Khu phố 1" in (kp1_prompt.text or "") and "Any change" in (kp1_prompt.text or "")
    [t1_prompt] = await tg.wait_messages(T1)
    assert "Tổ dân phố 1" in (t1_prompt.text or "")
    assert len(await tg.wait_messages(OTHER)) == 1  # the other ward asks its own leader
    zalo_prompt = (await zalo.next_message(KP2)).text or ""
    assert "Khu phố 2" in zalo_prompt, zalo_prompt
    assert "1. Hôm nay không có gì thay đổi" in zalo_prompt, zalo_prompt
    await tg.expect_silence(STAFF)

    # Khu phố 1 answers with a tap, Khu phố 2 with a number on Zalo; Tổ dân phố 1 stays silent.
    await tap(tg, KP1, data_for(kp1_prompt, "No change today"))
    await zalo.send_text(KP2, "1")
    assert "không có gì thay đổi" in ((await zalo.next_message(KP2)).text or "")
    assert await scheduler.tick() == []  # nothing more at 16:00

    clock.move_to(at("18:00"))
    assert jobs(await scheduler.tick()) == [("reminder", ben_thanh), ("reminder", sai_gon)]
    [reminder] = await tg.wait_messages(T1)
    assert "Reminder: Tổ dân phố 1 has not answered" in (reminder.text or "")
    assert reminder.button_texts == ["No change today", "Report a household"]
    assert len(await tg.wait_messages(OTHER)) == 1
    await tg.expect_silence(KP1)
    await zalo.expect_silence(KP2)
    await tg.expect_silence(STAFF)  # staff hear later: leaders get time to answer

    # A second leader of the silent group whom no chat reaches: never asked, so to be phoned.
    async with ward.runtime.db.transaction() as session:
        offline = Person(full_name="Đỗ Thị Không Chat", active=True)
        session.add(offline)
        await session.flush()
        session.add(RoleAssignment(person_id=offline.id, unit_id=ward.id("26734-KP1-T1"),
                                   role=Role.LEADER, active=True))
    clock.move_to(at("18:59"))
    assert await scheduler.tick() == []
    clock.move_to(at("19:00"))
    assert jobs(await scheduler.tick()) == [("escalation", ben_thanh), ("escalation", sai_gon)]
    [escalation] = await tg.wait_messages(STAFF)
    text = escalation.text or ""
    # Not "after the reminder": Đỗ Thị Không Chat was never reminded (a new-user trial).
    assert "1 unit has not answered the check-in:" in text, text
    assert "• Khu phố 1 › Tổ dân phố 1 — " in text and "Lê Văn Cường" in text
    assert "Đỗ Thị Không Chat (no chat connected)" in text, text
    assert text.endswith("1 of them has no chat connected: phone them."), text
    assert "Khu phố 2" not in text and "Phường Sài Gòn" not in text

    clock.move_to(at("19:30"))
    assert jobs(await scheduler.tick()) == [("digest", ben_thanh), ("digest", sai_gon)]
    [digest] = await tg.wait_messages(STAFF)
    assert digest.text == f"DIGEST {WARD} {DAY.isoformat()}"
    assert await scheduler.tick() == []
    assert await digest_rows(ward.db) == 1  # the other ward has no staff to send to
    for user in (KP1, T1, OTHER):
        await tg.expect_silence(user, 0.1)


async def read_until(tg: TelegramDouble, user: int, fragment: str) -> SentMessage:
    """The first new message to the user whose text has the fragment; what came before it is
    read too. A tap may also edit the tapped message in place, and the double records that
    edit as one more entry for the chat (method editMessage...), in no fixed order with the
    reply: a count of messages would be a guess."""
    while True:
        message = await tg.next_message(user)
        if fragment in (message.text or "") and message.method.startswith("send"):
            return message


async def prompts_to(db: Database, external_id: str) -> list[str]:
    """The texts queued to a chat account by the check-in jobs (the tick commits them at
    once, so this needs no waiting for the sender)."""
    async with db.read() as session:
        rows = (await session.execute(
            select(OutboxMessage.payload).join(ChatAccount)
            .where(ChatAccount.external_id == external_id,
                   OutboxMessage.priority == outbox.BULK))).scalars().all()
    return [str(payload.get("text", "")) for payload in rows]


async def test_units_that_already_answered_are_neither_asked_nor_reminded(
        ward: Ward, clock: time_machine.Traveller) -> None:
    """Khu phố 1 answered /checkin on Telegram and Khu phố 2 filed a report on Zalo before
    16:00: only Tổ dân phố 1 gets the question and the reminder; the two count as on time."""
    tg, zalo = ward.tg, ward.zalo
    async with ward.db.transaction() as session:
        kp2 = await session.get(Unit, ward.id("26734-KP2"))
        assert kp2 is not None
        await households.add(session, kp2, "5 Pasteur", head_name="Phạm Văn Tư", members=3)
    clock.move_to(at("15:30"))
    [question] = await say(tg, KP1, "/checkin")
    await tg.tap(KP1, data_for(question, "No change today"))
    await read_until(tg, KP1, "no change recorded for Khu phố 1")
    await zalo.send_text(KP2, "/report 5 Pasteur thieu thuoc 2 nguoi")
    assert "1. Lưu" in ((await zalo.next_message(KP2)).text or "")
    await zalo.send_text(KP2, "1")
    assert "#1" in ((await zalo.next_message(KP2)).text or "")
    before = {user: len(await prompts_to(ward.db, user)) for user in (str(KP1), KP2)}

    scheduler = ward.scheduler()
    clock.move_to(at("16:00"))
    assert len(await scheduler.tick()) == 2
    [t1_prompt] = await tg.wait_messages(T1)
    assert "Tổ dân phố 1" in (t1_prompt.text or "")
    clock.move_to(at("18:00"))
    assert len(await scheduler.tick()) == 2
    assert "Reminder: Tổ dân phố 1" in ((await tg.next_message(T1)).text or "")
    for user in (str(KP1), KP2):
        assert len(await prompts_to(ward.db, user)) == before[user], user
    await zalo.expect_silence(KP2)
    assert not [m for m in tg.messages_to(KP1) if "Any change" in (m.text or "")
                and m.message_id != question.message_id], tg.dump(KP1, "asked again")

    async with ward.db.read() as session:
        ben_thanh = await session.get(Unit, ward.id(WARD))
        assert ben_thanh is not None
        figures = await digest.ward_figures(session, ben_thanh, DAY, ward.runtime.settings)
    checked = figures.compliance
    assert (checked.expected, checked.reported, checked.on_time) == (3, 2, 2), checked
    assert [entry["unit"] for entry in checked.silent] == ["Tổ dân phố 1"], checked


async def test_a_quarter_heads_report_in_a_group_answers_for_the_quarter_not_the_group(
        ward: Ward, clock: time_machine.Traveller) -> None:
    """Khu phố 1's head files a report on a household of its Tổ dân phố 1 and taps a check-in
    button of the group (a trial found both counted for the group): the quarter has answered,
    the group has not. Its own head is asked and reminded, the escalation names it, and the
    digest and the dashboard count it silent, until that head answers."""
    tg = ward.tg
    t1_id = ward.id("26734-KP1-T1")
    async with ward.db.transaction() as session:
        t1 = await session.get(Unit, t1_id)
        assert t1 is not None
        await households.add(session, t1, "9 Lý Tự Trọng", head_name="Võ Văn Năm", members=3)
    clock.move_to(at("15:30"))
    [summary] = await say(tg, KP1, "/report 9 Ly Tu Trong thieu thuoc 2 nguoi")
    assert "Tổ dân phố 1" in (summary.text or ""), summary.text
    await tg.tap(KP1, data_for(summary, "Save"))
    await read_until(tg, KP1, "Saved: report #1")
    # Forged: KP1 was never sent a button for the group.
    await tg.tap(KP1, f"ck:{t1_id}:n", message_id=summary.message_id, strict=False)
    await read_until(tg, KP1, "This question is no longer open.")
    before = len(await prompts_to(ward.db, str(KP1)))

    scheduler = ward.scheduler()
    clock.move_to(at("16:00"))
    await scheduler.tick()
    [t1_prompt] = await tg.wait_messages(T1)
    assert "Tổ dân phố 1" in (t1_prompt.text or "") and "Any change" in (t1_prompt.text or "")
    # The quarter answered by its head's report: neither asked nor reminded.
    assert len(await prompts_to(ward.db, str(KP1))) == before
    clock.move_to(at("18:00"))
    await scheduler.tick()
    assert "Reminder: Tổ dân phố 1" in ((await tg.next_message(T1)).text or "")
    assert len(await prompts_to(ward.db, str(KP1))) == before
    clock.move_to(at("19:00"))
    await scheduler.tick()
    escalation = (await tg.next_message(STAFF)).text or ""
    assert "• Khu phố 1 › Tổ dân phố 1 — " in escalation, escalation
    assert "• Khu phố 1 — " not in escalation, escalation

    async def counted() -> tuple[tuple[int, int, int], list[str], dict[int, str]]:
        async with ward.db.read() as session:
            ben_thanh = await session.get(Unit, ward.id(WARD))
            assert ben_thanh is not None
            figures = await digest.ward_figures(session, ben_thanh, DAY, ward.runtime.settings)
            page = await overview.ward(session, ben_thanh.id, [ben_thanh.path], DAY,
                                      ward.runtime.settings, datetime.now(HCM))
        assert page is not None
        c = figures.compliance
        return ((c.expected, c.reported, c.on_time), [s["unit"] for s in c.silent],
                {row.unit_id: row.check_in for row in page.rows})

    found, silent, rows = await counted()
    assert found == (3, 1, 1) and silent == ["Tổ dân phố 1", "Khu phố 2"], (found, silent)
    assert rows[ward.id("26734-KP1")] == "on_time" and rows[t1_id] == "silent", rows
    # The group's own head answers (late, after the reminder): now it counts.
    await tg.tap(T1, data_for(t1_prompt, "No change today"))
    await read_until(tg, T1, "no change recorded for Tổ dân phố 1")
    found, silent, rows = await counted()
    assert found == (3, 2, 1) and silent == ["Khu phố 2"], (found, silent)
    assert rows[t1_id] == "late", rows


async def test_a_late_question_keeps_its_gaps_and_an_answered_reminder_is_not_escalated(
        ward: Ward, clock: time_machine.Traveller) -> None:
    tg, zalo = ward.tg, ward.zalo
    scheduler = ward.scheduler()
    ben_thanh, sai_gon = ward.id(WARD), ward.id("26737")
    clock.move_to(at("18:10"))  # started late: the question goes out now, not its reminder
    assert jobs(await scheduler.tick()) == [("prompt", ben_thanh), ("prompt", sai_gon)]
    [kp1_prompt] = await tg.wait_messages(KP1)
    await tap(tg, KP1, data_for(kp1_prompt, "No change today"))
    await zalo.next_message(KP2)
    clock.move_to(at("19:30"))  # the digest keeps its time
    assert jobs(await scheduler.tick()) == [("digest", ben_thanh), ("digest", sai_gon)]
    # Delivered before the clock jumps: a jump past its lease while the send still waits
    # its turn for the chat would let the sender claim the row again.
    [digest] = await tg.wait_messages(STAFF)
    assert digest.text == f"DIGEST {WARD} {DAY.isoformat()}"
    clock.move_to(at("20:09"))
    assert await scheduler.tick() == []
    clock.move_to(at("20:10"))  # 18:10 plus the two hours between question and reminder
    assert jobs(await scheduler.tick()) == [("reminder", ben_thanh), ("reminder", sai_gon)]
    [t1_reminder] = (await tg.wait_messages(T1, 2))[-1:]
    assert (t1_reminder.text or "").startswith("Reminder: Tổ dân phố 1")
    assert "Khu phố 2" in ((await zalo.next_message(KP2)).text or "")
    await zalo.send_text(KP2, "1")  # the reminder opened the check-in: a number answers it
    assert "không có gì thay đổi" in ((await zalo.next_message(KP2)).text or "")
    await tg.expect_silence(KP1)
    clock.move_to(at("21:10"))
    assert jobs(await scheduler.tick()) == [("escalation", ben_thanh),
                                            ("escalation", sai_gon)]
    [escalation] = await tg.wait_messages(STAFF)
    text = escalation.text or ""
    assert "1 unit has not answered" in text and "• Khu phố 1 › Tổ dân phố 1 — " in text, text
    assert "Khu phố 2" not in text


async def test_a_question_caught_up_too_late_is_not_chased_after_midnight(
        ward: Ward, clock: time_machine.Traveller) -> None:
    scheduler = ward.scheduler()
    clock.move_to(at("22:30"))
    assert [job for job, _ in jobs(await scheduler.tick())] == ["prompt", "prompt",
                                                                "digest", "digest"]
    clock.move_to(at("23:59"))
    assert await scheduler.tick() == []  # the reminder would be at 00:30: not today
    clock.move_to(at("00:30", date(2026, 11, 25)))
    assert await scheduler.tick() == []
    assert {job for job, _, _ in await job_runs(ward.db)} == {"prompt", "digest"}


async def tick_through(scheduler: Scheduler, clock: time_machine.Traveller,
                       *times: str) -> list[tuple[str, int]]:
    done = []
    for time in times:
        clock.move_to(at(time))
        done += jobs(await scheduler.tick())
    return done


async def test_a_restart_across_the_digest_time_runs_it_once_at_start(
        ward: Ward, clock: time_machine.Traveller) -> None:
    before = ward.scheduler()
    done = await tick_through(before, clock, "16:00", "18:00", "19:00", "19:29")
    assert [job for job, _ in done] == ["prompt"] * 2 + ["reminder"] * 2 + ["escalation"] * 2
    await before.stop()  # the process goes down before 19:30

    clock.move_to(at("19:45"))
    after = ward.scheduler()
    after.start()  # as `coso run` does: its first tick catches up
    try:
        for _ in range(200):
            if await digest_rows(ward.db):
                break
            await asyncio.sleep(0.05)
        escalation, digest = await ward.tg.wait_messages(STAFF, 2)
        assert "have not answered" in (escalation.text or "")
        assert digest.text == f"DIGEST {WARD} {DAY.isoformat()}"
        assert await after.tick() == []
    finally:
        await after.stop()
    assert await digest_rows(ward.db) == 1
    runs = await job_runs(ward.db)
    assert runs.count(("digest", ward.id(WARD), DAY.isoformat())) == 1


async def test_the_running_clock_sends_the_digest_at_its_minute_once(
        ward: Ward, clock: time_machine.Traveller) -> None:
    """APScheduler's own triggers, as `coso run` starts them, two seconds before the digest."""
    async with ward.db.transaction() as session:
        ben_thanh = await units.by_code(session, WARD)
        assert ben_thanh is not None
        await schedules.set_schedule(session, ward.runtime.settings, ben_thanh,
                                     Change(prompt_at="19:00", reminder_at="19:20",
                                            digest_at="19:30"))
    clock.move_to(at("19:29") + timedelta(seconds=58))
    scheduler = ward.scheduler()
    scheduler.start()  # the catch-up tick asks the question, the 19:30 tick sends the digest
    try:
        [prompt] = await ward.tg.wait_messages(KP1)
        assert "Any change" in (prompt.text or "")
        [digest] = await ward.tg.wait_messages(STAFF)
        assert digest.text == f"DIGEST {WARD} {DAY.isoformat()}"
        assert await scheduler.tick() == []
    finally:
        await scheduler.stop()
    assert await digest_rows(ward.db) == 1
    await ward.tg.expect_silence(STAFF)


async def test_yesterdays_missed_runs_are_not_done_the_next_morning(
        ward: Ward, clock: time_machine.Traveller) -> None:
    scheduler = ward.scheduler()
    clock.move_to(at("16:05"))
    assert len(await scheduler.tick()) == 2  # the prompts; then down until the next morning
    clock.move_to(at("07:00", date(2026, 11, 25)))
    assert await scheduler.tick() == []
    assert {job for job, _, _ in await job_runs(ward.db)} == {"prompt"}
    assert await digest_rows(ward.db) == 0
    clock.move_to(at("16:00", date(2026, 11, 25)))
    assert [job for job, _ in jobs(await scheduler.tick())] == ["prompt", "prompt"]


async def test_schedulers_sharing_one_database_run_each_key_once(
        ward: Ward, clock: time_machine.Traveller) -> None:
    """Three processes (each its own Database and pool) tick at the same moment."""
    others = [Database(ward.db.url) for _ in range(2)]
    try:
        schedulers = [ward.scheduler(), *(ward.scheduler(db) for db in others)]
        before = await last_outbox_id(ward.db)
        done = []
        for time in ("16:00", "18:00", "19:00", "19:30"):
            clock.move_to(at(time))
            results = await asyncio.gather(*(s.tick() for s in schedulers))
            done += [key for result in results for key in jobs(result)]
        assert len(done) == len(set(done)) == 8  # 4 jobs x 2 wards, each by one of them
        assert not any(await asyncio.gather(*(s.tick() for s in schedulers)))
    finally:
        for db in others:
            await db.dispose()
    runs = await job_runs(ward.db)
    assert len(runs) == len(set(runs)) == 8
    assert await digest_rows(ward.db) == 1
    async with ward.db.read() as session:
        per_account = dict((await session.execute(
            select(OutboxMessage.chat_account_id, func.count()).where(OutboxMessage.id > before)
            .group_by(OutboxMessage.chat_account_id))).all())
    # Each of the 4 leaders: the question and its reminder (nobody answered); the ward staff
    # member: the escalation and the digest.
    assert sorted(per_account.values()) == [2] * 5
    [digest] = [m for m in await ward.tg.wait_messages(STAFF, 2) if "DIGEST" in (m.text or "")]
    assert digest.text == f"DIGEST {WARD} {DAY.isoformat()}"


async def test_a_failed_run_leaves_no_claim_and_runs_at_the_next_tick(
        ward: Ward, clock: time_machine.Traveller) -> None:
    broken = Scheduler(ward.db, ward.runtime.settings, send_digest=failing_digest)
    done = await tick_through(broken, clock, "16:00", "18:00", "19:00", "19:30")
    assert ("digest", ward.id(WARD)) not in done and ("escalation", ward.id(WARD)) in done
    assert [job for job, unit, _ in await job_runs(ward.db)
            if unit == ward.id(WARD)] == ["prompt", "reminder", "escalation"]
    assert await digest_rows(ward.db) == 0  # what the broken digest queued rolled back
    clock.move_to(at("19:31"))
    assert jobs(await ward.scheduler().tick()) == [("digest", ward.id(WARD)),
                                                   ("digest", ward.id("26737"))]
    assert await digest_rows(ward.db) == 1


async def test_weekdays_only_skips_the_weekend_and_a_ward_change_is_seen_at_once(
        ward: Ward, clock: time_machine.Traveller) -> None:
    async with ward.db.transaction() as session:
        ben_thanh = await units.by_code(session, WARD)
        assert ben_thanh is not None
        await schedules.set_schedule(session, ward.runtime.settings, ben_thanh,
                                     Change(prompt_at="07:30", weekdays_only=True))
    scheduler = ward.scheduler()
    saturday = date(2026, 11, 28)
    clock.move_to(at("16:00", saturday))
    assert jobs(await scheduler.tick()) == [("prompt", ward.id("26737"))]
    clock.move_to(at("07:30", date(2026, 11, 30)))  # Monday, the ward's own time
    assert jobs(await scheduler.tick()) == [("prompt", ward.id(WARD))]


def test_escalation_follows_the_reminder_but_never_after_the_digest(db_url: str) -> None:
    settings = make_settings(db_url)
    times = schedules.defaults_of(settings)
    assert (times.reminder_at, times.escalation_at, times.digest_at) == ("18:00", "19:00",
                                                                         "19:30")
    late = make_settings(db_url, COSO_ESCALATION_AFTER_MINUTES=120)
    assert schedules.defaults_of(late).escalation_at == "19:30"
    assert schedules.effective(late, None).at("escalation") == "19:30"
    zero = make_settings(db_url, COSO_ESCALATION_AFTER_MINUTES=0)
    assert schedules.defaults_of(zero).escalation_at == "18:00"


# --- /schedule in chat -------------------------------------------------------------------------

ADMIN, ZALO_STAFF = 301, "z-staff"


async def test_admin_changes_a_wards_time_in_telegram_and_bad_times_are_re_asked(
        ward: Ward) -> None:
    tg = ward.tg
    await register(tg, ADMIN, ward.seeded.codes["admin:CITY"], unit="Thành phố Hồ Chí Minh")
    [which] = await say(tg, ADMIN, "/schedule")
    assert (which.text or "").startswith("Which ward's schedule?")
    assert which.button_texts == ["Phường Bến Thành", "Phường Sài Gòn", "Cancel"]
    [what] = await tap(tg, ADMIN, data_for(which, "Phường Bến Thành"))
    assert what.button_texts == ["Check-in question: 16:00", "Reminder: 18:00",
                                 "Digest: 19:30", "Days: every day", "Back"]
    [ask] = await tap(tg, ADMIN, data_for(what, "Check-in question: 16:00"))
    assert (ask.text or "").startswith("New time for the check-in question")
    [again] = await say(tg, ADMIN, "25:00")
    assert (again.text or "").startswith("25:00 is not a time of day: a time goes from 0:00 "
                                         "to 23:59.")
    [again] = await say(tg, ADMIN, "mai 7h")
    assert (again.text or "").startswith("A time of day is needed here, not a date.")
    [again] = await say(tg, ADMIN, "chào")
    assert (again.text or "").startswith("That is no time of day; write it as 16:30, 16h30 "
                                         "or 4:30 pm.")
    [again] = await say(tg, ADMIN, "18:30")
    assert (again.text or "").startswith("The reminder must come after the check-in question.")
    [confirm] = await say(tg, ADMIN, "7h30")
    text = confirm.text or ""
    assert "Daily schedule of Phường Bến Thành:" in text and "• Check-in question: 07:30" in text
    assert "• Units still silent, to ward staff: 19:00" in text and "Save this schedule?" in text
    [saved] = await tap(tg, ADMIN, data_for(confirm, "Confirm"))
    assert (saved.text or "").startswith("Saved.") and "07:30" in (saved.text or "")
    async with ward.db.read() as session:
        ben_thanh = await units.by_code(session, WARD)
        sai_gon = await units.by_code(session, "26737")
        assert ben_thanh is not None and sai_gon is not None
        times = await schedules.schedule_of(session, ward.runtime.settings, ben_thanh)
        assert (times.prompt_at, times.own) == ("07:30", frozenset({"prompt_at"}))
        other = await schedules.schedule_of(session, ward.runtime.settings, sai_gon)
        assert other.prompt_at == "16:00"
    [refused] = await say(tg, KP1, "/schedule")
    assert "Sorry, this is only for" in (refused.text or "")


async def test_ward_staff_schedule_their_own_ward_on_zalo_with_numbers(ward: Ward) -> None:
    zalo = ward.zalo

    async def step(text: str) -> str:
        await zalo.send_text(ZALO_STAFF, text)
        return (await zalo.next_message(ZALO_STAFF)).text or ""

    assert "Phường Bến Thành" in await step(f"/start {ward.seeded.codes['ward_staff:WARD:1']}")
    await step("/lang")
    assert "Language set to English." in await step("2")
    menu = await step("/schedule")  # one ward: no need to ask which
    assert "What do you want to change?" in menu and "4. Days: every day" in menu, menu
    assert "Sài Gòn" not in menu
    assert "2. Monday to Friday" in await step("4")
    summary = await step("2")
    assert "• Days: Monday to Friday" in summary and "1. Confirm" in summary, summary
    assert (await step("1")).startswith("Saved.")
    await step("/schedule")
    assert "New time for the digest" in await step("3")
    assert (await step("17:00")).startswith("The digest must come after the reminder.")
    assert "• Digest to ward staff: 20:15" in await step("20h15")
    assert "• Digest to ward staff: 20:15" in await step("1")
    async with ward.db.read() as session:
        ben_thanh = await units.by_code(session, WARD)
        assert ben_thanh is not None
        times = await schedules.schedule_of(session, ward.runtime.settings, ben_thanh)
    assert (times.digest_at, times.weekdays_only) == ("20:15", True)
    assert times.own == {"digest_at", "weekdays_only"}
