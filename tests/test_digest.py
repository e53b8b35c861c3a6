"""The daily digest: figures against a hand-counted ward, its text (vi, en), the chart, the
`coso digest` json, and the digest reaching ward staff over the Telegram double."""

from __future__ import annotations

import itertools
import json
import math
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.digest import send_digest, text
from bot.i18n import Translator
from storage import digest, invites, reports, units
from storage.db import Database
from storage.models import (
    ChatAccount,
    CheckIn,
    Directive,
    DirectiveRecipient,
    Drill,
    DrillParticipant,
    DrillScenario,
    Household,
    Person,
    PostHolding,
    Report,
    RoleAssignment,
    SupportDelivery,
    SupportEligibility,
    UnitPost,
)
from tests.conftest import Coso, StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import data_for, free_port, register, say, start_telegram, tap

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2026, 11, 20)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HCM).astimezone(UTC)


async def build_ward(db: Database, day: date = DAY, seed: bool = True) -> None:
    """Hand-counted fixture in Phường Bến Thành (26734) on DAY:
    leaders on KP1 (An, its head, on Telegram; Cúc, its deputy, with no chat yet) and T1
    (Bình, who blocked the bot); KP2 has none: its post of head of quarter is vacant since
    DAY-12 (KP1's posts are held: not vacancies).
    Households: 3 in KP1 (one poor + elderly alone, one poor), 1 in T1 (pregnant).
    Reports: f0 urgent open since yesterday 10:00 (KP1, by An, taken by nobody), f0 new
    today open (T1),
    short_food new today resolved today (KP1), f1 opened DAY-3 resolved DAY-1 (KP1).
    Check-ins on DAY: KP1 at 17:00 (on time, reminder 18:00), T1 silent.
    Support: nq68_cash 1,500,000 ₫ to H1 today and to H2 yesterday; eligible H1, H2, H3.
    One drill started DAY 09:00, two participants: KP1 ack 10 min, step 1 in 4 min, done 40
    min; T1 ack 30. Its scenario ran at DAY-20 (drill #1), when KP1's step 1 took 10 min.
    One directive on DAY to two recipients, one acknowledged.
    The other ward (26737) has a report that must not count.
    """
    if seed:
        await seed_ward(db)
    async with db.transaction() as session:
        ward = await units.by_code(session, "26734")
        kp1 = await units.by_code(session, "26734-KP1")
        kp2 = await units.by_code(session, "26734-KP2")
        t1 = await units.by_code(session, "26734-KP1-T1")
        other = await units.by_code(session, "26737-KP1")
        assert ward and kp1 and kp2 and t1 and other
        an, binh = Person(full_name="Nguyễn Văn An"), Person(full_name="Trần Thị Bình")
        cuc = Person(full_name="Lê Thị Cúc")
        session.add_all([an, binh, cuc])
        await session.flush()
        posted = at(day - timedelta(days=30), 8)  # in post well before the chart's week
        grants = [RoleAssignment(person_id=who.id, unit_id=where.id, role="leader",
                                 created_at=posted)
                  for who, where in ((an, kp1), (binh, t1), (cuc, kp1))]
        seats = [UnitPost(unit_id=kp1.id, post_key=key, created_at=posted, vacant_since=None)
                 for key in ("truong_khu_pho", "pho_truong")]
        session.add_all([*grants, *seats,
                         ChatAccount(channel="telegram", external_id="8001", person_id=an.id),
                         ChatAccount(channel="telegram", external_id="9", person_id=binh.id,
                                     blocked_at=at(day, 8)),
                         UnitPost(unit_id=kp2.id, post_key="truong_khu_pho", created_at=posted,
                                  vacant_since=at(day - timedelta(days=12), 8))])
        await session.flush()
        session.add_all([PostHolding(unit_post_id=seat.id, person_id=grant.person_id,
                                     role_assignment_id=grant.id, started_at=posted)
                         for seat, grant in zip(seats, (grants[0], grants[2]), strict=True)])
        homes = [Household(unit_id=kp1.id, code="1", poor=True, elderly_alone=True),
                 Household(unit_id=kp1.id, code="2", poor=True),
                 Household(unit_id=kp1.id, code="3"),
                 Household(unit_id=t1.id, code="4", pregnant=True),
                 Household(unit_id=other.id, code="5", poor=True)]
        session.add_all(homes)
        await session.flush()
        h1, h2, h3, h4, h5 = homes

        def report(home: Household, key: str, created: datetime, urgent: bool = False,
                   resolved: datetime | None = None, by: Person | None = None) -> Report:
            return Report(household_id=home.id, unit_id=home.unit_id, category_key=key,
                          people_count=1, urgent=urgent, created_at=created,
                          status="resolved" if resolved else "open", resolved_at=resolved,
                          created_by_person_id=by.id if by else None)

        for filed in (report(h1, "f0", at(day - timedelta(days=1), 10), urgent=True, by=an),
                      report(h4, "f0", at(day, 9)),
                      report(h2, "short_food", at(day, 8), resolved=at(day, 15)),
                      report(h3, "f1", at(day - timedelta(days=3), 9),
                             resolved=at(day - timedelta(days=1), 9)),
                      report(h5, "f0", at(day, 9), urgent=True)):
            await reports.add_recorded(session, filed)
        session.add_all([
            CheckIn(unit_id=kp1.id, day=day, answer="no_change", person_id=an.id,
                    created_at=at(day, 17)),
            SupportDelivery(household_id=h1.id, unit_id=kp1.id, policy_key="nq68_cash",
                            amount=1_500_000, status="delivered", delivered_on=day),
            SupportDelivery(household_id=h2.id, unit_id=kp1.id, policy_key="nq68_cash",
                            amount=1_500_000, status="delivered",
                            delivered_on=day - timedelta(days=1)),
            *(SupportEligibility(household_id=h.id, unit_id=h.unit_id, policy_key="nq68_cash")
              for h in (h1, h2, h3)),
        ])
        scenario = await _a_scenario(session)
        # The scenario ran before, outside the week: its step 1 took KP1 10 minutes, now 4.
        before = Drill(unit_id=ward.id, scenario_key=scenario,
                       started_at=at(day - timedelta(days=20), 9))
        session.add(before)
        await session.flush()
        session.add(DrillParticipant(drill_id=before.id, unit_id=kp1.id,
                                     acknowledged_at=at(day - timedelta(days=20), 9, 10),
                                     steps_done=1, step_seconds=[1200]))
        drill = Drill(unit_id=ward.id, scenario_key=scenario, started_at=at(day, 9))
        # The dashboard's tests read this directive by its text, "x".
        directive = Directive(scope_unit_id=ward.id, text="x", created_at=at(day, 7))
        session.add_all([drill, directive])
        await session.flush()
        session.add_all([
            DrillParticipant(drill_id=drill.id, unit_id=kp1.id, acknowledged_at=at(day, 9, 10),
                             completed_at=at(day, 9, 40), steps_done=1, step_seconds=[840]),
            DrillParticipant(drill_id=drill.id, unit_id=t1.id, acknowledged_at=at(day, 9, 30)),
            DirectiveRecipient(directive_id=directive.id, person_id=an.id, unit_id=kp1.id,
                               acknowledged_at=at(day, 8)),
            DirectiveRecipient(directive_id=directive.id, person_id=binh.id, unit_id=t1.id),
        ])


