"""Engines and transactions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ColumnProperty
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.dml import Update

from storage import sqlite_connection
from storage.private import private_file

# session.info key where storage code notes which channels got outbox rows in this transaction.
OUTBOX_CHANNELS = "outbox_channels"

# session.info key: rows to insert with Core just before the commit, {table: [values, ...]},
# in the order they were queued (storage.outbox.reply): one executemany per table instead of
# the ORM's unit of work building, flushing and refreshing an object per row.
PENDING_ROWS = "pending_rows"

CommitHook = Callable[[set[str]], None]

# SQLite: a checkpoint after this many write transactions (Database.checkpoint). A report
# turn writes ~12 WAL frames, so the WAL stays within about twice SQLite's own default of
# 1,000 pages.
CHECKPOINT_EVERY = 150

# aiosqlite logs every statement with its parameters at DEBUG: names and notes (Decree
# 13/2023/ND-CP) would reach the log of anyone who turns on COSO_LOG_LEVEL=DEBUG.
logging.getLogger("aiosqlite").setLevel(logging.INFO)
log = logging.getLogger(__name__)

# How long a SQLite write waits for another process's lock before "database is locked".
# A module setting so the fault drills (tests/test_faults.py) can make the wait short.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# SQLite's own words for a database that cannot take a write now but may later: another
# process holds the lock, the file or the disk refuses writes, the disk is full. Fixed
# strings from SQLite, so they can be logged: they never quote what was written.
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked",
                       "attempt to write a readonly database", "disk i/o error",
                       "unable to open database file", "database or disk is full")
# asyncpg raises these itself (not wrapped) while connecting to a server that is starting
# up, shutting down or full.
_PG_UNAVAILABLE = {"CannotConnectNowError", "TooManyConnectionsError", "AdminShutdownError",
                   "CrashShutdownError", "ConnectionDoesNotExistError"}


def unavailable(exc: BaseException) -> str | None:
    """A short, loggable reason when `exc` means the database could not do the work now
    (unreachable, restarting, locked, refusing writes), so trying again later may succeed;
    None for anything else (a bug or bad data: trying again gives the same error)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:  # the server closed the connection mid-way
            return "connection to the database lost"
        message = str(exc.orig).lower()
        return next((known for known in _SQLITE_UNAVAILABLE if known in message), None)
    if isinstance(exc, ConnectionError | TimeoutError) or (
            isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)):
        return f"database unreachable ({type(exc).__name__})"  # refused, reset, timed out
    if type(exc).__name__ in _PG_UNAVAILABLE:
        return f"database unavailable ({type(exc).__name__})"
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Our own BEGIN (below) instead of the driver's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_MS)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # No checkpoint inside a COMMIT: an inline one (a turn's) would copy the WAL into the
    # file and fsync on the event loop's thread. Database.checkpoint does it apart.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
    driver = getattr(dbapi_connection, "_connection", None)
    if isinstance(driver, sqlite_connection.Connection):
        driver.busy_timeout_ms = int(SQLITE_BUSY_TIMEOUT_MS)


