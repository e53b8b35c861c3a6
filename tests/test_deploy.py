"""docs/deploy.md and deploy/: the unit files pass `systemd-analyze verify`, every `coso`
command in the guide parses, and the pg_dump / pg_restore commands `coso backup` and
`coso restore` print for PostgreSQL really back up and restore the database."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot.cli import build_parser
from bot.settings import Settings, load_settings
from storage.db import Database
from storage.models import Invite, Unit
from tests.conftest import Coso, seed_ward

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
# Lines that name the service `coso` or the user, not the command.
NOT_COSO = {"systemctl", "journalctl", "adduser", "install", "cp", "ln"}
UNITS = ("coso.service", "coso@.service", "coso-pgdump.service", "coso-pgdump.timer")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install -y systemd)")
def test_unit_files_verify(tmp_path: Path) -> None:
    coso = Path(sys.executable).parent / "coso"  # verify wants ExecStart's binary to exist
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace("/opt/coso/venv/bin/coso", str(coso))
        (tmp_path / name).write_text(text)
    targets = [str(tmp_path / ("coso@8081.service" if n == "coso@.service" else n))
               for n in UNITS]
    done = subprocess.run(["systemd-analyze", "verify", *targets], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line
            or "coso" in line]
    assert ours == []  # not even a warning (systemd ignores a bad line with a warning only)


def test_the_unit_is_what_the_guide_says() -> None:
    unit = (DEPLOY / "coso.service").read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=always", "User=coso",
                 "UMask=0077", "ExecStart=/opt/coso/venv/bin/coso run"):
        assert f"\n{line}\n" in unit, line


def guide_commands() -> list[list[str]]:
    """Every `coso ...` invocation in the guide's shell blocks, as argv after `coso`."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.S):
        for line in block.splitlines():
            words = shlex.split(line.split(" #")[0])
            if not words or words[0] in NOT_COSO:
                continue
            for index, word in enumerate(words[:-1]):
                if (word == "coso" and words[index - 1] != "-u") or word.endswith("/bin/coso"):
                    found.append(words[index + 1:])
                    break
    return found


def test_every_coso_command_in_the_guide_parses() -> None:
    commands = guide_commands()
    assert len(commands) >= 9
    subcommands = {argv[0] for argv in commands}
    assert {"db", "doctor", "backup", "restore"} <= subcommands
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)  # exits (fails the test) on a usage error
        assert callable(args.handler), argv


async def test_printed_pg_commands_back_up_and_restore(coso: Coso, db_url: str, db: Database,
                                                       tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's pg_dump; SQLite's backup is in test_ops_backup")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump / pg_restore are not installed (apt-get install postgresql-client)")
    seeded = await seed_ward(db)
    invites = len({code for key, code in seeded.codes.items() if key.count(":") == 2})
    dump = tmp_path / "city.dump"
    _, dump_command, _ = await coso("backup", "--to", str(dump))
    _, restore_command, _ = await coso("restore", str(dump))

    await asyncio.to_thread(subprocess.run, shlex.split(dump_command), check=True, timeout=120)
    async with db.transaction() as session:  # an accident after the backup
        await session.execute(delete(Invite))
        await session.execute(delete(Unit).where(Unit.code == "26734-KP2"))
    await db.dispose()
    await asyncio.to_thread(subprocess.run, shlex.split(restore_command), check=True,
                            timeout=120, capture_output=True)

    async with db.read() as session:
        assert await session.scalar(select(Unit).where(Unit.code == "26734-KP2")) is not None
        assert await session.scalar(select(func.count()).select_from(Invite)) == invites


def test_the_event_loop_is_uvloop_where_installed_and_asyncio_on_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """COSO_EVENT_LOOP: asyncio's own loop by default; auto takes uvloop when the `fast`
    extra is installed; uvloop asked for and missing stops `coso run` with one line."""
    from bot.cli.run import loop_factory
    from bot.settings import SettingsError, load_settings

    assert loop_factory(load_settings()) is None
    try:
        import uvloop
    except ImportError:
        assert loop_factory(load_settings(COSO_EVENT_LOOP="auto")) is None
    else:
        assert loop_factory(load_settings(COSO_EVENT_LOOP="auto")) is uvloop.new_event_loop
        assert loop_factory(load_settings(COSO_EVENT_LOOP="uvloop")) is uvloop.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it is not installed
    assert loop_factory(load_settings(COSO_EVENT_LOOP="auto")) is None
    with pytest.raises(SettingsError, match="uvloop is not installed"):
        loop_factory(load_settings(COSO_EVENT_LOOP="uvloop"))


SETTINGS = [str(field.alias) for field in Settings.model_fields.values()]


def test_every_setting_is_in_the_readme_table_and_the_env_example() -> None:
    """Before: COSO_EVENT_LOOP and the send rates (TELEGRAM_RATE_PER_SECOND...) were missing
    from the README's table, and the rates from .env.example."""
    table = {name for line in (ROOT / "README.md").read_text().splitlines()
             if line.startswith("| `") for name in re.findall(r"`([A-Z][A-Z0-9_]+)`",
                                                               line.split("|")[1])}
    example = (ROOT / ".env.example").read_text()
    assert [name for name in SETTINGS if name not in table] == []
    assert [name for name in SETTINGS if not re.search(rf"^#? ?{name}=", example, re.M)] == []


def test_the_service_env_example_names_real_settings_each_webhook_with_its_secret() -> None:
    lines = (DEPLOY / "coso.env.example").read_text().splitlines()
    names = [line.partition("=")[0] for line in lines if line and not line.startswith("#")]
    assert [name for name in names if name not in SETTINGS] == []
    assert {"COSO_EVENT_LOOP", "TELEGRAM_RATE_PER_SECOND"} <= set(names)
    for platform in ("TELEGRAM", "ZALO"):  # the secret right after its URL, with a comment
        at = names.index(f"{platform}_WEBHOOK_URL")
        assert names[at + 1] == f"{platform}_WEBHOOK_SECRET"
        secret = lines.index(f"{platform}_WEBHOOK_SECRET=")
        assert any(line.startswith(f"# Required with {platform}_WEBHOOK_URL")
                   for line in lines[secret - 2:secret])
    # As the service reads it, with the secrets filled in: settings that start.
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    values.update(TELEGRAM_WEBHOOK_SECRET="s3cret-hook", ZALO_WEBHOOK_SECRET="s3cret-hook")
    load_settings(_env_file=None, **{k: v for k, v in values.items() if v})
