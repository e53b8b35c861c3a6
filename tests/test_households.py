"""The household register: storage, the embeddable pick steps, /household, CSV import, CLI.

Chat tests drive the real Router (cheap, both databases) with several people at once; the
end-to-end tests go through the Zalo and Telegram doubles.
"""
# ruff: noqa: F401, F811 - the CLI fixtures come from tests.cli_fixtures by import, as in
# tests/test_cli_units.py, so they stay out of the shared conftest.

from __future__ import annotations

import asyncio
import json
import logging
import unicodedata
from collections.abc import AsyncIterator, Iterator
from itertools import count

import pytest
from sqlalchemy import func, select, text

from bot.flows import engine
from bot.flows.engine import Flow, Step
from bot.flows.household_pick import (
    household_label,
    household_members,
    pick_household_steps,
    resolve_household,
)
from bot.handlers.commands import COMMANDS, Handlers, include
from bot.handlers.router import Router
from bot.i18n import N_
from bot.messages import Incoming, Outgoing
from bot.turn import Turn
from storage import households
from storage.db import Database
from storage.household_import import HouseholdImportError, apply_rows, parse_csv
from storage.models import Base, ChatAccount, Household, OutboxMessage, Unit
from tests.chat import Chat
from tests.cli_fixtures import (
    CliEnv,
    Run,
    cli,
    cli_env,
    postgres_url,
    store_url,
)
from tests.conftest import Seeded, StartBot, make_settings, seed_ward
from tests.doubles.zalo_api import ZaloDouble

NAME = "Nguyễn Văn An"


# --- a chat through the real router, for several people -------------------------------------

class Texts:
    """One person through the shared chat client; `send` returns the texts the bot replied,
    numbered as a text-only channel shows them."""

    def __init__(self, router: Router, db: Database, external_id: str) -> None:
        self.chat = Chat(router, db, external_id=external_id, display_name="Tester")
        self.last: list[Outgoing] = []

    async def send(self, line: str) -> str:
        return self._texts(await self.chat.send(line))

    async def tap(self, label: str) -> str:
        return self._texts(await self.chat.tap(label))

    def buttons(self) -> list[str]:
        return [b.label for b in self.last[-1].buttons] if self.last else []

    def _texts(self, replies: list[Outgoing]) -> str:
        # An answered question's keyboard taken away is no reply to read.
        replies = [message for message in replies if not message.keyboard_only]
        self.last = replies
        return "\n".join(message.numbered_text() for message in replies)


async def _pick_demo_finish(turn: Turn) -> None:
    household = await resolve_household(turn)
    if household is not None:
        turn.say(f"done: id={household.id} people={turn.data['people']}")


async def _pick_demo_summary(turn: Turn) -> str:
    return f"household={household_label(turn)} members={await household_members(turn)}"


async def _max_people(turn: Turn) -> int:
    return await household_members(turn)


# A flow embedding the pick steps the way /report and /support do.
PICK_DEMO = Flow(
    name="pickdemo", title="pick demo",
    steps=(*pick_household_steps(after="people"),
           Step("people", "number", "How many people ({min}-{max})?", minimum=1,
                maximum=_max_people),
           Step("sure", "confirm", "Save?", summary=_pick_demo_summary)),
    finish=_pick_demo_finish,
)


@pytest.fixture
async def chat(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    engine.register(PICK_DEMO)

    extra = Handlers()

    @extra.command("pickdemo", N_("pick demo"), roles=frozenset({"leader", "ward_staff"}),
             in_menu=False)
    async def pickdemo(turn: Turn, args: str) -> None:
        await engine.begin(turn, PICK_DEMO)

    include(extra)

    database = Database(db_url)
    seeded = await seed_ward(database)
    yield Router(database, make_settings(db_url)), database, seeded
    COMMANDS.pop("pickdemo", None)
    engine.FLOWS.pop("pickdemo", None)
    await database.dispose()


async def _person(setup: tuple[Router, Database, Seeded], external_id: str, code: str) -> Texts:
    router, db, seeded = setup
    person = Texts(router, db, external_id)
    assert "Welcome" in await person.send(f"/start {seeded.codes[code]}")
    return person


async def _add(db: Database, unit_code: str, code: str, name: str | None = NAME,
               members: int = 4, person_id: int | None = None) -> int:
    async with db.transaction() as session:
        unit = (await session.execute(select(Unit).where(Unit.code == unit_code))).scalar_one()
        household = await households.add(session, unit, code, head_name=name, members=members,
                                          person_id=person_id, flags=("poor",))
        return household.id


async def _count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Household)) or 0)