async def _a_scenario(session: AsyncSession) -> str:
    return str((await session.execute(select(DrillScenario.key).limit(1))).scalar_one())


async def figures_of(db: Database, db_url: str) -> digest.WardFigures:
    async with db.read() as session:
        ward = await units.by_code(session, "26734")
        assert ward is not None
        return await digest.ward_figures(session, ward, DAY, make_settings(db_url))


async def test_an_urgent_case_is_aged_to_now_on_the_day_itself(db: Database,
                                                                db_url: str) -> None:
    """Asked at 10:20 on the day, the case filed yesterday at 10:00 is 24 hours old, not the
    38 it will be at the day's end; a `now` after the day changes nothing (a past digest)."""
    await build_ward(db)
    async with db.read() as session:
        ward = await units.by_code(session, "26734")
        assert ward is not None
        settings = make_settings(db_url)
        during = await digest.ward_figures(session, ward, DAY, settings,
                                           now=at(DAY, 10, 20).astimezone(UTC))
        after = await digest.ward_figures(session, ward, DAY, settings,
                                          now=at(DAY + timedelta(days=3), 9).astimezone(UTC))
        filing = await digest.ward_figures(session, ward, DAY - timedelta(days=1), settings,
                                           now=at(DAY - timedelta(days=1), 10, 5))
    assert [u.age_hours for u in during.urgent] == [24]
    assert [u.age_hours for u in after.urgent] == [38]
    assert [u.age_hours for u in filing.urgent] == [0]  # minutes after filing, not "14 hours"
    assert text._age(Translator("vi", HCM), 0) == "mới mở chưa đến 1 giờ"


def test_the_check_in_mark_is_a_tick_only_from_ninety_percent() -> None:
    """✅ from storage.digest.GOOD_COMPLIANCE (90%); a quarter reads ⚠️ (the trial's bug)."""
    assert [digest.compliance_level(v) for v in (1.0, 0.9, 0.89, 0.25, 0.0, None)] == [
        "good", "good", "low", "low", "none", ""]
    assert [text.MARKS[digest.compliance_level(v)] for v in (0.95, 0.25)] == ["✅", "⚠️"]


