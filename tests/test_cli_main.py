"""The `coso` entry point: help everywhere, bad settings, and the real console script."""
# ruff: noqa: F401, F811 - fixtures come from tests.cli_fixtures by import, so they
# stay local to these modules instead of joining the shared conftest.

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_fixtures import CliEnv, Run, cli, cli_env

COMMANDS = [
    [], ["db"], ["db", "upgrade"], ["units"], ["units", "import"],
    ["units", "import-official"], ["units", "list"], ["invite"], ["invite", "create"],
    ["invite", "revoke"], ["users"], ["users", "list"], ["users", "deactivate"], ["demo"],
    ["run"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "coso")
def test_help_everywhere(cli_env: CliEnv, cli: Run, command: list[str]) -> None:
    # cli_env: COSO_DEFAULT_LOCALE=en (the Vietnamese help is in tests/test_cli_help.py)
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert out.startswith("usage: coso")


def test_no_command_is_a_usage_error(cli_env: CliEnv, cli: Run) -> None:
    code, _, err = cli()
    assert code == 2 and "usage: coso" in err
    assert cli("units")[0] == 2


@pytest.mark.parametrize(("name", "value", "message"), [
    ("COSO_TIMEZONE", "Mars/Olympus", "coso: COSO_TIMEZONE: "),
    ("COSO_DATABASE_URL", "mysql://x", "coso: COSO_DATABASE_URL: "),
    ("COSO_DEFAULT_LOCALE", "fr", "coso: COSO_DEFAULT_LOCALE: "),
])
def test_bad_setting(cli_env: CliEnv, cli: Run, name: str, value: str, message: str) -> None:
    cli_env.set(name, value)
    code, out, err = cli("units", "list")
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize(("name", "value", "english", "vietnamese"), [
    ("COSO_WEB_PORT", "abc", "COSO_WEB_PORT: must be a whole number, not “abc”",
     "COSO_WEB_PORT: phải là số nguyên, không phải “abc”"),
    ("COSO_WEB_PORT", "70000", "COSO_WEB_PORT: must be at most 65535",
     "COSO_WEB_PORT: phải từ 65535 trở xuống"),
    ("COSO_TIMEZONE", "Asia/Saigonx",
     "COSO_TIMEZONE: unknown time zone “Asia/Saigonx” (e.g. Asia/Ho_Chi_Minh)",
     "COSO_TIMEZONE: không có múi giờ “Asia/Saigonx” (ví dụ Asia/Ho_Chi_Minh)"),
    ("COSO_CHECK_IN_AT", "25:00",
     "COSO_CHECK_IN_AT: must be a time HH:MM (e.g. 16:00), not “25:00”",
     "COSO_CHECK_IN_AT: phải là giờ dạng HH:MM (ví dụ 16:00), không phải “25:00”"),
    ("COSO_SCHEDULER", "maybe",
     "COSO_SCHEDULER: must be true or false (also 1/0, yes/no, on/off), not “maybe”",
     "COSO_SCHEDULER: phải là true hoặc false (hoặc 1/0, yes/no, on/off), không phải “maybe”"),
    ("TELEGRAM_RATE_PER_SECOND", "fast", "TELEGRAM_RATE_PER_SECOND: must be a number, not “fast”",
     "TELEGRAM_RATE_PER_SECOND: phải là số, không phải “fast”"),
    ("COSO_EVENT_LOOP", "trio", "COSO_EVENT_LOOP: must be one of auto, asyncio, uvloop, not “trio”",
     "COSO_EVENT_LOOP: phải là một trong auto, asyncio, uvloop, không phải “trio”"),
    # A check across fields names the variable it is about, not the one set.
    ("TELEGRAM_WEBHOOK_URL", "https://bot.example.vn/tg",
     "TELEGRAM_WEBHOOK_SECRET: required when TELEGRAM_WEBHOOK_URL is set",
     "TELEGRAM_WEBHOOK_SECRET: bắt buộc khi đã đặt TELEGRAM_WEBHOOK_URL"),
])
def test_a_bad_setting_is_one_line_in_the_persons_language(
        cli_env: CliEnv, cli: Run, name: str, value: str, english: str,
        vietnamese: str) -> None:
    """Not pydantic's English ("Input should be a valid integer, ..."), and no "Value
    error, " prefix: the variable, then what is wrong, from the catalogs."""
    cli_env.set(name, value)
    assert cli("doctor") == (2, "", f"coso: {english}\n")  # COSO_DEFAULT_LOCALE=en
    assert cli("--lang", "vi", "doctor") == (2, "", f"coso: {vietnamese}\n")
    cli_env.monkeypatch.delenv("COSO_DEFAULT_LOCALE")  # Vietnamese by default
    code, out, err = cli("units", "list")
    assert (code, out, err) == (2, "", f"coso: {vietnamese}\n")
    assert "Value error" not in err and "Input should" not in err


def test_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("coso")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSO_", "TELEGRAM_"))}
    done = subprocess.run([str(script), "invite", "create", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "--expires" in done.stdout
    env["COSO_TIMEZONE"] = "Mars/Olympus"
    done = subprocess.run([str(script), "units", "list"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("coso: COSO_TIMEZONE: ")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


# What only some commands use, ~1.9 s to import together: `coso --help` and the light
# commands paid it all at every start before (docs/performance.md, "CLI start-up").
HEAVY = ("matplotlib", "openpyxl", "fpdf", "PIL", "segno", "numpy", "alembic", "aiohttp",
         "aiogram", "vietnam_provinces")
PROBE = """
import sys
from bot.cli import main
code = main(sys.argv[1:])
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("command", [["--help"], ["units", "list"], ["users", "list"],
                                     ["report", "list", "--unit", "X"]], ids=" ".join)
def test_a_light_command_imports_no_heavy_library(tmp_path: Path, command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSO_", "TELEGRAM_"))}
    env["COSO_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'coso.db'}"
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *command],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.stdout.splitlines()[-1] == "LOADED []", done.stderr