async def _unit(db: Database, code: str) -> Unit:
    async with db.read() as session:
        return (await session.execute(select(Unit).where(Unit.code == code))).scalar_one()


# --- storage ---------------------------------------------------------------------------------

async def test_search_ignores_case_diacritics_and_word_order(db: Database) -> None:
    await seed_ward(db)
    await _add(db, "26734-KP1", "12 Lê Lợi", unicodedata.normalize("NFD", NAME))
    await _add(db, "26734-KP1", "3/4 Đồng Khởi", "Trần Thị Bình")
    kp1 = await _unit(db, "26734-KP1")
    async with db.read() as session:
        for query in ("nguyen van a", "NGUYỄN", "an nguyen", "12 le loi", "le loi",
                      unicodedata.normalize("NFD", "Lê Lợi")):
            found = await households.search(session, [kp1.path], query)
            assert [h.code for h in found] == ["12 Lê Lợi"], query
        assert [h.code for h in await households.search(session, [kp1.path], "dong khoi")] == [
            "3/4 Đồng Khởi"]
        assert await households.search(session, [kp1.path], "100%") == []
        assert await households.search(session, [kp1.path], "   ") == []
        stored = (await households.search(session, [kp1.path], "nguyen"))[0]
    assert stored.head_name == NAME  # NFC whatever was typed


async def test_reads_stop_at_the_scope(db: Database) -> None:
    await seed_ward(db)
    mine = await _add(db, "26734-KP1-T1", "1 Pasteur")
    other = await _add(db, "26737-KP1", "1 Pasteur")
    kp1, kp2, ward = [await _unit(db, c) for c in ("26734-KP1", "26734-KP2", "26734")]
    async with db.read() as session:
        assert (await households.get(session, mine, [kp1.path])) is not None
        assert (await households.get(session, mine, [kp2.path])) is None
        assert (await households.get(session, other, [ward.path])) is None
        assert (await households.get(session, mine, [])) is None
        assert [h.id for h in await households.search(session, [ward.path], "pasteur")] == [
            mine]
        assert [h.id for h in await households.in_subtree(session, kp1)] == [mine]


async def test_recent_follows_the_persons_own_actions(db: Database) -> None:
    seeded = await seed_ward(db)
    from storage.models import Person
    async with db.transaction() as session:
        person = Person(full_name="A")
        session.add(person)
        await session.flush()
        person_id = person.id
    ids = [await _add(db, "26734-KP1", f"{n} Lê Lợi", person_id=person_id) for n in range(7)]
    await _add(db, "26734-KP1", "99 Lê Lợi")  # someone else's
    kp1 = await _unit(db, "26734-KP1")
    async with db.read() as session:
        recent = await households.recent(session, [kp1.path], person_id, 5)
        assert [h.id for h in recent] == ids[::-1][:5]
        ward_two = await _unit(db, "26734-KP2")
        assert await households.recent(session, [ward_two.path], person_id) == []
    assert seeded.unit_ids["26734-KP1"] == kp1.id


async def test_update_keeps_the_search_key(db: Database) -> None:
    await seed_ward(db)
    household_id = await _add(db, "26734-KP1", "5 Hàm Nghi")
    kp1 = await _unit(db, "26734-KP1")
    async with db.transaction() as session:
        household = await households.get(session, household_id, [kp1.path])
        assert household is not None
        households.update(household, head_name="Phạm  Thị   Đào", code="7 Hàm Nghi")
    async with db.read() as session:
        assert [h.head_name for h in await households.search(session, [kp1.path], "dao")] == [
            "Phạm Thị Đào"]
        assert await households.search(session, [kp1.path], "5 ham") == []
    with pytest.raises(ValueError):
        households.update(household, unit_id=1)


# --- the pick steps, as /report and /support embed them -------------------------------------