def test_durations_read_in_minutes_from_a_minute_on() -> None:
    vi, en = Translator("vi", HCM), Translator("en", HCM)
    assert vi.duration(timedelta(seconds=132)) == "2 phút"  # not "132 giây"
    assert vi.duration(timedelta(seconds=45)) == "45 giây"
    assert en.duration(timedelta(minutes=95)) == "95 minutes"
    assert en.duration(timedelta(hours=4)) == "4 hours"


async def test_figures_match_the_hand_count(db: Database, db_url: str) -> None:
    await build_ward(db)
    f = await figures_of(db, db_url)
    by_key = {c.key: (c.new, c.open, c.resolved, c.to_date) for c in f.categories}
    assert by_key == {"f0": (1, 2, 0, 2), "f1": (0, 0, 0, 1), "short_food": (1, 0, 1, 1)}
    assert f.urgent_open == 1
    assert [(u.unit, u.household, u.category_key, u.age_hours) for u in f.urgent] == [
        ("Khu phố 1", "1", "f0", 38)]
    assert f.households == 4
    assert f.flags == {"elderly_alone": 1, "disability": 0, "poor": 2, "near_poor": 0,
                       "young_children": 0, "pregnant": 1}
    [cash] = f.policies
    assert (cash.key, cash.households_today, cash.amount_today, cash.households_to_date,
            cash.amount_to_date, cash.eligible) == ("nq68_cash", 1, 1_500_000, 2, 3_000_000, 3)
    assert cash.coverage == pytest.approx(0.6667)
    c = f.compliance
    assert (c.expected, c.reported, c.on_time, c.late, c.rate) == (2, 1, 1, 0, 0.5)
    assert c.silent == [{"unit": "Tổ dân phố 1", "leaders": ["Trần Thị Bình"],
                         "unconnected": []}]
    assert [(u.unit, u.post_key, u.person) for u in f.unconnected] == [
        ("Khu phố 1", "pho_truong", "Lê Thị Cúc")]
    assert [(v.unit, v.post_key, v.days) for v in f.vacancies] == [
        ("Khu phố 2", "truong_khu_pho", 12)]
    assert f.blocked == ["Trần Thị Bình"]
    assert f.drills is not None
    assert (f.drills.drills, f.drills.participants, f.drills.acknowledged, f.drills.completed,
            f.drills.response_rate, f.drills.median_ack_minutes,
            f.drills.median_complete_minutes) == (1, 2, 2, 1, 1.0, 20.0, 40.0)
    assert (f.drills.previous, [(c.step, c.seconds) for c in f.drills.step_changes]) == (
        1, [(1, -360.0)])
    assert f.directives is not None
    assert (f.directives.recipients, f.directives.acknowledged) == (2, 1)
    assert [(d.day, d.open) for d in f.trend] == [
        ("2026-11-14", 0), ("2026-11-15", 0), ("2026-11-16", 0), ("2026-11-17", 1),
        ("2026-11-18", 1), ("2026-11-19", 1), ("2026-11-20", 2)]
    assert [d.compliance for d in f.trend][-2:] == [0.0, 0.5]


GOLDEN = Path(__file__).parent / "golden" / "digest"
UPDATE = os.environ.get("COSO_GOLDEN_UPDATE") == "1"  # rewrite the files, then review the diff


