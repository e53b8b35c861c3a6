"""Units: CSV import (storage and `coso units import`), the official list, `coso units list`."""
# ruff: noqa: F401, F811 - fixtures come from tests.cli_fixtures by import, so they
# stay local to these modules instead of joining the shared conftest.

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import units
from storage.db import Database
from storage.models import Unit
from storage.official_units import UnknownProvince, province_rows
from storage.unit_import import UnitImportError, apply_rows, parse_csv
from tests.cli_fixtures import (
    CliEnv,
    Run,
    cli,
    cli_env,
    migrated,
    postgres_url,
    store,
    store_url,
)

HEADER = "code,name,level,parent_code\n"
BEN_THANH_NFD = unicodedata.normalize("NFD", "Phường  Bến   Thành")


def csv_bytes(*lines: str, bom: bool = False) -> bytes:
    data = (HEADER + "".join(line + "\n" for line in lines)).encode()
    return b"\xef\xbb\xbf" + data if bom else data


async def import_bytes(db: Database, data: bytes, move: bool = False) -> None:
    rows = parse_csv(data)
    async with db.transaction() as session:
        await apply_rows(session, rows, move=move)


async def snapshot(db: Database) -> dict[str, tuple[str, str, str | None, str]]:
    """code -> (name, level, parent code, path) for every unit."""
    async with db.read() as session:
        everything = await units.all_units(session)
    by_id = {u.id: u.code for u in everything}
    return {u.code: (u.name, u.level, by_id.get(u.parent_id) if u.parent_id else None, u.path)
            for u in everything}


# --- parsing ---------------------------------------------------------------------------------

def test_parse_bom_nfd_and_double_spaces_are_normalised() -> None:
    rows = parse_csv(csv_bytes(f"W1,{BEN_THANH_NFD},Ward,", bom=True))
    assert rows[0].name == "Phường Bến Thành"
    assert unicodedata.is_normalized("NFC", rows[0].name)
    assert (rows[0].code, rows[0].level, rows[0].parent_code, rows[0].line) == (
        "W1", "ward", None, 2)


def test_parse_skips_blank_lines_and_counts_lines() -> None:
    rows = parse_csv(csv_bytes("P,Tỉnh,province,", "", "W,Phường,ward,P"))
    assert [(r.code, r.line) for r in rows] == [("P", 2), ("W", 4)]


@pytest.mark.parametrize(("lines", "line", "reason"), [
    (["P,Tỉnh,province,", "W,,ward,P"], 3, "name is empty"),
    (["P,Tỉnh,,"], 2, "level is empty"),
    ([",Tỉnh,province,"], 2, "code is empty"),
    (["P,Tỉnh,province,", "P,Tỉnh khác,province,"], 3, "code P already appears on line 2"),
    (["P," + "x" * 201 + ",province,"], 2, "name is longer than 200 characters"),
    (["P,Tỉnh,Khu phố,"], 2, "level khu phố is not"),
    (["P,Tỉnh,province,P"], 2, "cannot be its own parent"),
])
def test_parse_rejects_bad_rows(lines: list[str], line: int, reason: str) -> None:
    with pytest.raises(UnitImportError) as caught:
        parse_csv(csv_bytes(*lines))
    assert caught.value.line == line
    assert reason in str(caught.value)


def test_parse_rejects_bad_encoding_with_its_line() -> None:
    data = csv_bytes("P,Tỉnh,province,") + "W,Café,ward,P\n".encode("latin-1")
    with pytest.raises(UnitImportError) as caught:
        parse_csv(data)
    assert caught.value.line == 3
    assert "UTF-8" in str(caught.value)


def test_parse_requires_the_header() -> None:
    with pytest.raises(UnitImportError) as caught:
        parse_csv(b"P,Tinh,province,\n")
    assert caught.value.line == 1
    assert "header" in str(caught.value)


# --- writing (SQLite, and PostgreSQL when COSO_TEST_POSTGRES_URL is set) ---------------------

async def test_import_stores_nfc_collapsed_names(store: Database) -> None:
    await import_bytes(store, csv_bytes("P,Tỉnh,province,", f"W1,{BEN_THANH_NFD},ward,P",
                                        bom=True))
    got = await snapshot(store)
    assert got["W1"][:3] == ("Phường Bến Thành", "ward", "P")
    assert got["W1"][3].startswith(got["P"][3])