async def test_pick_a_recent_household(chat: tuple[Router, Database, Seeded]) -> None:
    _, db, _ = chat
    leader = await _person(chat, "501", "leader:T1")
    await leader.send("/pickdemo")
    assert leader.buttons() == ["Search", "Add a new household", "Cancel"]  # nothing touched
    reply = await leader.send("2")  # add: a group leader has one unit, so no unit question
    assert "household's code" in reply
    assert "Which household?" in await leader.send("back")
    await leader.send("2")
    await leader.send("8 Lý Tự Trọng")
    await leader.send(NAME)
    await leader.send("3")
    await leader.tap("☐ Pregnant woman")
    reply = await leader.tap("Done")
    assert "How many people (1-3)?" in reply
    await leader.send("2")
    assert await _count(db) == 0  # nothing is written before the last answer
    summary = leader.last[-1].text
    assert "household=8 Lý Tự Trọng · N.V.A. · 3 people (new household) members=3" in summary
    done = await leader.send("yes")
    assert done.startswith("done: id=") and "people=2" in done
    async with db.read() as session:
        household = (await session.execute(select(Household))).scalar_one()
    assert (household.pregnant, household.poor, household.members) == (True, False, 3)
    assert household.search_key == "8 ly tu trong nguyen van an"
    # Next time it is the first of the recent ones.
    await leader.send("/pickdemo")
    assert leader.buttons() == ["8 Lý Tự Trọng · N.V.A. · 3 people", "Search",
                                "Add a new household", "Cancel"]
    await leader.tap("8 Lý Tự Trọng · N.V.A. · 3 people")
    assert "How many people (1-3)?" in leader.last[-1].text
    assert "from 1 to 3" in await leader.send("4")
    await leader.send("3")
    assert "household=8 Lý Tự Trọng · N.V.A. · 3 people members=3" in leader.last[-1].text
    assert f"done: id={household.id} people=3" in await leader.send("yes")
    assert await _count(db) == 1


async def test_pick_by_search_and_from_nothing_found(
        chat: tuple[Router, Database, Seeded]) -> None:
    _, db, _ = chat
    household_id = await _add(db, "26734-KP1", "12 Lê Lợi")
    staff = await _person(chat, "502", "ward_staff:WARD")
    await staff.send("/pickdemo")
    reply = await staff.send("search")
    assert "code or part of the head's name" in reply
    reply = await staff.send("nguyen van a")
    assert "1. 12 Lê Lợi · N.V.A. · 4 people · Khu phố 1" in reply
    assert staff.buttons()[-3:] == ["Search again", "Add a new household", "Back"]
    await staff.send("1")
    await staff.send("4")
    assert f"done: id={household_id} people=4" in await staff.send("1")
    # Nothing found: search again or add; ward staff choose the unit first.
    await staff.send("/pickdemo")
    await staff.send("search")
    reply = await staff.send("zzz")
    assert "No household in your area matches “zzz”." in reply
    assert staff.buttons() == ["Search again", "Add a new household", "Back"]
    reply = await staff.send("2")
    assert "Which unit" in reply
    assert staff.buttons() == ["Phường Bến Thành", "Khu phố 1", "Tổ dân phố 1", "Khu phố 2",
                               "Back"]
    await staff.tap("Khu phố 2")
    reply = await staff.send("12 LE LOI")  # taken in Khu phố 1 only
    assert "household's name" in reply
    await staff.send("skip")
    await staff.send("1")
    await staff.tap("Done")
    await staff.send("1")
    await staff.send("yes")
    async with db.read() as session:
        units = (await session.execute(select(Unit.code).join(Household, Household.unit_id ==
                                                               Unit.id))).scalars().all()
    assert sorted(units) == ["26734-KP1", "26734-KP2"]


async def test_resolve_rechecks_scope_at_write_time(
        chat: tuple[Router, Database, Seeded], caplog: pytest.LogCaptureFixture) -> None:
    _, db, _ = chat
    household_id = await _add(db, "26734-KP1", "12 Lê Lợi")
    other = await _person(chat, "503", "leader:OTHER")
    await other.send("/pickdemo")
    await other.send("search")
    assert "No household in your area" in await other.send("le loi")
    # A forged answer (an old conversation, a role since ended) is refused at finish.
    await other.send("/pickdemo")
    async with db.transaction() as session:
        from storage.models import Conversation
        conversation = (await session.execute(select(Conversation))).scalar_one()
        conversation.step = "people"
        conversation.data = {"household_id": household_id, "hh_label": "x"}
    caplog.set_level(logging.INFO)
    await other.send("1")
    reply = await other.send("yes")
    assert "not in your area" in reply and "done:" not in reply
    assert "12 Lê Lợi" not in caplog.text and "Nguy" not in caplog.text
    assert "out of scope" in caplog.text


# --- /household in chat ------------------------------------------------------------------------

