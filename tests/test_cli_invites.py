"""`coso invite create | revoke`, with and without a Telegram bot to link to."""
# ruff: noqa: F401, F811 - fixtures come from tests.cli_fixtures by import, so they
# stay local to these modules instead of joining the shared conftest.

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import Translator
from storage import invites, units
from storage.db import Database
from storage.models import Person
from tests.cli_fixtures import (
    CliEnv,
    Run,
    TelegramDouble,
    cli,
    cli_env,
    migrated,
    telegram,
)

CITY = "Thành phố Hồ Chí Minh"


@pytest.fixture
def ward(migrated: CliEnv) -> CliEnv:
    async def work(db: Database) -> None:
        async with db.transaction() as session:
            city = await units.upsert(session, "79", CITY, "province", None)
            await units.upsert(session, "26743", "Phường Bến Thành", "ward", city)
    migrated.query(work)
    return migrated


def create_json(cli: Run, *extra: str) -> tuple[list[dict[str, object]], str]:
    code, out, err = cli("invite", "create", "--unit", "26743", "--json", *extra)
    assert code == 0, err
    return json.loads(out), err


def test_create_json_shape_and_expiry(ward: CliEnv, cli: Run) -> None:
    before = datetime.now(UTC)
    made, err = create_json(cli, "--role", "leader", "--count", "2", "--expires", "12h")
    assert len(made) == 2 and made[0]["code"] != made[1]["code"]
    first = made[0]
    assert set(first) == {"code", "unit", "unit_path", "role", "person", "expires_at",
                          "telegram_link", "start_command"}
    assert first["unit"] == "26743"
    assert first["unit_path"] == f"Phường Bến Thành, {CITY}"
    assert first["role"] == "leader"
    assert first["telegram_link"] is None
    assert first["start_command"] == f"/start {first['code']}"
    expires = datetime.fromisoformat(str(first["expires_at"]))
    assert expires.utcoffset() == timedelta(hours=7)  # shown in COSO_TIMEZONE
    assert before + timedelta(hours=12) <= expires <= datetime.now(UTC) + timedelta(hours=12)
    assert "Telegram link unavailable: TELEGRAM_BOT_TOKEN is not set" in err


def test_default_expiry_comes_from_settings(ward: CliEnv, cli: Run) -> None:
    ward.set("COSO_INVITE_EXPIRY_DAYS", "3")
    made, _ = create_json(cli, "--role", "monitor")
    expires = datetime.fromisoformat(str(made[0]["expires_at"]))
    assert timedelta(days=3) - timedelta(minutes=1) < expires - datetime.now(UTC) <= \
        timedelta(days=3)


def test_create_text_output(ward: CliEnv, cli: Run) -> None:
    ward.set("COSO_TIMEZONE", "Asia/Bangkok")
    code, out, _ = cli("invite", "create", "--unit", "26743", "--role", "ward_staff",
                       "--expires", "7d")
    assert code == 0
    invite_code = out.split("Invite code: ")[1].split()[0]
    assert f"Unit: Phường Bến Thành, {CITY} (26743)" in out
    assert "Role: ward staff" in out
    assert "Telegram link unavailable: TELEGRAM_BOT_TOKEN is not set" in out
    assert f"send /start {invite_code}" in out
    expires = stored_expiry(ward, invite_code)
    shown = Translator("en", ZoneInfo("Asia/Bangkok")).datetime(expires)
    assert f"Expires: {shown}" in out


def stored_expiry(env: CliEnv, code: str) -> datetime:
    async def work(db: Database) -> datetime:
        async with db.read() as session:
            invite = await invites.find(session, code)
            assert invite is not None
            return invite.expires_at
    return env.query(work)


def test_telegram_deep_link_from_get_me(ward: CliEnv, cli: Run,
                                        telegram: TelegramDouble) -> None:
    ward.set("TELEGRAM_BOT_TOKEN", telegram.token)
    ward.set("TELEGRAM_API_BASE", telegram.base)
    made, err = create_json(cli, "--role", "admin")
    assert made[0]["telegram_link"] == f"https://t.me/coso_test_bot?start={made[0]['code']}"
    assert telegram.calls == [f"/bot{telegram.token}/getMe"]
    assert err == ""
    code, out, _ = cli("invite", "create", "--unit", "26743", "--role", "admin")
    assert "Telegram: https://t.me/coso_test_bot?start=" in out


def test_telegram_failure_is_explained_without_the_token(ward: CliEnv, cli: Run,
                                                         telegram: TelegramDouble) -> None:
    ward.set("TELEGRAM_BOT_TOKEN", "999:WRONG-secret")
    ward.set("TELEGRAM_API_BASE", telegram.base)
    code, out, _ = cli("invite", "create", "--unit", "26743", "--role", "leader")
    assert code == 0
    assert "Telegram link unavailable: Telegram answered getMe with HTTP 401" in out
    assert "WRONG-secret" not in out
    ward.set("TELEGRAM_API_BASE", "http://127.0.0.1:9")  # nothing listens on the discard port
    code, out, err = cli("invite", "create", "--unit", "26743", "--role", "leader", "--json")
    assert code == 0 and json.loads(out)[0]["telegram_link"] is None
    assert "could not reach Telegram" in err and "WRONG-secret" not in err


def test_create_errors(ward: CliEnv, cli: Run) -> None:
    code, _, err = cli("invite", "create", "--unit", "NOPE", "--role", "leader")
    assert (code, err.strip()) == (1, "coso: unknown unit NOPE")
    assert cli("invite", "create", "--unit", "26743", "--role", "king")[0] == 2
    code, _, err = cli("invite", "create", "--unit", "26743", "--role", "leader",
                       "--expires", "soon")
    assert code == 2 and "7d, 12h or 30m" in err
    assert cli("invite", "create", "--unit", "26743", "--role", "leader", "--count", "0")[0] == 2


def test_revoke(ward: CliEnv, cli: Run) -> None:
    made, _ = create_json(cli, "--role", "leader", "--count", "2")
    first, second = str(made[0]["code"]), str(made[1]["code"])
    code, out, _ = cli("invite", "revoke", first.lower())
    assert (code, out.strip()) == (0, f"Invite {first} revoked.")
    code, out, _ = cli("invite", "revoke", first)
    assert (code, out.strip()) == (0, f"Invite {first} was already revoked.")
    code, _, err = cli("invite", "revoke", "ZZZZ2222")
    assert (code, err.strip()) == (1, "coso: unknown invite code ZZZZ2222")
    redeem(ward, second)
    code, _, err = cli("invite", "revoke", second)
    assert code == 1 and "already used" in err


def redeem(env: CliEnv, code: str) -> None:
    async def work(db: Database) -> None:
        async with db.transaction() as session:
            person = Person(full_name="Nguyễn Văn An")
            session.add(person)
            await session.flush()
            await invites.redeem(session, code, person.id)
    env.query(work)
