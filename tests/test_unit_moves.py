"""`coso units import` keeps the tree's level order and moves units only when asked: a ward
under another ward's quarter (whose staff would then read it) is refused with FILE:LINE and
nothing written; a new parent for an existing unit needs --move, which says what moves."""

from __future__ import annotations

import json
from pathlib import Path

from storage import households, people, units
from storage.db import Database
from storage.models import Person
from tests.conftest import Coso, seed_ward

HEADER = "code,name,level,parent_code\n"


def unit_file(tmp_path: Path, *lines: str, name: str = "units.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


async def tree(coso: Coso) -> dict[str, str | None]:
    code, out, err = await coso("units", "list", "--json")
    assert code == 0, err
    return {unit["code"]: unit["parent_code"] for unit in json.loads(out)}


async def _ward_with_people(db_url: str) -> None:
    """The seeded wards; in Khu phố 2 of 26734 two households and one leader."""
    db = Database(db_url)
    try:
        await seed_ward(db)
        async with db.transaction() as session:
            kp2 = await units.by_code(session, "26734-KP2")
            assert kp2 is not None
            for code in ("5 Lý Tự Trọng", "7 Lý Tự Trọng"):
                await households.add(session, kp2, code, members=3)
            person = Person(full_name="Trần Thị Bình")
            session.add(person)
            await session.flush()
            await people.assign(session, person, kp2, "leader")
    finally:
        await db.dispose()


async def test_a_ward_under_another_wards_quarter_is_refused(
        db_url: str, coso: Coso, tmp_path: Path) -> None:
    await _ward_with_people(db_url)
    before = await tree(coso)
    for lines, line in (
            (["26734,Renamed ward,ward,26737-KP1"], 2),  # the probe
            (["N1,Phường Mới,ward,79", "N2,Phường Khác,ward,N1"], 3),  # a ward under a ward
            (["G9,Tổ 9,group,", "26734-KP1,Khu phố 1,quarter,G9"], 3),  # even with --move
    ):
        path = unit_file(tmp_path, *lines)
        code, out, err = await coso("units", "import", "--move", str(path))
        assert code == 1 and out == "", (lines, out)
        assert err.startswith(f"{path}:{line}: "), err
        assert "a parent's level must be above its child's (province > " in err, err
    assert await tree(coso) == before
    # Tiers may be skipped: a childless quarter becoming a group right under its ward.
    path = unit_file(tmp_path, "26734-KP2,Khu phố 2,group,26734")
    assert (await coso("units", "import", str(path)))[0] == 0


async def test_a_level_change_that_puts_a_unit_below_its_children_is_refused(
        db_url: str, coso: Coso, tmp_path: Path) -> None:
    await _ward_with_people(db_url)
    path = unit_file(tmp_path, "26734-KP1,Khu phố 1,group,26734")  # above Tổ dân phố 1
    code, _, err = await coso("units", "import", str(path))
    assert code == 1 and err.startswith(f"{path}:2: 26734-KP1-T1 (group) cannot sit under "
                                        "26734-KP1 (group)"), err


async def test_an_unknown_level_is_refused_with_the_order(
        db_url: str, coso: Coso, tmp_path: Path) -> None:
    path = unit_file(tmp_path, "P,Tỉnh,province,", "D,Quận 1,district,P")
    code, _, err = await coso("units", "import", str(path))
    assert code == 1 and err.strip() == (
        f"{path}:3: level district is not one of the tree's levels: province > "
        "ward/commune/special_zone > quarter/hamlet/village > group")


async def test_a_move_needs_move_and_says_what_moves(
        db_url: str, coso: Coso, tmp_path: Path) -> None:
    await _ward_with_people(db_url)
    path = unit_file(tmp_path, "26734-KP2,Khu phố 2,quarter,26737")
    code, out, err = await coso("units", "import", str(path))
    assert code == 1 and out == ""
    assert err.strip() == (f"{path}:2: 26734-KP2 would move from under 26734 to under 26737 "
                           "(units: 1, households: 2, people: 1 would change scope); run "
                           "again with --move to move it"), err
    assert (await tree(coso))["26734-KP2"] == "26734"
    code, out, _ = await coso("households", "list", "--unit", "26737", "--json")
    assert json.loads(out) == []

    code, out, err = await coso("units", "import", "--move", str(path))
    assert code == 0, err
    assert out.splitlines() == [
        "Moved 26734-KP2 from under 26734 to under 26737: units: 1, households: 2, "
        "people: 1 change scope.",
        "Imported 1 unit (0 new, 1 updated).",
    ]
    assert (await tree(coso))["26734-KP2"] == "26737"
    code, out, _ = await coso("households", "list", "--unit", "26737", "--json")
    assert sorted(h["code"] for h in json.loads(out)) == ["5 Lý Tự Trọng", "7 Lý Tự Trọng"]
    # A quarter with its group moves whole; a re-import of the same tree moves nothing.
    path = unit_file(tmp_path, "26734-KP1,Khu phố 1,quarter,26737", name="kp1.csv")
    code, out, err = await coso("units", "import", "--move", str(path))
    assert code == 0 and "units: 2, households: 0, people: 0" in out, err
    assert (await tree(coso))["26734-KP1-T1"] == "26734-KP1"
    code, out, _ = await coso("units", "import", str(path))
    assert code == 0 and out.strip() == "Imported 1 unit (0 new, 1 updated)."