async def test_household_add_search_edit_by_number(
        chat: tuple[Router, Database, Seeded], caplog: pytest.LogCaptureFixture) -> None:
    _, db, _ = chat
    caplog.set_level(logging.INFO)
    leader = await _person(chat, "504", "leader:KP1")
    menu = await leader.send("/household")
    assert "1. Add a household\n2. Edit a household\n3. Search the register" in menu
    assert "1. Khu phố 1\n2. Tổ dân phố 1" in await leader.send("1")
    for answer in ("1", "12 Lê Lợi", NAME, "4", "3 5"):  # both flags in one message
        reply = await leader.send(answer)
    # The confirmation reads back what was typed: the name in full, the flags, the unit path.
    assert "Household: 12 Lê Lợi · Nguyễn Văn An · 4 people (new household)" in reply
    assert "Household situation: Poor household, Young children" in reply
    assert "Unit: Khu phố 1 · Phường Bến Thành" in reply
    assert "Saved: 12 Lê Lợi · N.V.A. · 4 people, in Khu phố 1." in await leader.send("1")
    await leader.send("/household search")
    reply = await leader.send("nguyen van a")
    assert ("12 Lê Lợi · N.V.A. · 4 people\nUnit: Khu phố 1 · Phường Bến Thành\n"
            "Household situation: Poor household, Young children") in reply
    assert "1. Report\n2. Record support\n3. Edit" in reply
    await leader.send("/household edit")
    await leader.send("1")
    await leader.send("2")  # head of household's name
    await leader.send("Nguyễn Văn Anh")
    assert "Saved" in await leader.send("yes")
    async with db.read() as session:
        household = (await session.execute(select(Household))).scalar_one()
    assert household.head_name == "Nguyễn Văn Anh"
    assert household.search_key == "12 le loi nguyen van anh"
    assert NAME not in caplog.text and "Lê Lợi" not in caplog.text and "Anh" not in caplog.text


async def test_other_ward_and_monitor_are_refused(
        chat: tuple[Router, Database, Seeded], caplog: pytest.LogCaptureFixture) -> None:
    _, db, _ = chat
    caplog.set_level(logging.INFO)
    await _add(db, "26734-KP1", "12 Lê Lợi")
    other = await _person(chat, "505", "leader:OTHER")
    await other.send("/household search")
    assert "No household in your area matches “le loi”." in await other.send("le loi")
    await other.send("/household edit")
    assert other.buttons() == ["Search", "Add a new household", "Back"]  # nothing of Bến Thành
    await other.send("1")
    assert "No household in your area" in await other.send("12 le loi")
    kp2 = await _person(chat, "506", "leader:KP2")
    await kp2.send("/household search")
    assert "No household" in await kp2.send("12")
    monitor = await _person(chat, "507", "monitor:WARD")
    reply = await monitor.send("/household add")
    assert "Sorry, this is only for" in reply and await _count(db) == 1
    assert "refused /household add" in caplog.text
    reply = await monitor.send("/household")  # reading in scope is allowed
    assert "code or part of the head's name" in reply
    assert "12 Lê Lợi · N.V.A. · 4 people · Khu phố 1 — Poor household" in (
        await monitor.send("le loi"))
    stranger = Texts(*chat[:2], "508")
    assert "not registered" in await stranger.send("/household")
    assert "Lê Lợi" not in caplog.text


async def test_search_results_lead_to_report_support_and_edit(
        chat: tuple[Router, Database, Seeded]) -> None:
    _, db, _ = chat
    first = await _add(db, "26734-KP1", "12 Lê Lợi")
    await _add(db, "26734-KP1-T1", "14 Lê Lợi", name="Lê Thị Hoa")
    leader = await _person(chat, "520", "leader:KP1")
    await leader.send("/household search")
    reply = await leader.send("le loi")
    assert "Choose one to report on it, record support or edit it." in reply
    assert leader.buttons() == ["12 Lê Lợi · N.V.A. · 4 people · Khu phố 1",
                                "14 Lê Lợi · L.T.H. · 4 people · Tổ dân phố 1"]
    card = await leader.send("2")  # Zalo's way: the number, with no question open
    assert "Unit: Tổ dân phố 1 · Khu phố 1 · Phường Bến Thành" in card
    assert leader.buttons() == ["Report", "Record support", "Edit"]
    assert "What is the situation of 14 Lê Lợi?" in await leader.tap("Report")
    reply = await leader.tap("Record support")  # the card's other button, mid-report
    assert "Stopped the household report; nothing from it was saved." in reply
    assert "Which support policy?" in reply
    await leader.send("/household tim")
    await leader.send("12 le loi")
    assert "What do you want to change for 12 Lê Lợi" in await leader.tap("Edit")
    await leader.send("3")
    reply = await leader.send("6")
    assert "Change members: 4 → 6" in reply and "Unit: Khu phố 1" in reply
    assert "Saved: 12 Lê Lợi · N.V.A. · 6 people." in await leader.send("1")
    async with db.read() as session:
        assert (await households.get(session, first, ["/"]) or Household()).members == 6


