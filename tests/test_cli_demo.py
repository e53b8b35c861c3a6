"""`coso demo` and `coso run [--demo-if-empty]` (with a stand-in for bot.app.serve)."""
# ruff: noqa: F401, F811 - fixtures come from tests.cli_fixtures by import, so they
# stay local to these modules instead of joining the shared conftest.

from __future__ import annotations

import json
import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from bot.settings import Settings
from tests.cli_fixtures import CliEnv, Run, TelegramDouble, cli, cli_env, migrated, telegram
from tests.test_roster import decoded_links


def test_demo_twice(cli_env: CliEnv, cli: Run) -> None:
    first = demo_json(cli)
    second = demo_json(cli)
    assert first["ward"] == second["ward"] == {
        "code": "26743", "path": "Phường Bến Thành, Thành phố Hồ Chí Minh"}
    for made in (first, second):
        assert [(i["role"], i["unit"]) for i in made["invites"]] == [
            ("leader", "26743-KP1"), ("leader", "26743-KP2"), ("leader", "26743-KP3"),
            ("leader", "26743-KP1-T1"), ("leader", "26743-KP1-T2"), ("leader", "26743-KP2-T1"),
            ("leader", "26743-KP2-T2"), ("leader", "26743-KP3-T1"), ("leader", "26743-KP3-T2"),
            ("ward_staff", "26743"), ("monitor", "26743"), ("admin", "26743")]
        # One invite per roster person; the vacant post's and the admin's name nobody.
        assert [i["person"] for i in made["invites"]][8:] == [None, "Phạm Thị Dung",
                                                               "Hoàng Văn Em", None]
    codes = {i["code"] for i in first["invites"]} | {i["code"] for i in second["invites"]}
    assert len(codes) == 24
    listed = json.loads(cli("units", "list", "--json")[1])
    assert len(listed) == 1 + 1 + 3 + 6
    assert [u["code"] for u in listed[:4]] == ["79", "26743", "26743-KP1", "26743-KP1-T1"]
    assert {u["name"] for u in listed if u["level"] == "group"} == {"Tổ dân phố 1",
                                                                    "Tổ dân phố 2"}
    people = json.loads(cli("users", "list", "--json")[1])
    # Run twice, still one person per post: nobody is duplicated.
    assert len(people) == 10 and all(p["channels"] == [] for p in people)
    roster = json.loads(cli("people", "list", "--unit", "26743", "--json")[1])
    assert len(roster) == 9 and [e["unit"] for e in roster if e["person_id"] is None] == [
        "26743-KP3-T2"]


def test_demo_writes_the_invite_cards_of_its_people(cli_env: CliEnv, cli: Run,
                                                    telegram: TelegramDouble) -> None:
    cli_env.set("COSO_DATA_DIR", str(cli_env.tmp / "data"))
    assert demo_json(cli)["cards"] is not None  # no Telegram: cards without QR codes
    cli_env.set("TELEGRAM_BOT_TOKEN", telegram.token)
    cli_env.set("TELEGRAM_API_BASE", telegram.base)
    made = demo_json(cli)
    assert made["cards"] == str(cli_env.tmp / "data" / "demo-invite-cards.pdf")
    people = {i["person"]: i["telegram_link"] for i in made["invites"] if i["person"]}
    assert len(people) == 10
    text = "".join(page.extract_text() for page in PdfReader(made["cards"]).pages)
    assert all(name in text for name in people) and "Tổ trưởng tổ dân phố" in text
    assert sorted(decoded_links(Path(made["cards"]))) == sorted(people.values())


def demo_json(cli: Run) -> dict[str, Any]:
    code, out, err = cli("demo", "--json")
    assert code == 0, err
    made: dict[str, Any] = json.loads(out)
    return made


