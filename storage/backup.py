"""SQLite backups: a consistent copy of a live database, its check, its restore, and the
lock that tells a restore a bot is using the database.

SQLite is the embedded default, so a lost file is a lost ward. The copy goes through
SQLite's online backup API: it reads a consistent snapshot while the bot keeps writing (WAL
readers do not block the writer), and the copy is one self-contained file (journal mode
DELETE), 0600 like the database. PostgreSQL has pg_dump for this.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Unit

NIGHTLY_PREFIX = "coso-"


def N_(msgid: str) -> str:  # noqa: N802 - marks a msgid for pybabel; storage imports no bot/
    return msgid


NIGHTLY_SUFFIX = ".db"


class BackupError(Exception):
    """A backup or restore that cannot go ahead; msgid and values are for the catalog."""

    def __init__(self, msgid: str, **values: object) -> None:
        super().__init__(msgid.format(**values) if values else msgid)
        self.msgid, self.values = msgid, values


@dataclass(frozen=True)
class Checked:
    integrity: str  # "ok", or SQLite's first complaint
    revisions: tuple[str, ...]  # the migration level: alembic_version's rows
    size: int  # bytes

    @property
    def ok(self) -> bool:
        return self.integrity == "ok"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    return None if parsed.database == ":memory:" else Path(parsed.database)


def backup(source: Path, target: Path) -> Checked:
    """Copy the live database `source` to `target` (0600), atomically: a reader of `target`
    sees the old file or the whole new one. Returns the copy's check."""
    if not source.is_file():
        raise BackupError(N_("no database file at {path}"), path=str(source))
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_name(f".{target.name}.partial")
    _private_file(partial)
    try:
        _copy(source, partial)
        checked = check(partial)
        if not checked.ok:
            raise BackupError(N_("the copy failed its integrity check: {problem}"),
                              problem=checked.integrity)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return checked


def _copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # every page in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        finally:
            dst.close()
    finally:
        src.close()


def check(path: Path) -> Checked:
    """integrity_check and the migration level of a database file (opened read-only)."""
    if not path.is_file():
        raise BackupError(N_("no file at {path}"), path=str(path))
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(N_("{path} is not a SQLite database: {error}"), path=str(path),
                          error=str(exc)) from None
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        integrity = "ok" if [r[0] for r in rows] == ["ok"] else str(rows[0][0])
        try:
            revisions = tuple(sorted(r[0] for r in conn.execute(
                "SELECT version_num FROM alembic_version")))
        except sqlite3.OperationalError:
            revisions = ()
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise BackupError(N_("{path} is not a SQLite database: {error}"), path=str(path),
                          error=str(exc)) from None
    finally:
        conn.close()
    return Checked(integrity, revisions, path.stat().st_size)


KEPT_SUFFIX = ".before-restore-"


def kept_name(target: Path, now: datetime) -> Path:
    """'coso.db.before-restore-20261204-204100Z': where a restore puts the database it
    replaces, a new name each time (a second restore must not overwrite the first's copy,
    which may be the only good one). The UTC time sorts them; -2, -3 within one second."""
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%SZ")
    kept = target.with_name(f"{target.name}{KEPT_SUFFIX}{stamp}")
    number = 1
    while kept.exists():
        number += 1
        kept = target.with_name(f"{target.name}{KEPT_SUFFIX}{stamp}-{number}")
    return kept


def earlier_kept(target: Path) -> list[Path]:
    """The databases earlier restores replaced, oldest first."""
    return sorted(target.parent.glob(f"{target.name}{KEPT_SUFFIX}*"))


def restore(backup_file: Path, target: Path, now: datetime | None = None) -> Path | None:
    """Put `backup_file` in place of the database `target`; the database it replaces is
    kept beside it under a new name (returned, `kept_name`), so a mistaken restore can be
    undone, and an earlier restore's copy is never overwritten. The caller holds the
    exclusive lock (`exclusive`) and has checked the file."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    incoming = target.with_name(f".{target.name}.restoring")
    _private_file(incoming)
    kept: Path | None = None
    try:
        _copy(backup_file, incoming)
        if target.exists():
            _checkpoint(target)  # the old file whole, its WAL folded in, before it moves
            kept = kept_name(target, now or datetime.now(UTC))
            os.replace(target, kept)
            kept.chmod(0o600)
        for leftover in ("-wal", "-shm"):  # an old WAL must never be replayed on the new file
            target.with_name(target.name + leftover).unlink(missing_ok=True)
        os.replace(incoming, target)
    finally:
        incoming.unlink(missing_ok=True)
    return kept


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def _private_file(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# --- who uses the database --------------------------------------------------------------------
# `coso run` holds a shared flock on "<database>.lock" while it runs; a restore takes it
# exclusively. The kernel drops a flock when its process dies, so a crash leaves no stale
# lock (a pid file would).

def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def _open_lock(database: Path) -> IO[str]:
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)
    return os.fdopen(fd, "r+")


def hold_running(database: Path) -> IO[str]:
    """Taken by a running bot (kept open until it stops); raises BackupError while a restore
    holds the database."""
    handle = _open_lock(database)
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BackupError(N_("a restore of {path} is under way"), path=str(database)) from None
    return handle


@contextlib.contextmanager
def exclusive(database: Path) -> Iterator[IO[str]]:
    """Held by a restore; raises BackupError when a bot runs on the database."""
    handle = _open_lock(database)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(N_("a bot is running on {path}: stop it first (systemctl stop "
                              "coso)"), path=str(database)) from None
        yield handle
    finally:
        handle.close()


# --- nightly backups --------------------------------------------------------------------------

def nightly_name(day: date) -> str:
    return f"{NIGHTLY_PREFIX}{day.isoformat()}{NIGHTLY_SUFFIX}"


def prune(folder: Path, today: date, keep_days: int) -> list[Path]:
    """Delete the nightly copies older than `keep_days` days (today's counts as one)."""
    oldest = today - timedelta(days=keep_days - 1)
    removed = []
    for path in folder.glob(f"{NIGHTLY_PREFIX}*{NIGHTLY_SUFFIX}"):
        stamp = path.name[len(NIGHTLY_PREFIX):-len(NIGHTLY_SUFFIX)]
        try:
            day = date.fromisoformat(stamp)
        except ValueError:
            continue  # not one of ours
        if day < oldest:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


async def claim_unit(session: AsyncSession) -> int | None:
    """The unit a nightly backup's run is claimed under (job_runs keys on a unit): the first
    root of the tree; None when there is no unit yet, and nothing to lose."""
    return await session.scalar(select(func.min(Unit.id)).where(Unit.parent_id.is_(None)))
