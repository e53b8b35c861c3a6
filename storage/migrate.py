"""Alembic, driven from code so `coso db upgrade` needs no alembic.ini beside it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # alembic is imported where a migration is looked at (~0.1-0.3 s): not
    from alembic.config import Config  # for `coso --help` or the commands that need none

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class _ContextLines(logging.Filter):
    """Alembic says which dialect and DDL mode it uses at every start; only the migrations it
    runs ("Running upgrade 0003 -> 0004") are worth a line in the bot's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl", "Will assume"))


logging.getLogger("alembic.runtime.migration").addFilter(_ContextLines())
# Imported lazily (below), alembic now loads after `coso run` has set up logging, and says
# "setup plugin alembic.autogenerate..." at INFO for each of its plugins: not the operator's.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Run from inside an event loop: env.py runs its own loop, so give it a thread."""
    await asyncio.to_thread(upgrade, url, revision)


def current_heads() -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def known_revision(revision: str) -> bool:
    """A revision this code has a migration for (a backup newer than the code is not)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(
            revision) is not None
    except CommandError:
        return False
