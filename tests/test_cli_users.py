"""`coso users list | deactivate`."""
# ruff: noqa: F401, F811 - fixtures come from tests.cli_fixtures by import, so they
# stay local to these modules instead of joining the shared conftest.

from __future__ import annotations

import json

import pytest

from storage import people, units
from storage.db import Database
from storage.models import Person
from tests.cli_fixtures import CliEnv, Run, cli, cli_env, migrated


@pytest.fixture
def staffed(migrated: CliEnv) -> CliEnv:
    """Two people: a quarter leader on Zalo and Telegram, and ward staff with no chat yet."""
    async def work(db: Database) -> None:
        async with db.transaction() as session:
            ward = await units.upsert(session, "26743", "Phường Bến Thành", "ward", None)
            quarter = await units.upsert(session, "26743-KP1", "Khu phố 1", "quarter", ward)
            an, binh = Person(full_name="Nguyễn Văn An"), Person(full_name="Trần Thị Bình")
            session.add_all([an, binh])
            await session.flush()
            await people.assign(session, an, quarter, "leader")
            await people.assign(session, binh, ward, "ward_staff")
            for channel, external in (("zalo", "z1"), ("telegram", "t1")):
                account = await people.account_for(session, channel, external)
                account.person_id = an.id
    migrated.query(work)
    return migrated


def test_users_list_json(staffed: CliEnv, cli: Run) -> None:
    code, out, _ = cli("users", "list", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"id": 1, "name": "Nguyễn Văn An", "roles": [{"role": "leader", "unit": "26743-KP1"}],
         "channels": ["telegram", "zalo"], "active": True},
        {"id": 2, "name": "Trần Thị Bình", "roles": [{"role": "ward_staff", "unit": "26743"}],
         "channels": [], "active": True},
    ]


def test_users_list_text(staffed: CliEnv, cli: Run) -> None:
    code, out, _ = cli("users", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "Name", "Roles", "Channels", "Active"]
    assert "leader (head of a quarter, hamlet or residential group) at 26743-KP1" in lines[1]
    assert lines[1].split()[-3:] == ["telegram,", "zalo", "yes"]
    assert lines[2].split()[-6:] == ["ward", "staff", "at", "26743", "-", "yes"]


def test_users_list_text_in_vietnamese(staffed: CliEnv, cli: Run) -> None:
    """Roles as chat names them, never the keys (`leader@...`): those stay in --json."""
    code, out, _ = cli("--lang", "vi", "users", "list")
    assert code == 0
    assert "trưởng khu phố, ấp hoặc tổ dân phố tại 26743-KP1" in out
    assert "cán bộ phường tại 26743" in out
    assert "leader" not in out and "ward_staff" not in out and "@" not in out


def test_deactivate(staffed: CliEnv, cli: Run) -> None:
    code, out, _ = cli("users", "deactivate", "1")
    assert (code, out.strip()) == (0, "Person 1 deactivated: their roles have ended.")
    assert "Nguyễn" not in out
    assert [p["id"] for p in json.loads(cli("users", "list", "--json")[1])] == [2]
    everyone = json.loads(cli("users", "list", "--json", "--all")[1])
    assert everyone[0]["active"] is False and everyone[0]["roles"] == []
    code, out, _ = cli("users", "deactivate", "1")
    assert (code, out.strip()) == (0, "Person 1 was already deactivated.")


def test_deactivate_unknown(staffed: CliEnv, cli: Run) -> None:
    code, _, err = cli("users", "deactivate", "42")
    assert (code, err.strip()) == (1, "coso: no person with id 42")
    assert cli("users", "deactivate", "x")[0] == 2


def test_users_list_empty(migrated: CliEnv, cli: Run) -> None:
    code, out, _ = cli("users", "list")
    assert code == 0 and "Nobody has joined yet" in out
    assert json.loads(cli("users", "list", "--json")[1]) == []
