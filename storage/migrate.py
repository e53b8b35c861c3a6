"""Alembic, driven from code so `coso db upgrade` needs no alembic.ini beside it."""

from __future__ import annotations

import ast
import asyncio
import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from storage.health import applied_revisions

# alembic is imported where a migration is run or looked up (~0.1-0.3 s, ~8 MB resident):
# not for `coso --help`, nor for a `coso run` whose database is at the code's revision.
if TYPE_CHECKING:
    from alembic.config import Config

    from storage.db import Database

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


async def upgrade_if_behind(db: Database, url: str) -> bool:
    """Upgrade to the code's head unless the database is there already (True: it upgraded).
    The usual `coso run` then loads no alembic: with Mako and Pygments it stayed resident
    (~8 MB of the bot's RSS, docs/performance.md) for a migration that had nothing to do."""
    async with db.read() as session:
        applied = await applied_revisions(session)
    if applied == set(current_heads()):
        return False
    await upgrade_async(url)
    return True


@cache
def current_heads() -> tuple[str, ...]:
    """The revisions the code's migrations end at (those no other one comes after), read
    once from the files' `revision` and `down_revision`, without alembic: `coso run` asks at
    every start and /readyz at every call. tests/test_migrations.py checks it against alembic."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        names = {node.targets[0].id: node.value
                 for node in ast.parse(path.read_text(encoding="utf-8")).body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
        revisions.add(ast.literal_eval(names["revision"]))
        down = ast.literal_eval(names["down_revision"])  # None, one revision, or a merge's
        followed.update([down] if isinstance(down, str) else down or ())
    return tuple(sorted(revisions - followed))


def known_revision(revision: str) -> bool:
    """A revision this code has a migration for (a backup newer than the code is not)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(
            revision) is not None
    except CommandError:
        return False
