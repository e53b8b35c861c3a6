"""aiosqlite connections with one thread hop per statement instead of four.

aiosqlite runs every call on the connection's own thread and wakes the event loop with its
result. SQLAlchemy's adapter makes four such calls per statement: make a cursor, execute,
fetch the rows, close the cursor; each hop costs both threads a wake-up and the GIL's
hand-over, and in `python -m bench load` the cursor's making and closing alone were 11% of
the bot's samples (docs/performance.md, hot path). Here a cursor is made and closed on the
event loop's thread (making one builds a Python object; closing one resets its finished
statement, under SQLite's own lock: the library is built serialized, sqlite3.threadsafety 3),
and the rows come back with the statement's execution, in its one hop. A rollback with no
transaction open (the pool's reset after every commit) makes no hop at all, and a BEGIN
waits for the transaction's first statement and goes to the thread with it, in its hop
(every transaction's BEGIN was a hop of its own: 1 of a turn's ~9). A short write
transaction that asked to run inline (a turn, the sender's claims and marks) makes no hop
at all while the write lock is free: its BEGIN IMMEDIATE, statements and COMMIT run on the
event loop's thread (Connection.begin_here, Connection.commit).

Used by storage.db.make_engine for SQLite through the dialect's async_creator_fn.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from functools import partial
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager

# An inline statement that took longer than this ends inline running for its transaction.
INLINE_SLOW_SECONDS = 0.005


def _run(cursor: sqlite3.Cursor, begin: str | None, sql: str, parameters: Any
         ) -> list[Any] | None:
    """On the connection's thread: the transaction's BEGIN when it waits for this statement,
    the statement, and its rows when it returns any."""
    if begin is not None:
        cursor.execute(begin)
    cursor.execute(sql, parameters)
    return cursor.fetchall() if cursor.description is not None else None


def _run_many(cursor: sqlite3.Cursor, begin: str | None, sql: str, parameters: Any) -> None:
    if begin is not None:
        cursor.execute(begin)
    cursor.executemany(sql, parameters)


def _is_begin(sql: str) -> bool:
    # Only the BEGIN statements storage.db issues ("BEGIN", "BEGIN IMMEDIATE"): nothing
    # else that starts with the word is held back.
    return sql in ("BEGIN", "BEGIN IMMEDIATE", "BEGIN DEFERRED", "BEGIN EXCLUSIVE")


class Cursor(aiosqlite.Cursor):
    def __init__(self, conn: aiosqlite.Connection, cursor: sqlite3.Cursor) -> None:
        super().__init__(conn, cursor)
        self._rows: list[Any] = []

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Cursor:
        conn = self._conn
        assert isinstance(conn, Connection)
        if _is_begin(sql) and not parameters and conn.begin_waiting is None:
            # Held until the transaction's first statement, which takes it along (one hop);
            # BEGIN IMMEDIATE then takes the write lock just before that statement runs, as
            # it would have a hop earlier.
            conn.begin_waiting = sql
            self._rows = []
            return self
        begin, conn.begin_waiting = conn.begin_waiting, None
        values = [] if parameters is None else parameters
        if begin == "BEGIN IMMEDIATE" and conn.inline_wanted and conn.begin_here():
            begin = None
        if conn.inline and begin is None:
            # A short write transaction that holds the write lock already (Connection.inline):
            # the statement runs here, on the event loop's thread, with no hop at all. One
            # that took long (a turn's command reading a whole ward) sends the rest of its
            # transaction's statements back to the thread.
            began = time.perf_counter()
            self._rows = _run(self._cursor, None, sql, values) or []
            if time.perf_counter() - began > INLINE_SLOW_SECONDS:
                conn.inline = False
            return self
        rows = await self._execute(_run, self._cursor, begin, sql, values)
        self._rows = rows or []
        if begin is not None and conn.inline_wanted and conn._conn.in_transaction:
            conn.inline = begin == "BEGIN IMMEDIATE"
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> Cursor:
        conn = self._conn
        assert isinstance(conn, Connection)
        begin, conn.begin_waiting = conn.begin_waiting, None
        self._rows = []
        if conn.inline and begin is None:  # a turn's replies (storage.outbox.reply): a few rows
            _run_many(self._cursor, None, sql, parameters)
            return self
        await self._execute(_run_many, self._cursor, begin, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self._cursor.arraysize if size is None else size
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    async def fetchall(self) -> list[Any]:
        taken, self._rows = self._rows, []
        return taken

    async def close(self) -> None:
        self._rows = []
        self._cursor.close()


class Connection(aiosqlite.Connection):
    # The BEGIN of a transaction that has run no statement yet (Cursor.execute).
    begin_waiting: str | None = None
    # inline_wanted: this transaction asked to run inline (storage.db, Database.transaction
    # (inline=True): a turn, the sender's claims). inline: it holds the write lock now (its
    # BEGIN IMMEDIATE ran with its first statement, in a hop, as that may wait for another
    # process), so its statements run on the event loop's thread: in WAL mode, a statement
    # of a transaction holding the write lock waits for no lock, and SQLite on a local file
    # does such a statement in microseconds, where the hop costs both threads a wake-up and
    # the GIL's hand-over (the largest single cost of a turn on SQLite: docs/performance.md).
    # Its BEGIN IMMEDIATE and COMMIT run here too whenever they need not wait (begin_here,
    # commit): a turn then makes no hop at all.
    inline_wanted: bool = False
    inline: bool = False
    # The connection's busy_timeout (storage.db sets it): begin_here lifts it for one try.
    busy_timeout_ms: int = 0

    def begin_here(self) -> bool:
        """BEGIN IMMEDIATE on the event loop's thread, if the write lock is free now.

        In this process write transactions take turns before they begin (storage.db's
        write lock), so the lock can only be held by another process (a `coso` command
        writing beside the bot): the busy handler is off for this one try, and a refusal
        leaves the BEGIN to the hop, where it waits for the lock as before."""
        cursor = self._conn.cursor()
        try:
            # The PRAGMA answers with a row: fetched, or its statement stays "in progress"
            # and the COMMIT is refused.
            cursor.execute("PRAGMA busy_timeout=0").fetchall()
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False
            finally:
                cursor.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}").fetchall()
        finally:
            cursor.close()
        self.inline = True
        return True

    def transaction_ended(self) -> None:
        self.begin_waiting, self.inline_wanted, self.inline = None, False, False

    async def rollback(self) -> None:
        """No hop when there is nothing to roll back: the pool's reset rolls back every
        connection handed back, and on the hot path it comes after a COMMIT (or after a
        read whose BEGIN nothing wrote under)."""
        self.transaction_ended()  # a transaction that ran nothing: nothing to undo
        if self._conn.in_transaction:
            await super().rollback()

    async def commit(self) -> None:
        """No hop for a transaction that ran no statement (its BEGIN still waiting), nor for
        an inline one: with the WAL's automatic checkpoint off (storage.db checkpoints
        apart, off the write path), a COMMIT in WAL mode with synchronous=NORMAL appends
        to the WAL and writes nothing else, no fsync."""
        inline = self.inline
        self.transaction_ended()
        if not self._conn.in_transaction:
            return
        if inline:
            self._conn.commit()
        else:
            await super().commit()

    @contextmanager
    async def cursor(self) -> Cursor:  # type: ignore[override]  # a subclass of its Cursor
        return Cursor(self, self._conn.cursor())


def connect(database: str, **kwargs: Any) -> Connection:
    """As aiosqlite.connect, with the cursors above; the sqlite3 connection may then be
    touched from the event loop's thread too (making and closing cursors)."""
    kwargs["check_same_thread"] = False
    connection = Connection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy's dialect does with aiosqlite's own
    return connection
