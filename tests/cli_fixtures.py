"""Fixtures for the `coso` command-line tests (imported by tests/test_cli_*.py, which
use `from tests.cli_fixtures import ...` so the fixtures stay out of the shared conftest).

- `cli_env`: a clean environment (temp SQLite file, English, no Telegram token, own cwd).
- `cli`: run `coso ...` in-process and get (exit code, stdout, stderr).
- `store`: a migrated storage Database, on SQLite and (when COSO_TEST_POSTGRES_URL is set)
  on a PostgreSQL database of our own, created for the session and dropped after it.
- `telegram`: a tiny Bot API double on 127.0.0.1 that answers getMe.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.cli import main
from bot.settings import get_settings
from storage import migrate
from storage.db import Database
from storage.models import Base

T = TypeVar("T")
PG_ENV = "COSO_TEST_POSTGRES_URL"
CLEARED_ENV = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE", "COSO_TIMEZONE", "COSO_WEB_PORT",
               "COSO_INVITE_EXPIRY_DAYS", "ZALO_BOT_TOKEN")


@dataclass
class CliEnv:
    url: str
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    def set(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    def migrate(self) -> None:
        migrate.upgrade(self.url)

    def query(self, work: Callable[[Database], Awaitable[T]]) -> T:
        """Run `work` on the test database from a synchronous test."""
        async def run() -> T:
            db = Database(self.url)
            try:
                return await work(db)
            finally:
                await db.dispose()
        return asyncio.run(run())


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliEnv]:
    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    monkeypatch.setenv("COSO_DATABASE_URL", url)
    monkeypatch.setenv("COSO_DEFAULT_LOCALE", "en")
    get_settings.cache_clear()
    yield CliEnv(url, tmp_path, monkeypatch)
    get_settings.cache_clear()


@pytest.fixture
def migrated(cli_env: CliEnv) -> CliEnv:
    cli_env.migrate()
    return cli_env


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


# --- storage on SQLite and PostgreSQL --------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own on the shared server, for the whole session."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url = make_url(base).set(database=f"coso_cli_test_{os.getpid()}")
    admin = make_url(base).set(drivername="postgresql", database="postgres")
    name = url.database
    asyncio.run(_pg_admin(admin.render_as_string(hide_password=False),
                          f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    rendered = url.render_as_string(hide_password=False)
    try:
        migrate.upgrade(rendered)
        yield rendered
    finally:
        asyncio.run(_pg_admin(admin.render_as_string(hide_password=False),
                              f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_admin(dsn: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Synchronous on purpose: migrations and CREATE DATABASE run their own event loop."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    migrate.upgrade(url)
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Database]:
    db = Database(store_url)
    if not db.is_sqlite:
        await _empty_tables(db)
    try:
        yield db
    finally:
        await db.dispose()


async def _empty_tables(db: Database) -> None:
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with db.transaction() as session:
        await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


# --- a Telegram Bot API double ---------------------------------------------------------------

@dataclass
class TelegramDouble:
    token: str = "123456:SECRET-token"
    username: str = "coso_test_bot"
    status: int = 200
    base: str = ""
    calls: list[str] = field(default_factory=list)

    async def get_me(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        if request.match_info["token"] != self.token or self.status != 200:
            status = self.status if self.status != 200 else 401
            return web.json_response({"ok": False, "description": "Unauthorized"},
                                     status=status)
        return web.json_response({"ok": True, "result": {
            "id": 123456, "is_bot": True, "first_name": "Coso", "username": self.username}})


@pytest.fixture
def telegram() -> Iterator[TelegramDouble]:
    double = TelegramDouble()
    app = web.Application()
    app.router.add_get("/bot{token}/getMe", double.get_me)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = _port(site)
    double.base = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def _port(site: Any) -> int:
    server = site._server  # aiohttp keeps the listening sockets here
    return int(server.sockets[0].getsockname()[1])
