"""A durable local spool, one per channel, for updates the database could not take.

Zalo's webhook is not documented to deliver an update again after a 5xx, and a polled
update is gone from the platform once fetched (Zalo pops it; Telegram confirms it with the
next getUpdates). So an update that meets a database that is away is written here and
fsynced (a Zalo webhook answers 200 only then), and handed to the core again, in the order
it came, once the database answers: in this process, or at the next start. The ledger
(storage/ledger.py) makes the replay safe: an update whose commit did land before its
failure was seen is skipped, so each takes effect exactly once.

The records hold what people wrote (personal data): the directory is 0700, the files 0600,
and no log line quotes a record. This module knows no platform; it stores Incoming records.

On disk, in ``COSO_DATA_DIR/spool/``:

``<channel>.spool``
    append-only, one record per line: ``<crc32, 8 hex> <json>\\n``, the JSON (ASCII only, so
    no raw line break) being ``{"seq": n, "at": unix time, "incoming": {...}}``. A last line
    without its line break or with a wrong checksum is a write a crash tore: it is ignored
    and cut off before the next append. Removed (compaction) once every record is done.
``<channel>.done``
    the seq of the last record handled, replaced atomically (write, fsync, rename). Records
    up to it are done; numbering goes on after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels.base import (
    MAX_RETRY_PAUSE,
    POLLED_TRIES,
    RETRY_PAUSE,
    HandleIncoming,
    frames,
)
from bot.messages import Incoming
from storage.db import unavailable

log = logging.getLogger(__name__)

DIRECTORY_MODE, FILE_MODE = 0o700, 0o600
_FIELDS = tuple(field.name for field in dataclasses.fields(Incoming))
_REQUIRED = ("channel", "external_id", "update_id")


@dataclass(frozen=True)
class Entry:
    seq: int
    at: float  # time.time() when it was spooled
    incoming: Incoming


class Spool:
    """The records of one channel, loaded at creation; files are made on the first append."""

    def __init__(self, directory: Path, channel: str) -> None:
        self.directory = directory
        self.channel = channel
        self.path = directory / f"{channel}.spool"
        self.done_path = directory / f"{channel}.done"
        self._entries: deque[Entry] = deque()
        self._next = 1
        self._load()

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def first(self) -> Entry | None:
        return self._entries[0] if self._entries else None

    # ------------------------------------------------------------ writing

    def append(self, incoming: Incoming) -> Entry:
        """Write one record and fsync it; raises OSError when it could not be written (then
        nothing of it stays in the file)."""
        entry = Entry(self._next, time.time(), incoming)
        line = _encode(entry)
        self._make_directory()
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # a half-written record would be torn
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.directory)
        self._entries.append(entry)
        self._next += 1
        return entry

    def remove(self, entry: Entry) -> None:
        """The first entry is done (its ledger row committed, or it was given up). If that
        cannot be recorded, it is replayed at the next start, and the ledger skips it."""
        if not self._entries or self._entries[0].seq != entry.seq:
            raise ValueError("spool entries are removed in order")
        self._entries.popleft()
        try:
            self._write_done(entry.seq)
            if not self._entries:
                self._compact()
        except OSError as exc:
            log.warning("%s spool: could not record update %s as done (%s); the next start "
                        "replays it and the ledger skips it", self.channel,
                        entry.incoming.update_id, type(exc).__name__)

    def _make_directory(self) -> None:
        self.directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        os.chmod(self.directory, DIRECTORY_MODE)  # mkdir's mode is cut by the umask

    def _write_done(self, seq: int) -> None:
        temporary = self.done_path.with_name(self.done_path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            _write_all(fd, f"{seq}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.done_path)
        _fsync_directory(self.directory)

    def _compact(self) -> None:
        # Every record is done: the file goes. A crash before this leaves records that the
        # .done file already marks as done, so nothing is replayed twice.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        _fsync_directory(self.directory)

    # ------------------------------------------------------------ reading

    def _load(self) -> None:
        done = self._read_done()
        last = done
        if self.path.exists():
            data = self.path.read_bytes()
            end = position = 0
            damaged = skipped = 0  # damaged lines since the last good record; before it
            while (newline := data.find(b"\n", position)) >= 0:
                entry = _decode(data[position:newline])
                position = newline + 1
                if entry is None:
                    damaged += 1
                    continue
                end, skipped, damaged = position, skipped + damaged, 0
                last = max(last, entry.seq)
                if entry.seq > done:
                    self._entries.append(entry)
            if skipped:
                log.warning("%s spool: %d damaged record(s) skipped", self.channel, skipped)
            if end < len(data):  # only what follows the last good record is a torn write
                self._cut(end, len(data) - end)
        self._next = last + 1
        if self._entries:
            log.info("%s spool: %d update(s) kept by an earlier run, handled first",
                     self.channel, len(self._entries))

    def _read_done(self) -> int:
        try:
            return int(self.done_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.warning("%s spool: %s is not a number; every record is replayed (the "
                        "ledger skips those done)", self.channel, self.done_path.name)
            return 0

    def _cut(self, end: int, torn: int) -> None:
        """Drop a torn tail, so the next record does not join it on one damaged line."""
        log.warning("%s spool: the last record was torn (%d bytes, a crash while writing); "
                    "ignored", self.channel, torn)
        with open(self.path, "r+b") as file:
            file.truncate(end)
            file.flush()
            os.fsync(file.fileno())


def _encode(entry: Entry) -> bytes:
    body = json.dumps({"seq": entry.seq, "at": entry.at,
                       "incoming": dataclasses.asdict(entry.incoming)},
                      ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode(line: bytes) -> Entry | None:
    head, _, body = line.partition(b" ")
    try:
        if len(head) != 8 or int(head, 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    seq, at, incoming = record.get("seq"), record.get("at"), _incoming(record.get("incoming"))
    if not isinstance(seq, int) or not isinstance(at, int | float) or incoming is None:
        return None
    return Entry(seq, float(at), incoming)


def _incoming(data: Any) -> Incoming | None:
    if not isinstance(data, dict):
        return None
    values: dict[str, Any] = {name: data.get(name) for name in _FIELDS}
    if not all(isinstance(values[name], str) for name in _REQUIRED) or not all(
            value is None or isinstance(value, str) for value in values.values()):
        return None
    return Incoming(**values)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_directory(directory: Path) -> None:
    """A new, renamed or removed file survives a power cut only once its directory is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpooledHandle:
    """The core's handle for a channel whose platform gives an update only once.

    It returns once the update is committed or in the spool; it raises only when neither
    could be done (a bug in the update, or the database away and the spool unwritable), so
    the channel's own handling of a failure applies then. While records wait in the spool,
    new updates go behind them, so they are handled in the order they came."""

    def __init__(self, handle: HandleIncoming, spool: Spool) -> None:
        self._handle = handle
        self.spool = spool
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._replay(), name=f"spool-{self.spool.channel}")

    async def stop(self) -> None:
        """What is still in the spool stays there for the next start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def __call__(self, incoming: Incoming) -> None:
        if self.spool and self._keep(incoming, "earlier updates wait in the spool"):
            return
        try:
            await self._handle(incoming)
        except asyncio.CancelledError:
            # Stopping mid-way: the platform will not give this update again. If it did
            # commit after all, the ledger skips it at the replay.
            self._keep(incoming, "the process stopped before it was handled")
            raise
        except Exception as exc:
            reason = unavailable(exc)
            if reason is None or not self._keep(incoming, reason):
                raise

    def _keep(self, incoming: Incoming, reason: str) -> bool:
        """Into the spool; False (and a line) when it cannot be written (a full disk)."""
        where = f"{incoming.channel}: update {incoming.update_id} not handled: {reason}"
        try:
            self.spool.append(incoming)
        except OSError as exc:
            log.error("%s, and the spool cannot be written (%s)", where, type(exc).__name__)
            return False
        log.warning("%s; kept in the spool (%d waiting), handled once the database answers",
                    where, len(self.spool))
        self._wake.set()
        return True

    async def _replay(self) -> None:
        while True:
            entry = self.spool.first()
            if entry is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._replay_one(entry)

    async def _replay_one(self, entry: Entry) -> None:
        """Tried until the database answers; an error that is not the database's (a bug) is
        tried POLLED_TRIES times, as a polled update is, then given up with a line."""
        incoming = entry.incoming
        where = f"{incoming.channel}: update {incoming.update_id}"
        attempt = failures = 0
        while True:
            attempt += 1
            try:
                await self._handle(incoming)
                break
            except Exception as exc:
                if unavailable(exc) is None:
                    failures += 1
                    if failures >= POLLED_TRIES:
                        log.error("%s from the spool given up after %d tries: %s", where,
                                  failures, type(exc).__name__)
                        self.spool.remove(entry)
                        return
                    log.error("%s from the spool failed (try %d of %d): %s\n%s", where,
                              failures, POLLED_TRIES, type(exc).__name__, frames(exc))
            await asyncio.sleep(min(RETRY_PAUSE * 2 ** (attempt - 1), MAX_RETRY_PAUSE))
        log.info("%s handled after waiting %.0fs for the database", where,
                 time.time() - entry.at)
        self.spool.remove(entry)
        if not self.spool:
            log.info("%s spool: empty again", incoming.channel)
