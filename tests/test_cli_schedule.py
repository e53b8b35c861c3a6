"""`coso schedule set | show` on both databases: effective times, own values marked, refusals."""

from __future__ import annotations

import json

from storage import units
from storage.db import Database
from storage.models import Schedule
from tests.conftest import Coso, seed_ward


async def test_show_gives_each_ward_the_city_defaults(db: Database, coso: Coso) -> None:
    await seed_ward(db)
    code, out, _ = await coso("schedule", "show", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"code": code_, "name": name, "prompt_at": "16:00", "reminder_at": "18:00",
         "digest_at": "19:30", "escalation_at": "19:00", "weekdays_only": False,
         "overridden": []}
        for code_, name in (("26734", "Phường Bến Thành"), ("26737", "Phường Sài Gòn"))]
    code, out, _ = await coso("schedule", "show")
    lines = out.splitlines()
    assert lines[0].split() == ["Code", "Ward", "Check-in", "Reminder", "Escalation", "Digest",
                                "Days"]
    assert lines[1].split() == ["26734", "Phường", "Bến", "Thành", "16:00", "18:00", "19:00",
                                "19:30", "every", "day"]
    assert len(lines) == 3  # no footnote: nothing is the ward's own


async def test_set_then_show_marks_the_wards_own_values(db: Database, coso: Coso) -> None:
    await seed_ward(db)
    code, out, _ = await coso("schedule", "set", "--unit", "26734", "--prompt", "7h30",
                              "--reminder", "9:15", "--weekdays", "--json")
    assert code == 0, out
    [entry] = json.loads(out)
    assert (entry["prompt_at"], entry["reminder_at"], entry["escalation_at"],
            entry["digest_at"], entry["weekdays_only"]) == ("07:30", "09:15", "10:15", "19:30",
                                                            True)
    assert entry["overridden"] == ["prompt_at", "reminder_at", "weekdays_only"]
    # A unit inside the ward shows its ward; the other ward keeps the defaults.
    code, out, _ = await coso("schedule", "show", "--unit", "26734-KP1-T1")
    assert code == 0
    assert "07:30*" in out and "09:15*" in out and "Mon–Fri*" in out
    assert "26737" not in out and "* the ward's own value" in out
    code, out, _ = await coso("schedule", "set", "--unit", "26734", "--prompt", "default",
                              "--reminder", "17:00", "--every-day", "--json")
    [entry] = json.loads(out)
    assert (entry["prompt_at"], entry["weekdays_only"]) == ("16:00", False)
    assert entry["overridden"] == ["reminder_at", "weekdays_only"]
    code, out, _ = await coso("schedule", "show", "--unit", "79", "--json")
    assert [e["code"] for e in json.loads(out)] == ["26734", "26737"]
    async with db.read() as session:
        row = await session.get(Schedule, await _ward_id(db))
        assert row is not None and (row.prompt_at, row.reminder_at) == (None, "17:00")


async def _ward_id(db: Database) -> int:
    async with db.read() as session:
        ward = await units.by_code(session, "26734")
        assert ward is not None
        return ward.id


async def test_set_refuses_what_cannot_work_and_changes_nothing(db: Database,
                                                                coso: Coso) -> None:
    await seed_ward(db)
    cases = [
        (("--unit", "26734", "--prompt", "25:00"), "That is no time of day"),
        (("--unit", "26734", "--reminder", "15:00"),
         "The reminder must come after the check-in question."),
        (("--unit", "26734", "--digest", "17:00"), "The digest must come after the reminder."),
        (("--unit", "26734-KP1", "--prompt", "08:00"), "Only a ward, commune or special zone"),
        (("--unit", "99999", "--prompt", "08:00"), "unknown unit 99999"),
        (("--unit", "26734",), "nothing to change"),
    ]
    for argv, reason in cases:
        code, out, err = await coso("schedule", "set", *argv)
        assert code != 0 and reason in err, (argv, out, err)
    code, _, err = await coso("schedule", "set", "--unit", "26734", "--weekdays", "--every-day")
    assert code == 2 and "not allowed with argument" in err
    async with db.read() as session:
        assert await session.get(Schedule, await _ward_id(db)) is None
    code, out, _ = await coso("schedule", "show", "--unit", "99999")
    assert code != 0


async def test_a_province_without_wards_says_so(db: Database, coso: Coso) -> None:
    async with db.transaction() as session:
        await units.upsert(session, "01", "Thành phố Hà Nội", "province", None)
    code, out, _ = await coso("schedule", "show", "--unit", "01")
    assert code == 0 and out.strip() == "No ward, commune or special zone there."
    code, out, _ = await coso("schedule", "show", "--unit", "01", "--json")
    assert json.loads(out) == []