async def test_search_result_payloads_are_hostile_input(
        chat: tuple[Router, Database, Seeded], caplog: pytest.LogCaptureFixture) -> None:
    """A forged or foreign household button is refused clearly, scope checked in storage,
    and nothing is opened: no conversation, no name of the other ward's household."""
    _, db, _ = chat
    caplog.set_level(logging.INFO)
    ours = await _add(db, "26734-KP1", "12 Lê Lợi")
    theirs = await _add(db, "26737-KP1", "9 Đồng Khởi", name="Phạm Văn Tư")
    leader = await _person(chat, "521", "leader:KP1")
    closed = "This question is no longer open."
    for payload in ("hh", "hh:", f"hh:{ours}", f"hh:{ours}:x", f"hh:{ours}:r:1", "hh:-1:r",
                    "hh:0:r", "hh:abc:e", "hh:" + "9" * 200 + ":r", "hh:١٢:r", f"hh:{ours}:"):
        assert closed in leader._texts(await leader.chat.send(payload=payload)), payload
    refused = "That household is not in your area (or no longer); nothing was opened."
    for action in ("o", "r", "s", "e"):
        reply = leader._texts(await leader.chat.send(payload=f"hh:{theirs}:{action}"))
        assert reply == refused and "Đồng Khởi" not in reply
        reply = leader._texts(await leader.chat.send(payload=f"hh:999999:{action}"))
        assert reply == refused
    monitor = await _person(chat, "522", "monitor:WARD")
    reply = monitor._texts(await monitor.chat.send(payload=f"hh:{ours}:e"))
    assert "Sorry, this is only for" in reply
    async with db.read() as session:
        assert (await session.scalar(text("SELECT count(*) FROM conversations"))) == 0
    assert "Đồng Khởi" not in caplog.text and "Phạm" not in caplog.text
    assert "household button refused for account" in caplog.text


async def test_edit_refuses_a_code_taken_in_the_unit(
        chat: tuple[Router, Database, Seeded]) -> None:
    _, db, _ = chat
    leader = await _person(chat, "509", "leader:T1")
    for code in ("1 Lê Lợi", "2 Lê Lợi"):
        await leader.send("/household add")
        for answer in (code, "skip", "2", "7", "yes"):
            await leader.send(answer)
    assert await _count(db) == 2
    await leader.send("/household edit")
    assert leader.buttons()[:2] == ["2 Lê Lợi · 2 people", "1 Lê Lợi · 2 people"]
    await leader.send("1")
    await leader.send("code")
    reply = await leader.send("1 le loi")
    assert "Tổ dân phố 1 already has a household 1 Lê Lợi. Type another code." in reply
    await leader.send("3 Lê Lợi")
    await leader.send("yes")
    async with db.read() as session:
        codes = (await session.execute(select(Household.code))).scalars().all()
    assert sorted(codes) == ["1 Lê Lợi", "3 Lê Lợi"]


@pytest.mark.parametrize(("code", "sees", "writes"), [
    ("leader:KP1", True, True),      # own quarter
    ("leader:T1", False, True),      # a group below: the quarter's own households are above it
    ("leader:KP2", False, True),     # a sibling quarter
    ("leader:OTHER", False, True),   # another ward
    ("ward_staff:WARD", True, True),
    ("admin:CITY", True, True),
    ("monitor:WARD", True, False),   # reads in scope, never writes
])
async def test_access_matrix(chat: tuple[Router, Database, Seeded], code: str, sees: bool,
                             writes: bool) -> None:
    """Role x own/other unit x action: search, edit (pick by search) and add."""
    _, db, _ = chat
    await _add(db, "26734-KP1", "12 Lê Lợi")
    person = await _person(chat, "600", code)
    await person.send("/household search")
    found = "12 Lê Lợi · N.V.A." in await person.send("le loi")
    assert found is sees
    reply = await person.send("/household edit")
    if not writes:
        assert "Sorry, this is only for" in reply
        assert "Sorry, this is only for" in await person.send("/household add")
        return
    await person.send("search")
    reply = await person.send("le loi")
    assert ("12 Lê Lợi · N.V.A." in reply) is (sees and code != "monitor:WARD")
    await person.send("/household add")
    assert "Which unit" in person.last[-1].text or "household's code" in person.last[-1].text