def _sqlite_begin(conn: Connection) -> None:
    # A write transaction takes the lock up front; a deferred one that upgrades later can
    # fail at once with "database is locked" when another process writes.
    options = conn.get_execution_options()
    immediate = options.get("coso_write", False)
    if options.get("coso_inline", False):
        driver = conn.connection.driver_connection
        if isinstance(driver, sqlite_connection.Connection):
            driver.inline_wanted = True
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def private_sqlite_file(url: str) -> None:
    """The database file 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
    database file's mode, so they follow; ones left by an older version are fixed here too."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        for companion in (path, path.with_name(f"{path.name}-wal"),
                          path.with_name(f"{path.name}-shm")):
            if companion is path or companion.exists():
                private_file(companion)
    except OSError:
        return  # a missing or read-only folder: SQLite's own error on connect says it better


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # Error messages then carry no bound values: they would put names and notes in the logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        if make_url(url).get_driver_name() == "aiosqlite":  # one thread hop per statement
            kwargs["connect_args"] = {"async_creator_fn": sqlite_connection.connect,
                                      **kwargs.get("connect_args", {})}
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # Up to 30 connections, all kept open. A turn holds one for its whole transaction and up
    # to 64 chats are handled at once (bot/channels/intake.py); with 10 kept and 20
    # "overflow" ones, every overflow connection was closed when handed back and opened anew
    # for the next turn (TLS attempt, settings, every statement prepared again): on the
    # webhook under load, 8.0 -> 5.9 ms of CPU per update and 115 -> 172 updates/s
    # (docs/performance.md, 2026-12-06). A turn beyond 30 waits for a free connection.
    kwargs.setdefault("pool_size", 30)
    kwargs.setdefault("max_overflow", 0)
    # No ping before each checkout: it is a round trip per transaction (5.8% of the bot's
    # samples on the hot path, docs/performance.md). A connection the server dropped fails
    # its first statement instead; SQLAlchemy then invalidates the whole pool, and that one
    # unit of work is answered "not now" (a 503 Telegram delivers again, a send or a job
    # retried) as any other outage is (tests/test_faults.py).
    kwargs.setdefault("pool_pre_ping", False)
    # asyncpg prepares every statement; from a statement's sixth run PostgreSQL may switch to
    # a generic plan blind to the values, and for a ward's IN (...) of unit ids that plan
    # was 20x slower (the digest's directive count: 3.5 ms → 74 ms, docs/performance.md).
    # A custom plan costs well under a millisecond of planning.
    kwargs.setdefault("connect_args", {"server_settings": {"plan_cache_mode": "force_custom_plan"}})
    return create_async_engine(url, **kwargs)


# One UPDATE per (table, columns written), built once: write_changes runs it with the values.
_UPDATES: dict[tuple[Table, tuple[str, ...]], Update] = {}
_KEY = "coso_row_key"  # the bound primary key's name in those UPDATEs (no column's name)


async def write_changes(session: AsyncSession, row: object) -> None:
    """Write a loaded row's changed columns now, with one Core UPDATE by its primary key, as
    the ORM's flush would, without its unit of work (per turn, the conversation's step and the
    account's flood count: docs/performance.md, hot path). The row is then clean: a later
    flush writes only what changes after this. A row not yet inserted, or one whose
    relationships changed, is flushed by the ORM instead (with whatever else is pending, as
    an autoflush would: flushing one object alone is deprecated in SQLAlchemy 2)."""
    state = inspect(row)
    if not state.committed_state:
        return
    mapper = state.mapper
    table = mapper.local_table
    columns: dict[str, Any] = {}
    for key in state.committed_state:
        prop = mapper.attrs.get(key)
        if (not state.persistent or not isinstance(prop, ColumnProperty)
                or len(prop.columns) != 1 or prop.columns[0].table is not table
                or prop.columns[0].primary_key or len(mapper.primary_key) != 1):
            await session.flush()
            return
        columns[prop.columns[0].key] = state.dict[key]
    names = tuple(sorted(columns))
    statement = _UPDATES.get((table, names))
    if statement is None:
        key_column = mapper.primary_key[0]
        statement = _UPDATES[(table, names)] = (
            table.update().where(key_column == bindparam(_KEY))
            .values({name: bindparam(f"set_{name}") for name in names}))
    values = {f"set_{name}": value for name, value in columns.items()}
    values[_KEY] = state.identity[0]
    # On the connection: session.execute() would first autoflush this very row.
    connection = await session.connection()
    result = await connection.execute(statement, values)
    if result.rowcount != 1:  # as the ORM's flush: the row went away under us
        raise StaleDataError(f"UPDATE of {table.name} matched {result.rowcount} rows, not 1")
    state._commit_all(state.dict, session.sync_session.identity_map)


class Database:
    """One engine, and the two ways code touches it: a read, or a transaction that writes."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.is_sqlite = url.startswith("sqlite")
        # SQLite has one writer; queueing writers here beats spinning in its busy handler.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._commit_hooks: list[CommitHook] = []
        self._commits = 0  # SQLite write transactions since the last checkpoint
        self._checkpointing: asyncio.Task[None] | None = None

    def on_commit(self, hook: CommitHook) -> None:
        """Call hook(channels) after each transaction that queued outbox messages."""
        self._commit_hooks.append(hook)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self, *, inline: bool = False) -> AsyncIterator[AsyncSession]:
        """Everything inside commits together or not at all; then the senders are woken.

        inline=True (SQLite; a turn, the sender's claims and marks): a short transaction
        whose statements, once it holds the write lock, run on the event loop's thread
        instead of a hop each to aiosqlite's (storage.sqlite_connection). Only for work
        made of a few small statements: while one runs, the loop does nothing else."""
        if self._write_lock is None:
            async with self._transaction(inline) as session:
                yield session
            return
        async with self._write_lock, self._transaction(inline) as session:
            yield session
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._checkpointing is None:
            self._commits = 0
            self._checkpointing = asyncio.create_task(self.checkpoint())

    async def checkpoint(self) -> None:
        """Copy the WAL's committed pages into the database file (SQLite), on aiosqlite's
        thread and outside the write lock: PASSIVE waits for no reader or writer, and the
        WAL starts over once a checkpoint has taken all of it. It replaces SQLite's own
        checkpoint at 1,000 pages, which ran inside whichever COMMIT crossed that size."""
        try:
            async with self.engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver = raw.driver_connection
                assert isinstance(driver, sqlite_connection.Connection)
                # Its answer is a row: read, or the statement stays open on the connection
                # and the next transaction's COMMIT on it is refused.
                async with driver.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
                    await cursor.fetchall()
        except Exception as exc:  # the next one tries again; nothing is lost meanwhile
            log.warning("WAL checkpoint failed: %s", unavailable(exc) or type(exc).__name__)
        finally:
            self._checkpointing = None

    @asynccontextmanager
    async def _transaction(self, inline: bool = False) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            options: dict[str, Any] = {"coso_write": True}
            if inline and self.is_sqlite:
                options["coso_inline"] = True
            await session.connection(execution_options=options)
            try:
                yield session
                pending: dict[Table, list[dict[str, Any]]] = session.info.pop(PENDING_ROWS, {})
                if pending:
                    await session.flush()  # the ORM's rows first, as they were queued first
                    connection = await session.connection()
                    for table, rows in pending.items():
                        await connection.execute(table.insert(), rows)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            channels: set[str] = session.info.get(OUTBOX_CHANNELS, set())
        if channels:
            for hook in self._commit_hooks:
                hook(channels)

    async def dispose(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
        await self.engine.dispose()
