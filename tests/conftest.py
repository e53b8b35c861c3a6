"""Shared fixtures: both databases, the bot started as in production, and seeded units.

PostgreSQL cases run when COSO_TEST_POSTGRES_URL is set (CI sets it) and are skipped with a
one-line reason otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text

from bot.app import Runtime
from bot.cli import main as cli_main
from bot.settings import Settings, get_settings, load_settings
from storage import invites, units
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import Base
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble


def _worker_postgres(base: str | None) -> str | None:
    """Under pytest-xdist (`make test` runs two workers) each worker empties the tables
    before every test, so each has a database of its own on the server: `test_gw0`, … made
    when missing."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not base or not worker:
        return base
    url = make_url(base)
    url = url.set(database=f"{url.database}_{worker}")
    admin = make_url(base).set(drivername="postgresql", database="postgres")
    asyncio.run(_ensure_database(admin.render_as_string(hide_password=False),
                                 str(url.database)))
    return url.render_as_string(hide_password=False)


async def _ensure_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_dsn)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


POSTGRES_URL = _worker_postgres(os.environ.get("COSO_TEST_POSTGRES_URL"))
_pg_ready = False
_sqlite_template: Path | None = None
# Seeded by the migrations: kept as migrated and put back after each test's truncation (a
# ward's own entries reference units, so truncating the units empties them; and a test may
# import its own catalogue).
CATALOGUES = ("report_categories", "support_policies", "drill_scenarios", "posts")
_seeded_catalogues: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        yield await migrated_sqlite(tmp_path / "coso.db", tmp_path_factory)
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL: COSO_TEST_POSTGRES_URL is not set")
    await _reset_postgres(POSTGRES_URL)
    yield POSTGRES_URL


async def migrated_sqlite(path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of a SQLite file migrated once per run: the same bytes `upgrade_async` writes,
    without running every migration again for each test (about 0.3 s each)."""
    global _sqlite_template
    if _sqlite_template is None:
        template = tmp_path_factory.mktemp("sqlite-template") / "coso.db"
        await upgrade_async(f"sqlite+aiosqlite:///{template}")
        with closing(sqlite3.connect(template)) as conn:  # everything in the file, no -wal
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _sqlite_template = template
    shutil.copy2(_sqlite_template, path)  # its mode too: 0600, as the bot makes it
    return f"sqlite+aiosqlite:///{path}"


async def _reset_postgres(url: str) -> None:
    """Migrate once per run, then empty every table before each test."""
    global _pg_ready
    db = Database(url)
    try:
        if not _pg_ready:
            async with db.engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await upgrade_async(url)
            async with db.engine.connect() as conn:
                for name in CATALOGUES:
                    found = await conn.execute(Base.metadata.tables[name].select())
                    _seeded_catalogues[name] = [dict(row) for row in found.mappings()]
            _pg_ready = True
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            for name in CATALOGUES:
                await conn.execute(Base.metadata.tables[name].insert(),
                                   _seeded_catalogues[name])
    finally:
        await db.dispose()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


Coso = Callable[..., Awaitable[tuple[int, str, str]]]
# Unset for `coso` runs, so the city defaults apply whatever the machine's environment says.
CLI_CLEARED_ENV = ("TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN", "COSO_TIMEZONE", "COSO_CHECK_IN_AT",
                   "COSO_REMINDER_AT", "COSO_DIGEST_AT", "COSO_WEEKDAYS_ONLY",
                   "COSO_ESCALATION_AFTER_MINUTES")


@pytest.fixture
def coso(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Coso:
    """`await coso("schedule", "show")`: the real command line against the test database, in
    a thread (it runs its own event loop), in English: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    for name in CLI_CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COSO_DATABASE_URL", db_url)
    monkeypatch.setenv("COSO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COSO_DEFAULT_LOCALE", "en")

    async def run(*argv: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        capsys.readouterr()
        code = await asyncio.to_thread(cli_main, list(argv))
        captured = capsys.readouterr()
        get_settings.cache_clear()
        return code, captured.out, captured.err

    return run


def make_settings(db_url: str, **overrides: Any) -> Settings:
    # A test answers far faster than a person types: flood control (bot/handlers/flood.py)
    # is off unless a test sets COSO_FLOOD_PER_MINUTE (tests/test_flood.py).
    values: dict[str, Any] = {"_env_file": None, "COSO_DATABASE_URL": db_url,
                              "COSO_WEB_PORT": 0, "TELEGRAM_BOT_TOKEN": None,
                              "ZALO_BOT_TOKEN": None, "COSO_SCHEDULER": False,
                              "COSO_FLOOD_PER_MINUTE": 1_000_000}
    values.update(overrides)
    return load_settings(**values)


@dataclass
class Seeded:
    """A small ward: province → ward → two quarters → a group, and fresh invite codes."""

    codes: dict[str, str] = field(default_factory=dict)  # "leader:KP1" → invite code
    unit_ids: dict[str, int] = field(default_factory=dict)


async def seed_ward(db: Database) -> Seeded:
    seeded = Seeded()
    async with db.transaction() as session:
        city = await units.upsert(session, "79", "Thành phố Hồ Chí Minh", "province", None)
        ward = await units.upsert(session, "26734", "Phường Bến Thành", "ward", city)
        other = await units.upsert(session, "26737", "Phường Sài Gòn", "ward", city)
        kp1 = await units.upsert(session, "26734-KP1", "Khu phố 1", "quarter", ward)
        kp2 = await units.upsert(session, "26734-KP2", "Khu phố 2", "quarter", ward)
        group = await units.upsert(session, "26734-KP1-T1", "Tổ dân phố 1", "group", kp1)
        kp_other = await units.upsert(session, "26737-KP1", "Khu phố 1", "quarter", other)
        plan = [("leader", kp1, "KP1"), ("leader", kp2, "KP2"), ("leader", group, "T1"),
                ("leader", kp_other, "OTHER"), ("ward_staff", ward, "WARD"),
                ("admin", city, "CITY"), ("monitor", ward, "WARD")]
        for role, unit, label in plan:
            for index in range(3):
                made = await invites.create(session, unit, role, timedelta(days=7))
                seeded.codes[f"{role}:{label}:{index}"] = made[0].code
            seeded.codes.setdefault(f"{role}:{label}", seeded.codes[f"{role}:{label}:0"])
        for unit in (city, ward, other, kp1, kp2, group, kp_other):
            seeded.unit_ids[unit.code] = unit.id
    return seeded


StartBot = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def start_bot(db_url: str, tmp_path: Path) -> AsyncIterator[StartBot]:
    """start_bot(**settings) starts a Runtime as `coso run` does; all are stopped after.
    COSO_DATA_DIR is the test's own (spools, charts), not the working tree's ./data."""
    started: list[Runtime] = []

    async def start(**overrides: Any) -> Runtime:
        overrides.setdefault("COSO_DATA_DIR", str(tmp_path / "data"))
        runtime = Runtime(make_settings(db_url, **overrides))
        await runtime.start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in reversed(started):
        await runtime.stop()


@pytest.fixture
async def tg() -> AsyncIterator[TelegramDouble]:
    """A Telegram Bot API double on 127.0.0.1 (point TELEGRAM_API_BASE at tg.base_url)."""
    async with TelegramDouble() as double:
        yield double


@pytest.fixture
async def zalo() -> AsyncIterator[ZaloDouble]:
    """A Zalo Bot API double on 127.0.0.1 (point ZALO_API_BASE at zalo.base_url)."""
    double = ZaloDouble()
    await double.start()
    yield double
    await double.stop()