async def test_a_large_scope_types_the_unit_code(chat: tuple[Router, Database, Seeded]) -> None:
    _, db, seeded = chat
    from storage import units
    async with db.transaction() as session:
        ward = await units.by_code(session, "26734")
        assert ward is not None
        for n in range(3, 15):
            await units.upsert(session, f"26734-KP{n}", f"Khu phố {n}", "quarter", ward)
    staff = await _person(chat, "601", "ward_staff:WARD")
    await staff.send("/household add")
    assert "Type the code of the unit" in staff.last[-1].text
    reply = await staff.send("26737-KP1")  # the other ward's
    assert "No unit with code 26737-KP1 in your area." in reply
    assert "household's code" in await staff.send("26734-kp14")
    for answer in ("5 Lê Thánh Tôn", "skip", "3", "Done", "yes"):
        reply = await staff.send(answer)
    assert "Saved: 5 Lê Thánh Tôn · 3 people, in Khu phố 14." in reply
    assert seeded.unit_ids["26734"] == ward.id


# --- CSV import --------------------------------------------------------------------------------

HEADER = "code,head_name,members,elderly_alone,disability,poor,near_poor,young_children,pregnant"


def household_csv(*lines: str, header: str = HEADER, bom: bool = False) -> bytes:
    data = (header + "\n" + "".join(line + "\n" for line in lines)).encode()
    return b"\xef\xbb\xbf" + data if bom else data


def test_parse_flags_bom_and_nfd() -> None:
    rows = parse_csv(household_csv(
        f"12 Lê Lợi,{unicodedata.normalize('NFD', NAME)},4,x,,Có,không,yes,TRUE",
        "14 Lê Lợi,,1,1,0,no,false,0,", bom=True))
    first, second = rows
    assert first.head_name == NAME and unicodedata.is_normalized("NFC", first.head_name)
    assert first.flags == {"elderly_alone": True, "disability": False, "poor": True,
                           "near_poor": False, "young_children": True, "pregnant": True}
    assert (second.head_name, second.line, any(second.flags.values())) == (None, 3, True)


@pytest.mark.parametrize(("lines", "header", "line", "reason"), [
    (["1,A,0"], HEADER, 2, "members must be a whole number from 1 to 30"),
    (["1,A,31"], HEADER, 2, "members must be a whole number from 1 to 30"),
    (["1,A,bốn"], HEADER, 2, "members must be a whole number"),
    (["1,A,2", ",B,2"], HEADER, 3, "code is empty"),
    (["1,A,2,maybe"], HEADER, 2, "elderly_alone must be 1/0"),
    (["1,A,2"], "code,head_name", 1, "missing: members"),
    (["1,A,2"], "code,members,street", 1, "unknown column street"),
    (["1,2,3,4"], "code,members", 2, "more cells than the header"),
    (["x" * 65 + ",A,2"], HEADER, 2, "code is longer than 64"),
])
def test_parse_rejects_bad_rows(lines: list[str], header: str, line: int, reason: str) -> None:
    with pytest.raises(HouseholdImportError) as caught:
        parse_csv(household_csv(*lines, header=header))
    assert caught.value.line == line and reason in str(caught.value)


def test_parse_rejects_non_utf8() -> None:
    with pytest.raises(HouseholdImportError) as caught:
        parse_csv(household_csv("1,Lê,2").replace("Lê".encode(), "Lê".encode("cp1258")))
    assert caught.value.line == 2 and "UTF-8" in str(caught.value)


async def test_import_updates_by_code_and_lands_on_sub_units(db: Database) -> None:
    await seed_ward(db)
    kp1 = await _unit(db, "26734-KP1")
    header = HEADER + ",unit_code"
    async with db.transaction() as session:
        result = await apply_rows(session, kp1, parse_csv(household_csv(
            f"12 Lê Lợi,{NAME},4,,,x,,,,", "1 Pasteur,,2,,,,,,,26734-KP1-T1", header=header)))
    assert (result.created, result.updated) == (2, 0)
    # Re-import: the same code without diacritics updates; an absent column keeps its value.
    async with db.transaction() as session:
        result = await apply_rows(session, kp1, parse_csv(household_csv(
            "12 LÊ LỢI,5", header="code,members")))
    assert (result.created, result.updated) == (1 - 1, 1)
    async with db.read() as session:
        found = {h.code: h for h in await households.in_subtree(session, kp1)}
    assert set(found) == {"12 LÊ LỢI", "1 Pasteur"}
    assert (found["12 LÊ LỢI"].members, found["12 LÊ LỢI"].head_name,
            found["12 LÊ LỢI"].poor) == (5, NAME, True)
    assert found["1 Pasteur"].unit.code == "26734-KP1-T1"