def check_golden(name: str, found: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(found + "\n", encoding="utf-8")
    assert found + "\n" == path.read_text(encoding="utf-8"), f"{name} differs"


@pytest.mark.parametrize("locale", ["vi", "en"])
async def test_text_reads_like_the_golden_digest(db: Database, db_url: str, locale: str) -> None:
    await build_ward(db)
    f = await figures_of(db, db_url)
    t = Translator(locale, HCM)
    found = text.render(t, f, today=DAY)
    check_golden(f"demo_ward.{locale}.txt", found)
    assert len(found) <= text.LIMIT
    assert all(len(part) < 2000 for part in text.parts(found, 2000))
    assert "—" not in found.split("\n", 1)[1]  # no empty-value dashes below the title


@pytest.mark.parametrize("locale", ["vi", "en"])
async def test_a_200_unit_ward_stays_within_the_limits(db: Database, db_url: str,
                                                       locale: str) -> None:
    await build_large_ward(db)
    async with db.read() as session:
        ward = await units.by_code(session, "26740")
        assert ward is not None
        f = await digest.ward_figures(session, ward, DAY, make_settings(db_url))
    found = text.render(Translator(locale, HCM), f, today=DAY)
    check_golden(f"large_ward.{locale}.txt", found)
    assert len(found) <= text.LIMIT
    pieces = text.parts(found, 2000)
    assert len(pieces) > 1 and all(len(part) < 2000 for part in pieces)
    assert "\n\n".join(pieces) == found  # split between sections only, nothing lost
    # Every quarter has a "Tổ dân phố 1": the silent list names the quarter as well.
    assert "Khu phố 2 › Tổ dân phố 3" in found


async def build_large_ward(db: Database) -> None:
    """Phường Tân Định: 20 quarters of 9 groups (200 units), a leader on all but every
    tenth; the groups of the first eight quarters answered the check-in; 14 urgent cases."""
    async with db.transaction() as session:
        city = await units.upsert(session, "79", "Thành phố Hồ Chí Minh", "province", None)
        ward = await units.upsert(session, "26740", "Phường Tân Định", "ward", city)
        made = []
        for q in range(1, 21):
            quarter = await units.upsert(session, f"26740-KP{q}", f"Khu phố {q}", "quarter",
                                         ward)
            made.append(quarter)
            for g in range(1, 10):
                made.append(await units.upsert(session, f"26740-KP{q}-T{g}",
                                               f"Tổ dân phố {g}", "group", quarter))
        family = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi")
        given = ("An", "Bình", "Cường", "Dung", "Hoa", "Khánh", "Lan", "Minh", "Nam")
        for index, unit in enumerate(made):
            if index % 10 == 9:  # a vacancy: the group's head, vacant a day more each quarter
                session.add(UnitPost(unit_id=unit.id, post_key="to_truong",
                                     created_at=at(DAY - timedelta(days=60), 8),
                                     vacant_since=at(DAY - timedelta(days=index // 10 + 1), 8)))
                continue
            person = Person(full_name=f"{family[index % 8]} Văn {given[index % 9]}")
            session.add(person)
            await session.flush()
            session.add(RoleAssignment(person_id=person.id, unit_id=unit.id, role="leader",
                                       created_at=at(DAY - timedelta(days=3), 8)))
            if unit.code.startswith(tuple(f"26740-KP{q}-" for q in range(1, 9))) and (
                    index % 10 != 9):
                session.add(CheckIn(unit_id=unit.id, day=DAY, answer="no_change",
                                    person_id=person.id, created_at=at(DAY, 17)))
            home = Household(unit_id=unit.id, code=f"{index + 1} Hai Bà Trưng",
                             poor=index % 3 == 0, young_children=index % 4 == 0)
            session.add(home)
            await session.flush()
            if index < 14:
                await reports.add_recorded(session, Report(
                    household_id=home.id, unit_id=unit.id, category_key="f0", people_count=2,
                    urgent=True, status="open",
                    created_at=at(DAY - timedelta(days=index % 4), 8)))


async def test_chart_is_a_png(db: Database, db_url: str, tmp_path: Path) -> None:
    from bot.digest import chart

    await build_ward(db)
    f = await figures_of(db, db_url)
    path = chart.draw(Translator("vi", HCM), f, tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_cli_json_carries_the_figures_of_the_text(db: Database, coso: Coso) -> None:
    await build_ward(db)
    code, out, _ = await coso("digest", "--unit", "26734", "--date", DAY.isoformat(),
                              "--format", "json")
    assert code == 0
    found = json.loads(out)
    assert found["kind"] == "ward"
    figures = found["figures"]
    assert set(figures) == {"ward_code", "ward_name", "day", "days", "recent_days",
                            "categories",
                            "urgent_open", "urgent", "households", "flags", "policies",
                            "compliance", "vacancies", "blocked", "drills", "directives",
                            "trend", "unconnected"}
    assert figures["unconnected"] == [{"unit": "Khu phố 1", "post_key": "pho_truong",
                                       "label_vi": "Phó trưởng khu phố / Phó trưởng ấp",
                                       "label_en": "Deputy head of quarter / hamlet",
                                       "person": "Lê Thị Cúc"}]
    assert figures["compliance"]["expected"] == 2 and figures["compliance"]["reported"] == 1
    assert figures["policies"][0]["amount_to_date"] == 3_000_000
    [vacant] = figures["vacancies"]
    assert (vacant["unit"], vacant["post_key"], vacant["days"]) == (
        "Khu phố 2", "truong_khu_pho", 12)
    code, out, _ = await coso("digest", "--unit", "26734", "--date", DAY.isoformat())
    assert code == 0 and "1 of 2 units reported (50%)" in out and "3,000,000" in out
    assert "Khu phố 2 › Head of quarter / hamlet: vacant 12 days" in out
    assert "Khu phố 1 › Deputy head of quarter / hamlet: Lê Thị Cúc" in out
    # A past day in Vietnamese names it once: "Báo cáo ngày thứ …", not "ngày ngày".
    code, out, _ = await coso("digest", "--unit", "26734", "--date", DAY.isoformat(),
                              "--lang", "vi")
    assert code == 0 and "Báo cáo ngày " in out and "ngày ngày" not in out, out
    code, out, _ = await coso("digest", "--unit", "79", "--date", DAY.isoformat(),
                              "--format", "json")
    rollup = json.loads(out)
    assert rollup["kind"] == "rollup" and rollup["figures"]["wards"] == 2
    assert rollup["figures"]["by_urgent"][0]["urgent_open"] == 1
    assert (await coso("digest", "--unit", "nope"))[0] != 0


async def test_digest_reaches_ward_staff_over_telegram(start_bot: StartBot,
                                                       tg: TelegramDouble) -> None:
    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    staff = 501
    await register(tg, staff, seeded.codes["ward_staff:WARD"], unit="Phường Bến Thành")
    queued = await send_digest(runtime.db, runtime.settings, seeded.unit_ids["26734"], DAY)
    assert queued == 2
    text_message, photo = await tg.wait_messages(staff, 2)
    assert "📊 Phường Bến Thành: digest for" in (text_message.text or "")
    assert photo.text == "Open reports and daily check-in rate, last 7 days"
    assert isinstance(photo.photo, bytes) and photo.photo[:4] == b"\x89PNG"


# --- /summary over the doubles ---------------------------------------------------------------

async def _invite(db: Database, unit_code: str, role: str) -> str:
    async with db.transaction() as session:
        unit = await units.by_code(session, unit_code)
        assert unit is not None
        made = await invites.create(session, unit, role, timedelta(days=7))
    return made[0].code


async def test_summary_over_telegram_with_scope(start_bot: StartBot, tg: TelegramDouble) -> None:
    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    staff, admin, leader, other_staff = 601, 602, 603, 604
    await register(tg, staff, seeded.codes["ward_staff:WARD"], unit="Phường Bến Thành")
    [question] = await say(tg, staff, "/summary")
    assert "Which period?" in (question.text or "")
    # The digest's text, then its chart as a photo, as the evening digest sends them.
    answer, chart = await tap(tg, staff, data_for(question, "Today"), count=2)
    assert "📊 Phường Bến Thành: digest for today" in (answer.text or "")
    assert "🏠 No households on record yet." in (answer.text or "")
    assert chart.text == "Open reports and daily check-in rate, last 7 days"
    assert isinstance(chart.photo, bytes) and chart.photo[:4] == b"\x89PNG"
    # The period typed with the command: no question, no extra tap.
    week, _ = await say(tg, staff, "/summary 7", count=2)
    assert "📊 Phường Bến Thành: the last 7 days" in (week.text or ""), week.describe()

    await register(tg, admin, seeded.codes["admin:CITY"], unit="Thành phố Hồ Chí Minh")
    [pick] = await say(tg, admin, "/summary")
    assert "Which ward?" in (pick.text or "")
    [period] = await tap(tg, admin, data_for(pick, "All wards of Thành phố Hồ Chí Minh"))
    [rolled] = await tap(tg, admin, data_for(period, "The last 7 days"))
    assert "📊 Thành phố Hồ Chí Minh: 2 wards" in (rolled.text or "")
    assert "Wards by urgent open reports:" in (rolled.text or "")

    await register(tg, leader, seeded.codes["leader:KP1"])
    [refused] = await say(tg, leader, "/summary")
    assert "Sorry, this is only for" in (refused.text or "")

    code = await _invite(runtime.db, "26737", "ward_staff")
    await register(tg, other_staff, code, unit="Phường Sài Gòn")
    [question] = await say(tg, other_staff, "/summary")
    answer, _ = await tap(tg, other_staff, data_for(question, "Today"), count=2)
    assert "Phường Sài Gòn" in (answer.text or "") and "Bến Thành" not in (answer.text or "")


async def test_summary_over_zalo_as_numbered_text(start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime = await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    seeded = await seed_ward(runtime.db)
    await build_ward(runtime.db, datetime.now(HCM).date(), seed=False)
    await zalo.send_text("staff", f"/start {seeded.codes['ward_staff:WARD']}")
    await zalo.next_message("staff")
    await zalo.send_text("staff", "/summary")
    menu = (await zalo.next_message("staff")).text or ""
    assert "3." in menu
    await zalo.send_text("staff", "3")  # the last 30 days
    reply = (await zalo.next_message("staff")).text or ""
    assert "Phường Bến Thành: 30 ngày qua" in reply and "3.000.000" in reply, reply
    # Each figure is for the period: the check-ins owed over 30 days, not today's alone.
    assert "1 trên 60 lượt" in reply, reply
    assert "mới trong 30 ngày qua" in reply, reply


async def test_a_city_admin_types_the_ward_instead_of_scrolling_168_buttons(
        start_bot: StartBot, tg: TelegramDouble) -> None:
    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    async with runtime.db.transaction() as session:
        city = await units.by_code(session, "79")
        assert city is not None
        for number in range(1, 13):  # 14 wards and the roll-up: more than buttons take
            await units.upsert(session, f"9{number:04d}", f"Phường Thử {number}", "ward", city)
    admin = 611
    await register(tg, admin, seeded.codes["admin:CITY"], unit="Thành phố Hồ Chí Minh")
    [ask] = await say(tg, admin, "/summary")
    assert "type part of the name, or the code; 15 to choose from" in (ask.text or "")
    assert ask.button_texts == ["Cancel"]  # no ward button: only the steering one
    [again] = await say(tg, admin, "phuong")
    assert "14 match “phuong” (Phường Thử " in (again.text or "")
    assert "Phường Thử 7…); type more of the name, or the code." in (again.text or "")
    [again] = await say(tg, admin, "phuong zzz")
    assert "Nothing matches “phuong zzz”" in (again.text or "")
    [period] = await say(tg, admin, "ben thanh")
    answer, _ = await tap(tg, admin, data_for(period, "Today"), count=2)
    assert "📊 Phường Bến Thành: digest for" in (answer.text or "")
    await say(tg, admin, "/summary")
    [period] = await say(tg, admin, "26737")
    answer, _ = await tap(tg, admin, data_for(period, "Today"), count=2)
    assert "📊 Phường Sài Gòn: digest for" in (answer.text or "")
    await say(tg, admin, "/summary")
    [period] = await say(tg, admin, "all")
    [rolled] = await tap(tg, admin, data_for(period, "The last 7 days"))
    assert "📊 Thành phố Hồ Chí Minh: 14 wards" in (rolled.text or "")


def _chart_text(fig: Any) -> tuple[list[str], list[str], list[str], list[float]]:
    """(the open cases' tick labels, the x labels, the legend, the rate line's points)."""
    left, right = fig.axes
    fig.canvas.draw()  # tick labels are filled in when drawn
    ticks = [label.get_text() for label in left.get_yticklabels()]
    days = [label.get_text() for label in left.get_xticklabels()]
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    return ticks, days, legend, list(right.lines[0].get_ydata())


async def test_chart_axes_legend_and_gap(db: Database, db_url: str) -> None:
    from bot.digest import chart

    await build_ward(db)
    f = await figures_of(db, db_url)
    ticks, days, legend, rates = _chart_text(chart.figure(Translator("vi", HCM), f))
    assert ticks and all(tick.isdigit() for tick in ticks)  # whole cases, never "0.5"
    assert len(set(ticks)) == len(ticks)  # not five ticks all reading "0"
    assert days == ["14/11", "15/11", "16/11", "17/11", "18/11", "19/11", "20/11"]
    assert legend == ["Báo cáo đang mở", "Tỷ lệ báo cáo ngày (%)"]
    assert rates[-2:] == [0.0, 50.0]

    # A ward whose leaders took up their posts three days ago: the days before are a gap.
    await build_large_ward(db)
    async with db.read() as session:
        ward = await units.by_code(session, "26740")
        assert ward is not None
        large = await digest.ward_figures(session, ward, DAY, make_settings(db_url))
    _, _, _, rates = _chart_text(chart.figure(Translator("en", HCM), large))
    assert [math.isnan(rate) for rate in rates] == [True] * 3 + [False] * 4
    assert rates[-1] == pytest.approx(100 * 64 / 180, abs=0.1)


async def test_chart_days_read_as_every_other_date_does(db: Database, db_url: str) -> None:
    """The axis writes a day as the caption under it and the digest do, "1/12" and not
    "01/12" (a new-user trial), and seven of them side by side do not touch, in either
    language: in English the month is written where it changes only."""
    from bot.digest import chart

    day = date(2026, 12, 3)
    await build_ward(db, day)
    async with db.read() as session:
        ward = await units.by_code(session, "26734")
        assert ward is not None
        f = await digest.ward_figures(session, ward, day, make_settings(db_url))
    wanted = {"vi": ["27/11", "28/11", "29/11", "30/11", "1/12", "2/12", "3/12"],
              "en": ["Nov 27", "28", "29", "30", "Dec 1", "2", "3"]}
    captions = {"vi": "từ 27/11/2026 đến 3/12/2026", "en": "Nov 27, 2026 to Dec 3, 2026"}
    for locale, days in wanted.items():
        fig = chart.figure(Translator(locale, HCM), f)
        _, found, _, _ = _chart_text(fig)
        assert found == days, found
        left = fig.axes[0]
        assert left.get_xlabel() == captions[locale]
        boxes = [label.get_window_extent() for label in left.get_xticklabels()]
        assert all(a.x1 < b.x0 for a, b in itertools.pairwise(boxes)), (locale, boxes)


async def _zalo_staff(start_bot: StartBot, zalo: ZaloDouble, **settings: Any) -> Any:
    runtime = await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url,
                              **settings)
    seeded = await seed_ward(runtime.db)
    await build_ward(runtime.db, DAY, seed=False)
    await zalo.send_text("staff", f"/start {seeded.codes['ward_staff:WARD']}")
    await zalo.next_message("staff")
    return runtime, seeded


async def test_zalo_staff_get_the_chart_at_a_signed_url_that_expires(
        start_bot: StartBot, zalo: ZaloDouble, tmp_path: Path) -> None:
    from bot import files

    port = free_port()
    zalo.fetch_photos = True  # the double fetches the photo's URL, as Zalo does
    runtime, seeded = await _zalo_staff(start_bot, zalo, COSO_WEB_PORT=port,
                                        COSO_PUBLIC_URL=f"http://127.0.0.1:{port}",
                                        COSO_DATA_DIR=str(tmp_path / "data"))
    await send_digest(runtime.db, runtime.settings, seeded.unit_ids["26734"], DAY)
    digest_text = await zalo.next_message("staff")  # one message: it is under 2,000 here
    assert (digest_text.text or "").startswith("📊 Phường Bến Thành: tình hình")
    assert "Biểu đồ" not in (digest_text.text or "")  # the chart comes itself
    photo = await zalo.next_message("staff")
    assert photo.method == "sendPhoto" and photo.text == (
        "Báo cáo đang mở và tỷ lệ báo cáo ngày, 7 ngày qua")
    assert (photo.photo_bytes or b"")[:8] == b"\x89PNG\r\n\x1a\n"  # Zalo got the chart
    url = photo.photo or ""
    assert url.startswith(f"http://127.0.0.1:{port}/files/charts/digest-26734-2026-11-20-vi")
    assert "Bình" not in url and "An" not in url.split("?")[0]  # no one's name in a link
    async with aiohttp.ClientSession() as client:
        async with client.get(url) as got:
            assert got.status == 200 and got.content_type == "image/png"
            assert (await got.read())[:8] == b"\x89PNG\r\n\x1a\n"
        chart_file = tmp_path / "data" / "charts" / "digest-26734-2026-11-20-vi.png"
        expired = files.signed_url(runtime.settings, chart_file,
                                   now=datetime.now(UTC) - timedelta(days=8))
        forged = url.replace("digest-26734", "digest-26737")
        tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
        for bad in (expired, forged, tampered, url.split("?")[0],
                    f"http://127.0.0.1:{port}/files/..%2Ffile-secret?e=9999999999&s=x"):
            async with client.get(str(bad)) as refused:
                assert refused.status == 404, bad
    secret_file = tmp_path / "data" / "file-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600


async def test_zalo_without_a_public_url_is_told_where_the_chart_is(
        start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime, seeded = await _zalo_staff(start_bot, zalo)
    queued = await send_digest(runtime.db, runtime.settings, seeded.unit_ids["26734"], DAY)
    messages = [await zalo.next_message("staff") for _ in range(queued)]
    assert all(m.method == "sendMessage" for m in messages)
    joined = "\n".join(m.text or "" for m in messages)
    assert joined.count("Biểu đồ 7 ngày qua") == 1, joined
    await zalo.expect_silence("staff", 0.3)


async def test_unit_paths_where_names_repeat(db: Database, db_url: str) -> None:
    """The shortest path that makes a unit unique: in the export's unit column, and for any
    set of units a list names (one storage function)."""
    from storage import export

    await build_large_ward(db)
    async with db.read() as session:
        ward = await units.by_code(session, "26740")
        kp2 = await units.by_code(session, "26740-KP2")
        kp2_t1 = await units.by_code(session, "26740-KP2-T1")
        kp3_t5 = await units.by_code(session, "26740-KP3-T5")
        assert ward and kp2 and kp2_t1 and kp3_t5
        # Alone, a name is enough; beside a namesake, the quarter comes first.
        assert await units.short_paths(session, [kp2_t1.path]) == {kp2_t1.path: "Tổ dân phố 1"}
        both = await units.short_paths(session, [kp2_t1.path, kp3_t5.path, kp2.path])
        assert both == {kp2_t1.path: "Tổ dân phố 1", kp3_t5.path: "Tổ dân phố 5",
                        kp2.path: "Khu phố 2"}
        households = (await export.sheets(session, ward, export.Period(DAY, DAY, HCM),
                                          "vi"))[0]
    column = {row[0]: row[1] for row in households.rows}
    assert column["26740-KP2-T1"] == "Khu phố 2 › Tổ dân phố 1"
    assert column["26740-KP2"] == "Khu phố 2"
    assert len(set(column.values())) == len(column)  # every unit told apart


async def test_zalo_staff_get_an_export_as_a_link_for_24_hours(
        start_bot: StartBot, zalo: ZaloDouble, tmp_path: Path) -> None:
    port = free_port()
    await _zalo_staff(start_bot, zalo, COSO_WEB_PORT=port,
                      COSO_PUBLIC_URL=f"http://127.0.0.1:{port}",
                      COSO_DATA_DIR=str(tmp_path / "data"))
    await zalo.send_text("staff", "/export")
    menu = (await zalo.next_message("staff")).text or ""
    assert "1." in menu, menu
    await zalo.send_text("staff", "1")
    reply = (await zalo.next_message("staff")).text or ""
    assert "Mở trong vòng 24 giờ: " in reply, reply
    link = reply.rsplit(": ", 1)[1].strip()
    assert link.startswith(f"http://127.0.0.1:{port}/files/exports/coso-26734-")
    async with aiohttp.ClientSession() as client, client.get(link) as got:
        assert got.status == 200
        assert (await got.read())[:2] == b"PK"  # an .xlsx is a zip


def test_a_percent_rounds_a_half_up_as_people_do() -> None:
    """Babel rounds half to even: 1 of 8 was 12% beside 3 of 8 at 38%."""
    vi, en = Translator("vi", HCM), Translator("en", HCM)
    assert [vi.percent(x) for x in (1 / 8, 3 / 8, 29 / 200, 2 / 3, 0.0, 1.0)] == [
        "13%", "38%", "15%", "67%", "0%", "100%"]
    assert en.percent(1 / 8) == "13%"


async def test_open_urgent_cases_and_unacknowledged_directives_name_who_to_phone(
        db: Database, db_url: str) -> None:
    """Three urgent cases of one household read apart by their number, who reported each
    and who took it; a week's directives name who has not acknowledged, per directive, the
    first eight by unit, then how many more."""
    await build_large_ward(db)
    async with db.transaction() as session:
        ward = await units.by_code(session, "26740")
        group = await units.by_code(session, "26740-KP1-T1")
        assert ward is not None and group is not None
        leaders = list((await session.execute(  # the ward's leaders, in tree order
            select(RoleAssignment.person_id, RoleAssignment.unit_id)
            .order_by(RoleAssignment.id))).all())
        staff = Person(full_name="Phạm Thị Dung")
        session.add(staff)
        await session.flush()
        home = Household(unit_id=group.id, code="12 Lê Lợi")
        session.add(home)
        await session.flush()
        reporter = leaders[1].person_id  # the group's leader (the quarter's is first)
        filed = []
        for hours, taker in ((10, staff.id), (20, None), (30, None)):  # oldest first
            report = Report(household_id=home.id, unit_id=group.id, category_key="f0",
                            people_count=1, urgent=True, status="open",
                            created_at=at(DAY - timedelta(days=4), 8) + timedelta(hours=hours),
                            created_by_person_id=reporter, assigned_to_person_id=taker)
            await reports.add_recorded(session, report)
            filed.append(report.id)
        first = Directive(scope_unit_id=ward.id, text="Kiểm tra hộ nghèo", created_at=at(DAY, 7))
        second = Directive(scope_unit_id=ward.id, created_at=at(DAY, 9),
                           text="Báo cáo số ca F0 trước 16 giờ hôm nay, kèm danh sách hộ")
        session.add_all([first, second])
        await session.flush()
        session.add_all([DirectiveRecipient(directive_id=first.id, person_id=p, unit_id=u,
                                            acknowledged_at=at(DAY, 8) if i < 2 else None)
                         for i, (p, u) in enumerate(leaders[:12])])
        session.add_all([DirectiveRecipient(directive_id=second.id, person_id=p, unit_id=u)
                         for p, u in leaders[:3]])
    async with db.read() as session:
        ward = await units.by_code(session, "26740")
        assert ward is not None
        f = await digest.ward_figures(session, ward, DAY, make_settings(db_url))
    found = text.render(Translator("vi", HCM), f, today=DAY)
    lines = found.splitlines()
    reporter_name = "Trần Văn Bình"
    taken, *untaken = [line for line in lines if "12 Lê Lợi" in line]
    assert taken.startswith(f"• Báo cáo #{filed[0]}, hộ 12 Lê Lợi, Khu phố 1 › Tổ dân phố 1:")
    assert taken.endswith(f"Người báo: {reporter_name}; Phạm Thị Dung đã nhận xử lý.")
    assert [line.split(",")[0] for line in untaken] == [f"• Báo cáo #{n}" for n in filed[1:]]
    assert all(line.endswith("; chưa ai nhận xử lý.") for line in untaken)

    start = lines.index(next(line for line in lines if line.startswith("📨 ")))
    block = lines[start:lines.index("", start) if "" in lines[start:] else None]
    assert block[0] == "📨 2 chỉ đạo trong 7 ngày qua: 2 trên 15 người nhận đã xác nhận (13%)."
    assert block[1] == f"Chỉ đạo #{first.id} (Kiểm tra hộ nghèo): 10 người chưa xác nhận:"
    named = block[2:block.index(next(b for b in block if b.startswith("• … và")))]
    assert sum(len(b.split(": ", 1)[1].split(", ")) for b in named) == 8
    assert named[0] == "• Khu phố 1 › Tổ dân phố 2: Lê Văn Cường"  # tree order, acked left out
    assert f"• … và 2 người khác (/directive status {first.id})" in block
    assert (f"Chỉ đạo #{second.id} (Báo cáo số ca F0 trước 16 giờ hôm nay…): "
            "3 người chưa xác nhận:") in block
    assert all(len(line) <= 120 for line in block), block  # one phone line or two each
