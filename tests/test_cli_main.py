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