@pytest.mark.parametrize(("lines", "line", "reason"), [
    (["1 A,,2,", "2 A,,2,26734-KP2"], 3, "unit 26734-KP2 is not 26734-KP1 or one of its"),
    (["1 A,,2,", "1 a,,3,"], 3, "code 1 a already appears on line 2"),
])
async def test_import_refuses_the_whole_file(db: Database, lines: list[str], line: int,
                                             reason: str) -> None:
    await seed_ward(db)
    kp1 = await _unit(db, "26734-KP1")
    rows = parse_csv(household_csv(*lines, header="code,head_name,members,unit_code"))
    with pytest.raises(HouseholdImportError) as caught:
        async with db.transaction() as session:
            await apply_rows(session, kp1, rows)
    assert caught.value.line == line and reason in str(caught.value)
    assert await _count(db) == 0


# --- the command line (SQLite and PostgreSQL) -----------------------------------------------

@pytest.fixture
def seeded_cli(cli_env: CliEnv, store_url: str) -> Iterator[CliEnv]:
    cli_env.set("COSO_DATABASE_URL", store_url)
    cli_env.url = store_url

    async def reset(db: Database) -> None:
        if not db.is_sqlite:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            async with db.transaction() as session:
                await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await seed_ward(db)

    cli_env.query(reset)
    yield cli_env


def test_cli_import_and_list_json(seeded_cli: CliEnv, cli: Run) -> None:
    path = seeded_cli.tmp / "kp1.csv"
    path.write_bytes(household_csv(
        f"12 Lê Lợi,{unicodedata.normalize('NFD', NAME)},4,,,x,,x,",
        "1 Pasteur,,2,1,,,,,", bom=True))
    code, out, err = cli("households", "import", "--unit", "26734-KP1", str(path))
    assert (code, err) == (0, "")
    assert "Imported 2 households (2 new, 0 updated)." in out
    code, out, _ = cli("households", "list", "--unit", "26734-KP1", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"code": "1 Pasteur", "unit": "26734-KP1", "head_name": None, "members": 2,
         "flags": ["elderly_alone"]},
        {"code": "12 Lê Lợi", "unit": "26734-KP1", "head_name": NAME, "members": 4,
         "flags": ["poor", "young_children"]},
    ]
    code, out, _ = cli("households", "list", "--unit", "26734-KP2", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = cli("households", "list", "--unit", "26734")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["Unit", "Household", "Head", "of", "household",
                                              "Members", "Flags"]
    assert lines[2].split() == ["26734-KP1", "12", "Lê", "Lợi", "Nguyễn", "Văn", "An", "4",
                                "Poor", "household,", "Young", "children"]
    code, out, _ = cli("--lang", "vi", "households", "list", "--unit", "26734")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["Đơn", "vị", "Hộ"]
    assert "Hộ nghèo, Có trẻ nhỏ" in out and "poor" not in out and "young_children" not in out


def test_cli_bad_row_writes_nothing(seeded_cli: CliEnv, cli: Run) -> None:
    path = seeded_cli.tmp / "bad.csv"
    path.write_bytes(household_csv("1 A,,2,,,,,,", "2 A,,40,,,,,,"))
    code, out, err = cli("households", "import", "--unit", "26734-KP1", str(path))
    assert code == 1 and out == ""
    assert err.strip() == f"{path}:3: members must be a whole number from 1 to 30, not “40”"
    code, out, _ = cli("households", "list", "--unit", "79", "--json")
    assert json.loads(out) == []
    path.write_bytes(household_csv("1 A,,2,,,,,,"))
    code, _, err = cli("households", "import", "--unit", "NOPE", str(path))
    assert code == 1 and "unknown unit NOPE" in err
    path.write_bytes(household_csv("1 A,,2,,,,,,,26737-KP1", header=HEADER + ",unit_code"))
    code, _, err = cli("households", "import", "--unit", "26734", str(path))
    assert code == 1 and err.startswith(f"{path}:2: unit 26737-KP1 is not 26734")


# --- end to end on the doubles -----------------------------------------------------------------

async def _zalo_say(zalo: ZaloDouble, user: str, text: str) -> str:
    await zalo.send_text(user, text)
    return (await zalo.next_message(user)).text or ""


async def test_zalo_leader_adds_searches_and_edits_by_number(
        start_bot: StartBot, zalo: ZaloDouble) -> None:
    runtime = await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url,
                              COSO_DEFAULT_LOCALE="en")
    seeded = await seed_ward(runtime.db)
    user, other = "zalo-leader", "zalo-other"
    assert "Tổ dân phố 1" in await _zalo_say(zalo, user, f"/start {seeded.codes['leader:T1']}")
    menu = await _zalo_say(zalo, user, "/household")
    assert "1. Add a household" in menu
    assert "code" in await _zalo_say(zalo, user, "1")  # one unit: straight to the code
    await _zalo_say(zalo, user, "12 Lê Lợi")
    await _zalo_say(zalo, user, NAME)
    flags = await _zalo_say(zalo, user, "4")
    assert "3. ☐ Poor household" in flags and "7. Done" in flags and "0. Back" in flags
    summary = await _zalo_say(zalo, user, "3")  # the whole selection in one message
    assert "12 Lê Lợi · Nguyễn Văn An · 4 people (new household)" in summary
    assert "Household situation: Poor household\n" in summary
    assert "Saved" in await _zalo_say(zalo, user, "1")
    await _zalo_say(zalo, user, "/household search")
    found = await _zalo_say(zalo, user, "nguyen van a")
    assert "Household situation: Poor household" in found and "1. Report" in found
    pick = await _zalo_say(zalo, user, "/household edit")
    assert "1. 12 Lê Lợi · N.V.A. · 4 people" in pick
    await _zalo_say(zalo, user, "1")
    await _zalo_say(zalo, user, "3")
    assert "Change members: 4 → 6" in await _zalo_say(zalo, user, "6")
    assert "6 people" in await _zalo_say(zalo, user, "1")
    # A leader of another ward finds nothing.
    await _zalo_say(zalo, other, f"/start {seeded.codes['leader:OTHER']}")
    await _zalo_say(zalo, other, "/household search")
    assert "No household in your area" in await _zalo_say(zalo, other, "nguyen van a")
    async with runtime.db.read() as session:
        household = (await session.execute(select(Household))).scalar_one()
    assert (household.members, household.poor, household.unit_id) == (
        6, True, seeded.unit_ids["26734-KP1-T1"])


