"""The city's own catalogues (`coso catalog`): exported, edited and imported back, seen in chat
on Telegram and Zalo; retired policies; a ward's own scenario drilled twice and compared;
bad files refused with file:line:field and nothing written. Both databases."""

from __future__ import annotations

import copy
import csv
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import time_machine
import yaml

from bot.app import Runtime
from storage import support, units
from storage.db import Database
from storage.households import add as add_household
from storage.models import utcnow
from tests.conftest import Coso, StartBot, seed_ward
from tests.doubles.telegram_api import SentMessage, TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import WardTeam, data_for, say, tap, ward_team

STAFF, KP1, T1, OTHER = 801, 802, 803, 804
ZALO_KP2 = "zalo-kp2"
TEAM = WardTeam(staff=STAFF, kp1=KP1, t1=T1, other=OTHER, zalo_kp2=ZALO_KP2)


async def _export(coso: Coso, tmp_path: Path, kind: str, *extra: str) -> dict:
    out = tmp_path / f"{kind}.yaml"
    code, _, err = await coso("catalog", "export", kind, "--out", str(out), *extra)
    assert code == 0, err
    return yaml.safe_load(out.read_text(encoding="utf-8"))


def _write(tmp_path: Path, name: str, document: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path


async def _telegram_categories(tg: TelegramDouble, user: int) -> SentMessage:
    """The group leader adds a household on the spot: the situation question comes next."""
    await say(tg, user, "/report")
    [code] = await tap(tg, user, data_for(tg.messages_to(user)[-1], "Add a new household"))
    assert "household's code" in (code.text or "")
    await say(tg, user, "3 Pasteur")
    await say(tg, user, "skip")
    [flags] = await say(tg, user, "2")
    [categories] = await tap(tg, user, data_for(flags, "Done"))
    assert "situation" in (categories.text or "")
    return categories


async def _zalo(zalo: ZaloDouble, user: str, text: str) -> str:
    await zalo.send_text(user, text)
    return (await zalo.next_message(user)).text or ""


async def _zalo_categories(zalo: ZaloDouble, user: str) -> str:
    menu = await _zalo(zalo, user, "/report")
    add = next(line.split(".")[0] for line in menu.splitlines()
               if line.endswith("Add a new household"))
    assert "household's code" in await _zalo(zalo, user, add)
    await _zalo(zalo, user, "8 Nguyen Hue")
    await _zalo(zalo, user, "skip")
    assert "7. Done" in await _zalo(zalo, user, "2")
    return await _zalo(zalo, user, "7")


async def test_situations_round_trip_to_report_on_telegram_and_zalo(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso,
        tmp_path: Path) -> None:
    await ward_team(start_bot, tg, zalo, TEAM)
    document = await _export(coso, tmp_path, "situations")
    assert document["kind"] == "situations" and len(document["entries"]) == 11
    f0 = document["entries"][0]
    assert (f0["key"], f0["aliases"], f0["urgent"]) == ("f0", ["F0", "ca benh"], True)
    f0["label_en"], f0["label_vi"] = "Confirmed COVID-19 case", "Ca COVID-19 xác nhận"
    f0["aliases"].append("covid")
    document["entries"] = [e for e in document["entries"] if e["key"] != "recovered"]
    path = _write(tmp_path, "situations.yaml", document)

    code, out, err = await coso("catalog", "import", "situations", str(path), "--dry-run")
    assert code == 0, err
    assert "changed (1): f0" in out and "retired (1): recovered" in out
    assert "Dry run: nothing was written." in out
    code, out, err = await coso("catalog", "import", "situations", str(path))
    assert code == 0 and "Imported situations." in out, err
    code, out, _ = await coso("catalog", "import", "situations", str(path))
    assert "changed (0)" in out and "unchanged: 10" in out  # importing again changes nothing

    # The ward keeps a situation of its own: its people see it beside the city's.
    ward_file = _write(tmp_path, "ward.yaml", {"kind": "situations", "entries": [
        {"key": "dengue_26734", "label_vi": "Sốt xuất huyết", "label_en": "Dengue fever",
         "aliases": ["sxh"], "urgent": True}]})
    code, out, err = await coso("catalog", "import", "situations", str(ward_file),
                                "--unit", "26734")
    assert code == 0 and "added (1): dengue_26734" in out, err

    categories = await _telegram_categories(tg, T1)
    assert categories.button_texts[0] == "Confirmed COVID-19 case"
    assert "Recovered" not in categories.button_texts
    assert categories.button_texts[-2:] == ["Dengue fever", "Back"]
    [people] = await tap(tg, T1, data_for(categories, "Confirmed COVID-19 case"))
    assert "How many people" in (people.text or "")

    listing = await _zalo_categories(zalo, ZALO_KP2)
    assert "1. Confirmed COVID-19 case" in listing and "Dengue fever" in listing
    assert "Recovered" not in listing
    assert "How many people" in await _zalo(zalo, ZALO_KP2, "Covid")  # an alias, any case

    elsewhere = await _telegram_categories(tg, OTHER)  # another ward: the city's only
    assert "Dengue fever" not in elsewhere.button_texts

    code, out, _ = await coso("catalog", "list", "situations", "--json")
    listed = {entry["key"]: entry for entry in json.loads(out)}
    assert listed["recovered"]["active"] is False  # retired, still named
    assert listed["f0"]["label_en"] == "Confirmed COVID-19 case"


async def _deliver_food_bag(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        kp1 = await units.by_code(session, "26734-KP1")
        assert kp1 is not None
        household = await add_household(session, kp1, "4 Lê Lợi", members=3)
        await support.record_delivery(session, household=household, policy_key="food_bag",
                                      amount=1, status="delivered", delivered_on=date.today(),
                                      photo=None, person_id=None, now=utcnow())


async def test_a_retired_policy_leaves_support_but_stays_in_exports(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso,
        tmp_path: Path) -> None:
    runtime, _ = await ward_team(start_bot, tg, zalo, TEAM)
    await _deliver_food_bag(runtime)
    document = await _export(coso, tmp_path, "policies")
    document["entries"] = [e for e in document["entries"] if e["key"] != "food_bag"]
    document["entries"][0]["label_en"] = "Cash support (Resolution 68)"
    document["entries"].append({
        "key": "flood_2026", "label_vi": "Hỗ trợ khắc phục ngập lụt",
        "label_en": "Flood relief", "measure": "other", "standard_amount": 2,
        "legal_basis": "Quyết định 12/QĐ-UBND", "valid_from": date(2026, 1, 1),
        "valid_to": date(2099, 12, 31)})
    document["entries"].append({
        "key": "expired", "label_vi": "Gói cũ", "label_en": "Old package", "measure": "vnd",
        "standard_amount": 500_000, "valid_to": date(2021, 12, 31)})
    code, out, err = await coso("catalog", "import", "policies",
                                str(_write(tmp_path, "policies.yaml", document)))
    assert code == 0, err
    assert "added (2): flood_2026, expired" in out and "retired (1): food_bag" in out

    await say(tg, KP1, "/support")
    [unit] = await tap(tg, KP1, data_for(tg.messages_to(KP1)[-1], "Add a new household"))
    await tap(tg, KP1, data_for(unit, "Khu phố 1"))
    await say(tg, KP1, "9 Lý Tự Trọng")
    await say(tg, KP1, "skip")
    [flags] = await say(tg, KP1, "2")
    [policies] = await tap(tg, KP1, data_for(flags, "Done"))
    assert policies.button_texts == ["Cash support (Resolution 68)",
                                     "The city's cash support package",
                                     "Home-treatment medicine kit", "Flood relief",
                                     "Back"]

    out_dir = tmp_path / "export"
    today = date.today().isoformat()
    code, _, err = await coso("export", "--unit", "26734", "--from", today, "--to", today,
                              "--format", "csv", "--out", str(out_dir))
    assert code == 0, err
    rows = [row for path in out_dir.glob("*.csv") if "deliver" in path.name.lower()
            for row in csv.reader(path.open(encoding="utf-8-sig"))]
    assert any('"An sinh" food bag' in row for row in rows), rows
    again = await _export(coso, tmp_path, "policies")
    food_bag = next(e for e in again["entries"] if e["key"] == "food_bag")
    assert food_bag["active"] is False and food_bag["label_en"] == '"An sinh" food bag'
    flood = next(e for e in again["entries"] if e["key"] == "flood_2026")
    assert flood["legal_basis"] == "Quyết định 12/QĐ-UBND"


WARD_SCENARIO = {"kind": "scenarios", "entries": [{
    "key": "flood_26734", "label_vi": "Ngập nước trong khu phố",
    "label_en": "Flooding in the quarter", "levels": ["quarter"],
    "steps": [{"vi": "Báo cho các hộ vùng trũng", "en": "Warn the low-lying households",
               "minutes": 5},
              {"vi": "Đưa người già đến nơi an toàn", "en": "Move the elderly to safety",
               "minutes": 5}]}]}


async def _run_drill(tg: TelegramDouble, zalo: ZaloDouble, clock: time_machine.Coordinates,
                     kp1: tuple[int, int], kp2: tuple[int, int]) -> None:
    """Start the ward's scenario; each quarter takes the given minutes for steps 1 and 2."""
    [scenarios] = await say(tg, STAFF, "/drill")
    assert scenarios.button_texts[-2:] == ["Flooding in the quarter", "Cancel"]
    [areas] = await tap(tg, STAFF, data_for(scenarios, "Flooding in the quarter"))
    [summary] = await tap(tg, STAFF, data_for(areas, "The whole ward"))
    assert "2 units take part: Khu phố 1, Khu phố 2" in (summary.text or "")  # no group
    await tap(tg, STAFF, data_for(summary, "Confirm"))
    [card] = await tg.wait_messages(KP1)
    [step] = await tap(tg, KP1, data_for(card, "Received"))
    for number, minutes in enumerate(kp1, start=1):
        clock.shift(timedelta(minutes=minutes))
        [step] = await tap(tg, KP1, data_for(step, f"Step {number} done"))
    await tap(tg, KP1, data_for(step, "Drill done"))
    await zalo.next_message(ZALO_KP2)
    await _zalo(zalo, ZALO_KP2, "1")
    for minutes in kp2:
        clock.shift(timedelta(minutes=minutes))
        await _zalo(zalo, ZALO_KP2, "1")
    assert "completed drill" in await _zalo(zalo, ZALO_KP2, "1")


async def test_a_wards_scenario_drilled_twice_compares_with_the_first(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await ward_team(start_bot, tg, zalo, TEAM)
    scenario = copy.deepcopy(WARD_SCENARIO)
    path = _write(tmp_path, "flood.yaml", scenario)
    code, out, err = await coso("catalog", "import", "scenarios", str(path), "--unit", "26734")
    assert code == 0 and "added (1): flood_26734" in out, err
    with time_machine.travel(utcnow(), tick=True) as clock:
        await _run_drill(tg, zalo, clock, kp1=(2, 8), kp2=(4, 8))
        # The ward rewrites step 2 between the drills: drill 1 keeps the steps it ran.
        scenario["entries"][0]["steps"][1]["en"] = "Move the elderly and children"
        path = _write(tmp_path, "flood.yaml", scenario)
        code, out, err = await coso("catalog", "import", "scenarios", str(path), "--unit",
                                    "26734")
        assert code == 0 and "changed (1): flood_26734" in out, err
        clock.shift(timedelta(days=7))
        await _run_drill(tg, zalo, clock, kp1=(1, 2), kp2=(1, 2))

    code, out, err = await coso("drill", "report", "1", "--json")
    first = json.loads(out)
    assert (first["scenario_version"], first["previous_drill_id"]) == (1, None)
    assert first["steps"][1]["en"] == "Move the elderly to safety"
    assert sorted(first["steps"][1]["late_units"]) == ["Khu phố 1", "Khu phố 2"]
    assert first["steps"][0]["late_units"] == []
    assert round(first["steps"][0]["median_seconds"] / 60) == 3
    assert first["steps"][0]["slowest_unit"] == "Khu phố 2"

    code, out, err = await coso("drill", "report", "2", "--json")
    second = json.loads(out)
    assert (second["scenario_version"], second["previous_drill_id"]) == (2, 1)
    assert second["steps"][1]["en"] == "Move the elderly and children"
    assert [round(s["change_seconds"] / 60) for s in second["steps"]] == [-2, -6]
    assert round(second["steps"][1]["previous"]["median_seconds"] / 60) == 8
    assert second["steps"][1]["late_units"] == []

    latest, earlier = await say(tg, STAFF, "/drill status", count=2)
    assert ("Step 1 2 minutes faster than last time; Step 2 6 minutes faster than last time "
            "(drill #1 before).") in (latest.text or "")
    assert "Move the elderly to safety" in (earlier.text or "")
    monkeypatch.setenv("COSO_DEFAULT_LOCALE", "vi")
    code, out, _ = await coso("drill", "report", "2")
    assert "Bước 2 nhanh hơn 6 phút so với lần trước" in out, out


BAD = """\
kind: situations
entries:
  - key: f0
    label_vi: Ca bệnh (F0)
    label_en: Case (F0)
    aliases: [F0]
    colour: red
  - key: f1
    label_en: Contact (F1)
    aliases: [f0]
"""


async def test_bad_files_are_refused_with_file_line_field_and_nothing_written(
        db_url: str, coso: Coso, tmp_path: Path) -> None:
    before = (await coso("catalog", "export", "situations"))[1]
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    code, _, err = await coso("catalog", "import", "situations", str(bad))
    assert code == 1
    assert f"{bad}:7: f0.colour: unknown field" in err
    assert f"{bad}:8: f1.label_vi: missing" in err
    assert "Nothing was imported." in err and "Traceback" not in err

    # Well-formed, but two situations would answer to "F0" (case and accents folded).
    bad.write_text(BAD.replace("    colour: red\n", "").replace(
        "    label_en: Contact", "    label_vi: Tiếp xúc\n    label_en: Contact"),
        encoding="utf-8")
    code, _, err = await coso("catalog", "import", "situations", str(bad))
    assert code == 1 and f"{bad}:10: f1.aliases: the alias f0 is also f0's" in err, err

    for text, where in (("kind: policies\nentries: [{key: x, label_vi: X, label_en: X, "
                         "measure: box, standard_amount: 0}]\n", "x.measure"),
                        ("kind: scenarios\nentries:\n- key: s\n  label_vi: S\n  label_en: S\n"
                         "  steps: []\n", "s.steps"),
                        ("kind: situations\nentries: [\n", "-"),
                        ("kind: situations\nentries: " + "[" * 5000 + "]" * 5000, "-"),
                        ("kind: situations\nentries:\n- !!python/object/apply:os.getpid []\n",
                         "-")):
        kind = text.split()[1]
        bad.write_text(text, encoding="utf-8")
        code, _, err = await coso("catalog", "import", kind, str(bad))
        assert code == 1 and f"{bad}:" in err and f": {where}:" in err, err
    code, _, err = await coso("catalog", "import", "situations", str(bad), "--unit", "nowhere")
    assert code == 1
    bad.write_text("kind: situations\nentries:\n- {key: x, label_vi: X, label_en: X, "
                   "active: false}\n", encoding="utf-8")
    code, _, err = await coso("catalog", "import", "situations", str(bad))
    assert code == 1 and "a flow needs at least one" in err
    assert (await coso("catalog", "export", "situations"))[1] == before


async def test_a_wards_own_entries_stay_in_their_scope(
        db: Database, coso: Coso, tmp_path: Path) -> None:
    await seed_ward(db)
    mine = _write(tmp_path, "mine.yaml", {"kind": "situations", "entries": [
        {"key": "dengue", "label_vi": "Sốt xuất huyết", "label_en": "Dengue", "aliases": ["sxh"]}]})
    code, _, err = await coso("catalog", "import", "policies", str(mine), "--unit", "26734")
    assert code == 1 and "A ward cannot keep its own policies" in err
    code, _, err = await coso("catalog", "import", "situations", str(mine), "--unit",
                              "26734-KP1")
    assert code == 1 and "belongs to a ward, commune or special zone" in err
    assert (await coso("catalog", "import", "situations", str(mine), "--unit", "26734"))[0] == 0

    # Another ward may not take the key, nor an alias the first ward's people type.
    theirs = _write(tmp_path, "theirs.yaml", {"kind": "situations", "entries": [
        {"key": "dengue", "label_vi": "SXH", "label_en": "Dengue"},
        {"key": "f0", "label_vi": "F0 của phường", "label_en": "Ward F0"},
        {"key": "fever", "label_vi": "Sốt", "label_en": "Fever", "aliases": ["SXH"]}]})
    code, _, err = await coso("catalog", "import", "situations", str(theirs), "--unit", "26737")
    assert code == 1
    assert f"{theirs}:3: dengue.key: this key belongs to another catalogue" in err
    assert f"{theirs}:6: f0.key: this key belongs to another catalogue" in err
    assert f"{theirs}:12: fever.aliases: the alias SXH is also dengue's" in err

    # The city's file never sees, nor retires, a ward's entries.
    out = (await coso("catalog", "export", "situations", "--unit", "26734"))[1]
    assert "key: dengue" in out and "key: f0" not in out
    city = await _export(coso, tmp_path, "situations")
    assert "dengue" not in {entry["key"] for entry in city["entries"]}
    code, out, _ = await coso("catalog", "import", "situations",
                              str(_write(tmp_path, "city.yaml", city)))
    assert code == 0 and "retired (0)" in out
    listed = json.loads((await coso("catalog", "list", "situations", "--unit", "26734",
                                    "--json"))[1])
    assert [(entry["key"], entry["active"]) for entry in listed] == [("dengue", True)]


async def test_posts_are_a_catalogue_a_held_post_keeps_its_role(db: Database, coso: Coso,
                                                                tmp_path: Path) -> None:
    """`coso catalog … posts`: the defaults exported, a post added and another reordered;
    a hostile file refused whole with file:line; a held post neither retired nor re-roled."""
    await seed_ward(db)
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text("unit_code,post,full_name,phone\n26734-KP1-T1,to_truong,Võ Thị Hoa,\n",
                          encoding="utf-8")
    assert (await coso("people", "import", str(roster_csv)))[0] == 0
    document = await _export(coso, tmp_path, "posts")
    assert [e["key"] for e in document["entries"]] == [
        "truong_khu_pho", "pho_truong", "to_truong", "bi_thu_chi_bo", "truong_ban_mttq"]
    edited = copy.deepcopy(document)
    edited["entries"].insert(3, {"key": "to_pho", "label_vi": "Tổ phó tổ dân phố",
                                 "label_en": "Deputy head of residential group",
                                 "role": "leader", "levels": ["group"]})
    code, out, err = await coso("catalog", "import", "posts",
                                str(_write(tmp_path, "posts.yaml", edited)))
    assert code == 0 and "added (1): to_pho" in out, err
    code, out, _ = await coso("people", "posts")
    lines = out.splitlines()
    assert lines[0].split() == ["Key", "Post", "Role", "Levels"]
    assert [line.split()[0] for line in lines[1:]][2:4] == ["to_truong", "to_pho"]
    assert "Deputy head of residential group" in lines[4] and lines[4].endswith("group")
    code, out, _ = await coso("--lang", "vi", "people", "posts")
    assert "Tổ phó tổ dân phố" in out and out.splitlines()[4].endswith("tổ dân phố")
    assert "trưởng khu phố, ấp hoặc tổ dân phố" in out and "leader" not in out
    _, listed, _ = await coso("people", "list", "--unit", "26734-KP1-T1", "--json")
    [hoa] = [e["person_id"] for e in json.loads(listed) if e["person_id"]]
    code, out, err = await coso("people", "assign", "--unit", "26734-KP1-T1", "--post",
                                "to pho to dan pho", "--person", str(hoa))
    assert code == 0, err
    hostile = copy.deepcopy(edited)
    hostile["entries"][0]["role"] = "admin"
    hostile["entries"][1]["levels"] = ["district"]
    hostile["entries"][3]["label_vi"] = "Tổ trưởng tổ dân phố"
    path = _write(tmp_path, "hostile.yaml", hostile)
    code, _, err = await coso("catalog", "import", "posts", str(path))
    assert code != 0 and f"{path}:" in err and "Nothing was imported." in err, err
    assert "truong_khu_pho.role: unknown role" in err and "unknown unit level district" in err
    held = copy.deepcopy(edited)
    held["entries"][2]["role"] = "monitor"  # to_truong is held on T1
    held["entries"] = [e for e in held["entries"] if e["key"] != "to_pho"]  # to_pho is held
    code, _, err = await coso("catalog", "import", "posts",
                              str(_write(tmp_path, "held.yaml", held)))
    assert code != 0 and "to_truong.role: this post is held" in err, err
    assert "to_pho.active: this post is held" in err
    assert await _export(coso, tmp_path, "posts") == {**edited, "entries": [
        {**e, "levels": e.get("levels", []), "active": True} for e in edited["entries"]]}