def test_demo_text(cli_env: CliEnv, cli: Run) -> None:
    code, out, _ = cli("demo")
    assert code == 0
    assert out.startswith("Demo ward ready: Phường Bến Thành, Thành phố Hồ Chí Minh (26743)")
    assert out.count("Invite code: ") == 12
    assert "Unit: Khu phố 2, Phường Bến Thành, Thành phố Hồ Chí Minh (26743-KP2)" in out
    # Every invite is printed alike, the vacant post's and the admin's too.
    blocks = [block for block in out.split("\n\n") if "Invite code: " in block]
    assert len(blocks) == 12 and all("\nFor: " in b and "\nExpires: " in b and
                                     "\nZalo: send /start " in b for b in blocks)
    # The web chat has a field for the code: no /start line there.
    assert all("\nWeb chat (http://127.0.0.1:" in b and "in the invite code field" in b
               for b in blocks)
    assert "For: whoever takes the vacant post Tổ trưởng tổ dân phố" in out
    # A post holder's invite names the post, not the role it maps to; the admin's, the role.
    assert ("Post: Head of residential group, Tổ dân phố 1, Khu phố 1, Phường Bến Thành, "
            "Thành phố Hồ Chí Minh") in out
    assert out.count("Role: ") == 3 and "Role: administrator" in out  # staff, monitor, admin
    code, out, _ = cli("--lang", "vi", "demo")
    assert "Chức danh: Tổ trưởng tổ dân phố 1, Khu phố 1, Phường Bến Thành" in out
    assert "Chức danh: Trưởng khu phố 2, Phường Bến Thành" in out


def test_the_invite_cards_pdf_logs_nothing_at_info(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """`coso run` logs at INFO: fontTools' ~90 subsetting lines buried the invite codes."""
    from zoneinfo import ZoneInfo

    from bot import cards
    from bot.i18n import Translator

    logging.getLogger("fontTools.subset").setLevel(logging.NOTSET)  # as a fresh process
    caplog.set_level(logging.INFO)
    card = cards.Card("Võ Thị Hoa", "Tổ trưởng tổ dân phố", "Tổ dân phố 1", "ABCD2345", None)
    cards.write_pdf([card], Translator("vi", ZoneInfo("Asia/Ho_Chi_Minh")), tmp_path / "c.pdf")
    assert not [r for r in caplog.records if r.name.startswith("fontTools")]


def test_the_demo_digest_names_who_to_phone_once(cli_env: CliEnv, cli: Run) -> None:
    """Nobody of the demo has a chat yet: the digest names them under 📵 by post, and says
    once (not twice) that no unit has reported."""
    assert cli("demo")[0] == 0
    code, out, err = cli("digest", "--unit", "26743")
    assert code == 0, err
    assert "none of the 8 units has reported" in out
    assert "have not reported" not in out.replace("The 8 units that have not reported", "")
    assert "📵 8 post holders have not connected a chat yet" in out
    assert "• Khu phố 1 › Tổ dân phố 1 › Head of residential group: Võ Thị Hoa" in out
    assert "• Khu phố 3 › Tổ dân phố 2 › Head of residential group: vacant" in out
    # Its invented households and reports: the first digest has something to read.
    assert "🔴 2 urgent reports are open:" in out and "5 households on record" in out
    assert cli("demo")[0] == 0  # again: the same households, not twice as many
    assert "5 households on record" in cli("digest", "--unit", "26743")[1]


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Settings]]:
    """bot.app with a serve() that records its settings and returns at once."""
    served: list[Settings] = []

    async def serve(settings: Settings) -> None:
        served.append(settings)

    module = types.ModuleType("bot.app")
    module.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.app", module)
    yield served


def test_run_with_demo_if_empty(cli_env: CliEnv, cli: Run, fake_app: list[Settings]) -> None:
    code, out, _ = cli("run", "--demo-if-empty")
    assert code == 0
    assert out.startswith("The database had no units, so a demo ward was built.")
    assert out.count("Invite code: ") == 12
    assert len(fake_app) == 1 and fake_app[0].database_url == cli_env.url
    code, out, _ = cli("run", "--demo-if-empty")
    assert (code, out) == (0, "")
    assert len(fake_app) == 2


def test_run_without_demo(migrated: CliEnv, cli: Run, fake_app: list[Settings]) -> None:
    assert cli("run") == (0, "", "")
    assert len(fake_app) == 1
    assert json.loads(cli("units", "list", "--json")[1]) == []


def test_run_reports_a_taken_port_in_one_line(migrated: CliEnv, cli: Run,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    async def serve(settings: Settings) -> None:
        raise OSError(98, "address already in use")

    module = types.ModuleType("bot.app")
    module.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.app", module)
    code, _, err = cli("run")
    assert (code, err.strip()) == (1, "coso: the bot stopped: [Errno 98] address already in use")