async def test_telegram_leader_adds_and_finds_a_household(start_bot: StartBot) -> None:
    pytest.importorskip("bot.channels.telegram", reason="the Telegram channel is not built yet")
    from tests.doubles.telegram_api import TelegramDouble

    double = TelegramDouble()
    await double.start()
    try:
        runtime = await start_bot(TELEGRAM_BOT_TOKEN=double.token,
                                  TELEGRAM_API_BASE=double.base_url)
        seeded = await seed_ward(runtime.db)
        user = 1001
        await double.send_text(user, f"/start {seeded.codes['leader:KP1']}", language_code="en")
        await double.next_message(user)

        async def reply() -> str:
            """The reply, after the answered question's keyboard is taken away."""
            while (message := await double.next_message(user)).method == (
                    "editMessageReplyMarkup"):
                assert message.buttons == [], message.describe()
            return message.text or ""

        async def say(text: str) -> str:
            await double.send_text(user, text, language_code="en")
            return await reply()

        async def tap(label: str) -> str:
            message = double.messages_to(user)[-1]
            await double.tap(user, message.button_data[message.button_texts.index(label)])
            return await reply()

        await say("/household")
        await tap("Add a household")
        await tap("Khu phố 1")
        await say("12 Lê Lợi")
        await say(NAME)
        await say("4")
        await tap("☐ Elderly person living alone")
        assert "Add this household?" in await tap("Done")
        assert "Saved: 12 Lê Lợi · N.V.A. · 4 people, in Khu phố 1." in await tap("Confirm")
        await say("/household search")
        assert "12 Lê Lợi · N.V.A. · 4 people" in await say("nguyen van a")
        assert double.messages_to(user)[-1].button_texts == ["Report", "Record support", "Edit"]
        await say("/household edit")
        await tap("12 Lê Lợi · N.V.A. · 4 people · Khu phố 1")
        await tap("Number of members")
        assert "Change members: 4 → 5" in await say("5")
        assert "Saved: 12 Lê Lợi · N.V.A. · 5 people." in await tap("Confirm")
        # A leader of another ward sees none of it.
        other = 2002
        await double.send_text(other, f"/start {seeded.codes['leader:OTHER']}",
                               language_code="en")
        await double.next_message(other)
        await double.send_text(other, "/household search", language_code="en")
        await double.next_message(other)
        await double.send_text(other, "nguyen van a", language_code="en")
        dropped, found = await double.wait_messages(other, 2)  # the question's Back goes
        assert dropped.method == "editMessageReplyMarkup", dropped.describe()
        assert "No household in your area" in (found.text or "")
        assert await asyncio.wait_for(_count(runtime.db), 5) == 1
    finally:
        await double.stop()
