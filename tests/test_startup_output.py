"""What an operator sees when `coso run` starts and stops: the migrations it applied, one
line saying it runs, one saying it stops; no line per scheduler job, no warnings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent


def _clean_env(**values: str) -> dict[str, str]:
    """This environment without any Coso, Telegram or Zalo setting, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COSO_", "TELEGRAM_", "ZALO_"))}
    return {**env, **values}


def _start_and_stop(argv: list[str], env: dict[str, str], cwd: Path
                    ) -> tuple[subprocess.Popen[str], list[str]]:
    """Run the bot until it says it is running, stop it (SIGTERM); all it printed."""
    bot = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    assert bot.stdout is not None
    lines = []
    for line in bot.stdout:
        lines.append(line.rstrip())
        if "coso running" in line:
            break
    bot.send_signal(signal.SIGTERM)
    rest, _ = bot.communicate(timeout=60)
    return bot, lines + rest.splitlines()


def test_start_and_stop_say_little(tmp_path: Path) -> None:
    env = _clean_env(COSO_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'coso.db'}",
                     COSO_DATA_DIR=str(tmp_path / "data"), COSO_WEB_PORT="0",
                     # a warning hidden by the default filters would show
                     PYTHONWARNINGS="default")
    bot, lines = _start_and_stop([str(Path(sys.executable).parent / "coso"), "run"], env,
                                 tmp_path)

    assert bot.returncode == 0, "\n".join(lines)
    migrations = [line for line in lines if "Running upgrade" in line]
    others = [line for line in lines if line not in migrations]
    assert migrations, lines
    assert len(others) == 2, "\n".join(others)
    assert "coso running" in others[0] and "coso stopping" in others[1]


# Loaded only by the rare jobs that need them (a digest chart, an export, an invite card, a
# migration, the official unit list): each stays out of the running bot's RSS until then
# (docs/performance.md, "peak RSS").
RARE = ("matplotlib", "numpy", "openpyxl", "fpdf", "PIL", "segno", "alembic", "mako",
        "pygments", "vietnam_provinces")
PROBE = """
import sys
from bot.cli import main
code = main(["run"])
print("LOADED", sorted(m for m in {rare!r} if m in sys.modules), flush=True)
sys.exit(code)
"""


def test_the_running_bot_loads_no_library_of_a_rare_job(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'coso.db'}"
    upgrade(url)  # at the head already: the start has no migration to run
    env = _clean_env(COSO_DATABASE_URL=url, COSO_DATA_DIR=str(tmp_path / "data"),
                     COSO_WEB_PORT="0", PYTHONPATH=str(ROOT))
    bot, lines = _start_and_stop([sys.executable, "-c", PROBE.format(rare=RARE)], env,
                                 tmp_path)

    assert bot.returncode == 0, "\n".join(lines)
    assert "LOADED []" in lines, "\n".join(lines)
