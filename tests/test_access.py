"""Who may do what, as one table: every command × every role, and forged buttons for another
unit's records. The table is the policy; a new command fails here until it has its row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.handlers.commands import COMMANDS
from bot.handlers.router import Router
from storage import drills, units
from storage.db import Database
from storage.models import DrillScenario, utcnow
from tests.chat import Chat
from tests.conftest import Seeded, make_settings, seed_ward
from tests.test_reports import join, text_of

EVERYONE = {"stranger", "leader", "ward_staff", "admin", "monitor"}
STAFF = {"ward_staff", "admin"}
POLICY: dict[str, set[str]] = {
    "report": {"leader", *STAFF}, "open": {"leader", *STAFF}, "checkin": {"leader"},
    "household": {"leader", "monitor", *STAFF}, "support": {"leader", *STAFF},
    "eligible": STAFF, "deliveries": {"monitor", *STAFF}, "dispute": {"monitor"},
    "disputes": STAFF, "drill": STAFF, "export": STAFF, "schedule": STAFF, "directive": STAFF,
    "summary": STAFF, "people": STAFF, "invite": STAFF, "handover": STAFF,
    "web": {"monitor", *STAFF},
    "lang": EVERYONE, "help": EVERYONE, "cancel": EVERYONE, "start": EVERYONE,
}
INVITES = {"leader": "leader:KP1", "ward_staff": "ward_staff:WARD", "admin": "admin:CITY",
           "monitor": "monitor:WARD"}
REFUSED = ("Sorry, this is only for", "You are not registered yet")


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    database = Database(db_url)
    seeded = await seed_ward(database)
    yield Router(database, make_settings(db_url)), database, seeded
    await database.dispose()


async def _people(world: tuple[Router, Database, Seeded]) -> dict[str, Chat]:
    router, db, seeded = world
    people = {"stranger": Chat(router, db, external_id="900", display_name="Person 900")}
    for number, (role, code) in enumerate(INVITES.items(), start=901):
        people[role] = await join(router, db, seeded, str(number), code)
    return people


def test_every_command_has_a_row() -> None:
    assert set(COMMANDS) == set(POLICY)


async def test_each_command_for_each_role(world: tuple[Router, Database, Seeded]) -> None:
    people = await _people(world)
    wrong = []
    for name in sorted(POLICY):
        if name == "start":
            continue  # registration itself, tested in its own flow
        for role, chat in people.items():
            replies = text_of(await chat.send(f"/{name}"))
            refused = any(phrase in replies for phrase in REFUSED)
            if refused == (role in POLICY[name]):
                wrong.append(f"/{name} as {role}: {'refused' if refused else 'allowed'}")
            await chat.send("/cancel")
    assert not wrong, "\n".join(wrong)


async def test_forged_buttons_for_another_wards_records_are_refused(
        world: tuple[Router, Database, Seeded]) -> None:
    router, db, seeded = world
    ours = await join(router, db, seeded, "911", "leader:KP1")
    theirs = await join(router, db, seeded, "912", "leader:OTHER")
    async with db.transaction() as session:
        ward = await units.by_code(session, "26734")
        kp1 = await units.by_code(session, "26734-KP1")
        assert ward is not None and kp1 is not None
        scenario = await session.get(DrillScenario, "night_emergency")
        assert scenario is not None
        await drills.start(session, ward, scenario, [kp1.id], None, utcnow())
    # A check-in answers as for a missing unit, so a forged id names nothing (issue 11).
    forged = {"drill card": ("dr:1:a", "only"),
              "check-in of KP1": (f"ck:{kp1.id}:n", "This question is no longer open.")}
    for what, (payload, expected) in forged.items():
        replies = text_of(await theirs.send(payload=payload))
        assert expected in replies and "Khu phố" not in replies, f"{what}: {replies}"
    # The same buttons work for the unit's own leader.
    assert "Step 1 of 3" in text_of(await ours.send(payload="dr:1:a"))