async def test_reimport_updates_names_levels_parents_and_subtree_paths(store: Database) -> None:
    await import_bytes(store, csv_bytes("P,Tỉnh,province,", "A,Phường A,ward,P",
                                        "B,Phường B,ward,P", "Q,Khu phố 1,quarter,A",
                                        "G,Tổ 1,group,Q"))
    await import_bytes(store, csv_bytes("Q,Ấp 1,hamlet,B", "A,Xã A,commune,P"), move=True)
    got = await snapshot(store)
    assert got["Q"][:3] == ("Ấp 1", "hamlet", "B")
    assert got["A"][:2] == ("Xã A", "commune")
    # G was not in the second file, but it moved with Q.
    assert got["G"][3] == got["Q"][3] + got["G"][3].split("/")[-2] + "/"
    assert got["G"][3].startswith(got["B"][3])
    assert len(got) == 5


async def test_forward_parent_reference_is_fine(store: Database) -> None:
    await import_bytes(store, csv_bytes("G,Tổ 1,group,Q", "Q,Khu phố 1,quarter,W",
                                        "W,Phường,ward,", ))
    got = await snapshot(store)
    assert (got["G"][2], got["Q"][2], got["W"][2]) == ("Q", "W", None)
    assert got["G"][3].startswith(got["Q"][3]) and got["Q"][3].startswith(got["W"][3])


async def test_parent_may_already_be_in_the_database(store: Database) -> None:
    await import_bytes(store, csv_bytes("W,Phường,ward,"))
    await import_bytes(store, csv_bytes("Q,Khu phố 1,quarter,W"))
    assert (await snapshot(store))["Q"][2] == "W"


@pytest.mark.parametrize("lines", [
    ["A,Một,ward,B", "B,Hai,ward,C", "C,Ba,ward,A"],
    ["A,Một,ward,B", "B,Hai,ward,A", "C,Ba,ward,"],
])
async def test_cycle_is_rejected_and_nothing_written(store: Database, lines: list[str]) -> None:
    with pytest.raises(UnitImportError) as caught:
        await import_bytes(store, csv_bytes(*lines))
    assert "own ancestor" in str(caught.value)
    assert caught.value.line == 2
    assert await snapshot(store) == {}


async def test_cycle_through_stored_units_is_rejected(store: Database) -> None:
    await import_bytes(store, csv_bytes("A,Một,ward,", "B,Hai,quarter,A"))
    before = await snapshot(store)
    with pytest.raises(UnitImportError, match="own ancestor"):
        await import_bytes(store, csv_bytes("X,Mới,group,", "A,Một,ward,B"))
    assert await snapshot(store) == before


async def test_unknown_parent_writes_nothing(store: Database) -> None:
    with pytest.raises(UnitImportError) as caught:
        await import_bytes(store, csv_bytes("P,Tỉnh,province,", "W,Phường,ward,NOPE"))
    assert caught.value.line == 3
    assert "NOPE" in str(caught.value)
    assert await snapshot(store) == {}


async def test_official_province_79_has_168_wards(store: Database) -> None:
    rows = province_rows("79")
    for _ in range(2):  # idempotent
        async with store.transaction() as session:
            await apply_rows(session, rows)
    got = await snapshot(store)
    assert got["79"][:3] == ("Thành phố Hồ Chí Minh", "province", None)
    below = [v for code, v in got.items() if v[2] == "79"]
    assert len(below) == 168 == len(got) - 1
    assert {v[1] for v in below} == {"ward", "commune", "special_zone"}
    assert all(len(code) == 5 for code in got if code != "79")
    assert got["26743"][0] == "Phường Bến Thành"
    assert not any("  " in v[0] for v in got.values())


def test_unknown_official_province() -> None:
    with pytest.raises(UnknownProvince):
        province_rows("99")
    with pytest.raises(UnknownProvince):
        province_rows("HCM")
    assert province_rows("1")[0].code == "01"


# --- the command line ------------------------------------------------------------------------

def write_csv(env: CliEnv, *lines: str, name: str = "units.csv", bom: bool = False) -> Path:
    path = env.tmp / name
    path.write_bytes(csv_bytes(*lines, bom=bom))
    return path


def count_units(env: CliEnv) -> int:
    async def work(db: Database) -> int:
        async with db.read() as session:
            return int((await session.execute(select(func.count()).select_from(Unit)))
                       .scalar_one())
    return env.query(work)


