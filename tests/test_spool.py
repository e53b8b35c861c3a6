"""The spool on its own (bot/channels/spool.py): records survive a restart in order, a write
torn by a crash is ignored, entries go once done, files are private. The drill that runs it
against a database that is away, through the Zalo double, is in tests/test_faults.py."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import pytest

from bot.channels.spool import Spool, SpooledHandle
from bot.messages import Incoming

NAME = "Lê Văn Cường"


def incoming(n: int, text: str = "/help") -> Incoming:
    return Incoming(channel="zalo", external_id=f"chat-{n % 3}", update_id=f"u{n}",
                    text=f"{text}\nline two", display_name=NAME, photo=None)


def ids(spool: Spool) -> list[str]:
    return [entry.incoming.update_id for entry in spool.entries()]


def test_records_come_back_in_order_after_a_restart_and_go_once_done(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "spool"
    spool = Spool(directory, "zalo")
    assert not directory.exists()  # nothing is made until something is kept
    kept = [spool.append(incoming(n)) for n in range(5)]
    assert [entry.seq for entry in kept] == [1, 2, 3, 4, 5]

    again = Spool(directory, "zalo")  # the next start
    assert [entry.incoming for entry in again.entries()] == [incoming(n) for n in range(5)]
    again.remove(again.entries()[0])
    again.remove(again.entries()[0])
    assert ids(Spool(directory, "zalo")) == ["u2", "u3", "u4"]
    with pytest.raises(ValueError):  # in order only
        again.remove(again.entries()[1])

    for entry in again.entries():
        again.remove(entry)
    assert not (directory / "zalo.spool").exists()  # compacted
    assert ids(Spool(directory, "zalo")) == []
    after = Spool(directory, "zalo").append(incoming(9))
    assert after.seq == 6  # numbering goes on: an old .done can never hide a new record
    assert ids(Spool(directory, "zalo")) == ["u9"]


def test_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, "telegram")
    spool.append(incoming(1))
    spool.remove(spool.entries()[0])
    spool.append(incoming(2))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("telegram.spool", "telegram.done"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert NAME.encode() not in (directory / "telegram.spool").read_bytes()  # ASCII JSON
    assert NAME in [e.incoming.display_name for e in Spool(directory, "telegram").entries()]


@pytest.mark.parametrize("tear", [
    lambda line: line[: len(line) // 2],  # the crash came mid-record
    lambda line: line[:-1],  # all but its line break
    lambda line: line[:20] + b"X" + line[21:],  # a line break written, the bytes not all
])
def test_a_torn_last_record_is_ignored_and_cut_off(tmp_path: Path, tear: object,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, "zalo")
    spool.append(incoming(1))
    spool.append(incoming(2))
    good = (tmp_path / "zalo.spool").read_bytes()
    probe = Spool(tmp_path / "probe", "zalo")
    probe.append(incoming(3))
    record = (tmp_path / "probe" / "zalo.spool").read_bytes()
    assert callable(tear)
    (tmp_path / "zalo.spool").write_bytes(good + tear(record))

    restarted = Spool(tmp_path, "zalo")
    assert ids(restarted) == ["u1", "u2"]
    assert (tmp_path / "zalo.spool").read_bytes() == good  # cut before the next append
    restarted.append(incoming(4))
    assert ids(Spool(tmp_path, "zalo")) == ["u1", "u2", "u4"]
    [line] = [r.getMessage() for r in caplog.records if "torn" in r.getMessage()]
    assert NAME not in line and "/help" not in line


def test_a_damaged_record_inside_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "zalo")
    for n in range(3):
        spool.append(incoming(n))
    lines = (tmp_path / "zalo.spool").read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"/help", b"/hel!")  # the checksum no longer matches
    (tmp_path / "zalo.spool").write_bytes(b"".join(lines))
    assert ids(Spool(tmp_path, "zalo")) == ["u0", "u2"]


async def test_replay_keeps_the_order_and_new_updates_wait_behind(tmp_path: Path) -> None:
    """A stand-in for the core that is 'away' (ConnectionRefusedError, as asyncpg raises)
    until told otherwise; the drill in tests/test_faults.py uses the real one."""
    handled: list[str] = []
    away = True

    async def core(update: Incoming) -> None:
        if away:
            raise ConnectionRefusedError(111, "Connect call failed")
        handled.append(update.update_id)

    spool = Spool(tmp_path, "zalo")
    spooled = SpooledHandle(core, spool)
    spooled.start()
    try:
        for n in range(3):
            await spooled(incoming(n))  # returns: kept, not raised
        assert ids(spool) == ["u0", "u1", "u2"] and handled == []
        away = False
        await spooled(incoming(3))  # the database answers, but u0-u2 go first
        for _ in range(100):
            if not spool:
                break
            await asyncio.sleep(0.05)
        assert handled == ["u0", "u1", "u2", "u3"]
        await spooled(incoming(4))  # the spool is empty: straight to the core
        assert handled[-1] == "u4" and not (tmp_path / "zalo.spool").exists()
    finally:
        await spooled.stop()


async def test_a_bug_is_not_kept_and_a_stop_mid_way_is(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    started = asyncio.Event()

    async def core(update: Incoming) -> None:
        if update.update_id == "u1":
            raise KeyError("a bug")
        started.set()
        await asyncio.sleep(60)

    spool = Spool(tmp_path, "zalo")
    spooled = SpooledHandle(core, spool)
    with pytest.raises(KeyError):  # the channel's own handling applies (500, retries)
        await spooled(incoming(1))
    assert not spool
    task = asyncio.create_task(spooled(incoming(2)))
    await started.wait()
    task.cancel()  # coso run stopping while the update is handled
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ids(Spool(tmp_path, "zalo")) == ["u2"]
    assert all(NAME not in r.getMessage() for r in caplog.records)