def test_cli_import_then_list(migrated: CliEnv, cli: Run) -> None:
    path = write_csv(migrated, "Q1,Khu phố 1,quarter,W", "W,Phường Bến Thành,ward,P",
                     "P,Thành phố Hồ Chí Minh,province,", "Q10,Khu phố 10,quarter,W",
                     "Q2,Khu phố 2,quarter,W", bom=True)
    code, out, err = cli("units", "import", str(path))
    assert code == 0, err
    assert "Imported 5 units (5 new, 0 updated)" in out
    code, out, _ = cli("units", "list")
    assert out.splitlines() == [
        "Thành phố Hồ Chí Minh [P] province",
        "  Phường Bến Thành [W] ward",
        "    Khu phố 1 [Q1] quarter",
        "    Khu phố 2 [Q2] quarter",
        "    Khu phố 10 [Q10] quarter",
    ]
    code, out, _ = cli("--lang", "vi", "units", "list")
    assert out.splitlines()[:2] == ["Thành phố Hồ Chí Minh [P] tỉnh/thành phố",
                                    "  Phường Bến Thành [W] phường"]
    assert out.splitlines()[-1] == "    Khu phố 10 [Q10] khu phố"
    code, out, _ = cli("units", "list", "--json", "--under", "W")
    listed = json.loads(out)
    assert listed[0] == {"code": "W", "name": "Phường Bến Thành", "level": "ward",
                         "parent_code": "P", "depth": 1}
    assert [u["code"] for u in listed] == ["W", "Q1", "Q2", "Q10"]
    assert cli("units", "list", "--under", "NOPE")[0] == 1


def test_cli_bad_row_reports_file_line_reason_and_writes_nothing(migrated: CliEnv,
                                                                  cli: Run) -> None:
    path = write_csv(migrated, "P,Tỉnh,province,", "W,Phường,ward,P", "Q,,quarter,W")
    code, out, err = cli("units", "import", str(path))
    assert code == 1
    assert err.strip() == f"{path}:4: name is empty"
    assert count_units(migrated) == 0
    path = write_csv(migrated, "P,Tỉnh,province,", "W,Phường,ward,GONE", name="b.csv")
    code, _, err = cli("units", "import", str(path))
    assert (code, err.split(": ")[0]) == (1, f"{path}:3")
    assert count_units(migrated) == 0


def test_cli_reimport_updates(migrated: CliEnv, cli: Run) -> None:
    path = write_csv(migrated, "P,Tỉnh,province,", "W,Phường,ward,P")
    cli("units", "import", str(path))
    path = write_csv(migrated, "W,Phường Mới,ward,P", name="again.csv")
    code, out, _ = cli("units", "import", str(path))
    assert "Imported 1 unit (0 new, 1 updated)" in out
    assert "Phường Mới [W] ward" in cli("units", "list")[1]


def test_cli_progress_on_long_files(migrated: CliEnv, cli: Run) -> None:
    lines = ["P,Tỉnh,province,"] + [f"G{i},Tổ {i},group,P" for i in range(1, 200)]
    code, out, err = cli("units", "import", str(write_csv(migrated, *lines)))
    assert code == 0
    assert err.count(" of 200 units written") >= 10
    assert err.splitlines()[-1] == "200 of 200 units written"
    assert "Imported 200 units" in out


def test_cli_missing_file(migrated: CliEnv, cli: Run) -> None:
    code, _, err = cli("units", "import", str(migrated.tmp / "nope.csv"))
    assert code == 1 and "cannot read" in err


def test_cli_import_official(migrated: CliEnv, cli: Run) -> None:
    code, out, err = cli("units", "import-official", "--province", "79")
    assert code == 0, err
    assert "169 of 169 units written" in err
    assert "Imported 169 units (169 new, 0 updated)" in out
    code, out, _ = cli("units", "import-official", "--province", "79")
    assert "(0 new, 169 updated)" in out
    assert count_units(migrated) == 169


def test_cli_import_official_unknown_province(migrated: CliEnv, cli: Run) -> None:
    code, _, err = cli("units", "import-official", "--province", "99")
    assert code == 1
    assert err.startswith("coso: unknown province code 99")
    assert "Traceback" not in err


def test_cli_unmigrated_database(cli_env: CliEnv, cli: Run) -> None:
    path = write_csv(cli_env, "P,Tỉnh,province,")
    for argv in (["units", "list"], ["units", "import", str(path)],
                 ["users", "list"], ["invite", "revoke", "ABCD2345"]):
        code, _, err = cli(*argv)
        assert code == 1
        assert err.strip() == "coso: database not initialised: run `coso db upgrade`"


def test_cli_db_upgrade(cli_env: CliEnv, cli: Run) -> None:
    for _ in range(2):
        code, out, _ = cli("db", "upgrade")
        assert code == 0 and "revision" in out
    assert cli("units", "list")[0] == 0
