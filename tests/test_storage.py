"""Storage on SQLite and PostgreSQL: the unit tree, invites, the ledger and the outbox."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from storage import conversations, flood, invites, ledger, outbox, people, units
from storage.db import CHECKPOINT_EVERY, Database
from storage.models import (
    Conversation,
    Invite,
    OutboxStatus,
    Person,
    ProcessedUpdate,
    utcnow,
)


async def test_unit_names_are_nfc_with_single_spaces_and_paths_nest(db: Database) -> None:
    decomposed = "Phu\u031bo\u031b\u0300ng  Ra\u0323ch   Du\u031b\u0300a"
    async with db.transaction() as session:
        city = await units.upsert(session, "79", "Thành phố Hồ Chí Minh", "province", None)
        ward = await units.upsert(session, "26536", decomposed, "ward", city)
        quarter = await units.upsert(session, "26536-KP1", "Khu phố 1", "quarter", ward)
        group = await units.upsert(session, "26536-KP1-T1", "Tổ 1", "group", quarter)
    async with db.read() as session:
        stored = await units.by_code(session, "26536")
        assert stored is not None and stored.name == "Phường Rạch Dừa"
        assert units.contains(city, group) and not units.contains(quarter, ward)
        assert [u.code for u in await units.subtree(session, ward)] == [
            "26536", "26536-KP1", "26536-KP1-T1"]
        assert await units.full_path(session, group) == (
            "Tổ 1, Khu phố 1, Phường Rạch Dừa, Thành phố Hồ Chí Minh")


async def test_reimport_renames_and_moves_a_unit(db: Database) -> None:
    async with db.transaction() as session:
        a = await units.upsert(session, "A", "Ward A", "ward", None)
        b = await units.upsert(session, "B", "Ward B", "ward", None)
        await units.upsert(session, "Q", "Quarter", "quarter", a)
        group = await units.upsert(session, "G", "Group", "group", await units.by_code(
            session, "Q"))
        with pytest.raises(units.UnitTreeError, match="needs --move"):
            await units.upsert(session, "Q", "Quarter", "quarter", b)
        moved = await units.upsert(session, "Q", "Quarter  renamed", "quarter", b, move=True)
        assert moved.name == "Quarter renamed" and moved.path == f"{b.path}{moved.id}/"
        assert group.path == f"{moved.path}{group.id}/"  # the subtree moved with it


async def test_upsert_keeps_the_level_order(db: Database) -> None:
    async with db.transaction() as session:
        a = await units.upsert(session, "A", "Ward A", "ward", None)
        quarter = await units.upsert(session, "Q", "Quarter", "quarter", a)
        with pytest.raises(units.UnitTreeError, match="must be above"):
            await units.upsert(session, "B", "Ward B", "ward", quarter)
        with pytest.raises(units.UnitTreeError, match="must be above"):
            await units.upsert(session, "A", "Ward A", "group", None)  # above its quarter


async def test_invite_codes_are_hashed_single_use_and_expire(db: Database) -> None:
    async with db.transaction() as session:
        ward = await units.upsert(session, "W", "Ward", "ward", None)
        fresh, old = (await invites.create(session, ward, "leader", timedelta(days=1), count=2))
        (await invites.find(session, old.code)).expires_at = utcnow() - timedelta(seconds=1)
        stored = (await session.execute(select(Invite.code_hash))).scalars().all()
        assert fresh.code not in stored and len(fresh.code) == invites.CODE_LENGTH
    async with db.transaction() as session:
        now = utcnow()
        spaced = " ".join(fresh.code.lower()[i:i + 4] for i in (0, 4))
        assert invites.problem(await invites.find(session, spaced), now) is None
        assert invites.problem(await invites.find(session, old.code), now) == "expired"
        assert invites.problem(await invites.find(session, "NOPE2345"), now) == "unknown"
        person = Person(full_name="A")
        session.add(person)
        await session.flush()
        await invites.redeem(session, fresh.code, person.id)
        assert invites.problem(await invites.find(session, fresh.code), now) == "used"
        await invites.revoke(session, old.code)
        assert invites.problem(await invites.find(session, old.code), now) == "revoked"


async def test_the_ledger_takes_each_update_once_even_concurrently(db: Database) -> None:
    async def claim() -> bool:
        async with db.transaction() as session:
            return await ledger.claim(session, "telegram", "42")

    results = await asyncio.gather(*(claim() for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_outbox_claims_by_priority_and_leases(db: Database) -> None:
    async with db.transaction() as session:
        account = await people.account_for(session, "telegram", "7")
        other = await people.account_for(session, "telegram", "8")
        outbox.enqueue(session, other, {"text": "bulk"}, priority=outbox.BULK)
        outbox.enqueue(session, account, {"text": "reply"})
        outbox.enqueue(session, account, {"text": "second reply"})
    async with db.transaction() as session:
        claimed = await outbox.claim(session, "telegram", 10, timedelta(seconds=-1))
        # One row per chat, replies first; a chat's second row waits for its first.
        assert [(row.payload["text"], external) for row, external in claimed] == [
            ("reply", "7"), ("bulk", "8")]
    # The lease ran out (a sender died in flight): the rows are due again.
    async with db.transaction() as session:
        again = await outbox.claim(session, "telegram", 10, timedelta(seconds=60))
        assert [row.payload["text"] for row, _ in again] == ["reply", "bulk"]
        assert all(row.attempts == 2 for row, _ in again)
        await outbox.mark_sent(session, [again[0][0].id])
    async with db.transaction() as session:
        [(row, _)] = await outbox.claim(session, "telegram", 10, timedelta(seconds=60))
        assert row.payload["text"] == "second reply"  # its chat's first row is settled
    async with db.transaction() as session:
        assert await outbox.claim(session, "telegram", 10, timedelta(seconds=60)) == []
    async with db.read() as session:
        box = await outbox.mailbox(session, account.id, 0)
        assert sorted(row.status for row in box) == [OutboxStatus.SENDING, OutboxStatus.SENT]


async def test_a_flooding_chat_takes_one_place_in_the_claim(db: Database) -> None:
    """Issue 11, item 2: the claim took the oldest rows across all chats, so a chat with a
    thousand replies queued filled the window and every other chat waited behind it."""
    async with db.transaction() as session:
        flooder = await people.account_for(session, "telegram", "666")
        quiet = await people.account_for(session, "telegram", "42")
        for n in range(300):  # more than one claim's scan
            outbox.enqueue(session, flooder, {"text": f"flood {n}"})
        outbox.enqueue(session, quiet, {"text": "help"})
    async with db.transaction() as session:
        claimed = await outbox.claim(session, "telegram", 8, timedelta(seconds=60))
        assert [(row.payload["text"], external) for row, external in claimed] == [
            ("flood 0", "666")]
    async with db.transaction() as session:
        # The flooder's first row is being sent: its chat is skipped (as the sender does
        # while the chat waits its turn), and the quiet chat's row is claimed at once.
        claimed = await outbox.claim(session, "telegram", 8, timedelta(seconds=60),
                                     skip_chats={flooder.id})
        assert [(row.payload["text"], external) for row, external in claimed] == [
            ("help", "42")]
    async with db.transaction() as session:
        # Another sender (no chats to skip) takes nothing: each chat's first row is out.
        assert await outbox.claim(session, "telegram", 8, timedelta(seconds=60)) == []


@pytest.mark.parametrize("inline", [False, True])
async def test_a_failed_transaction_leaves_nothing(db: Database, inline: bool) -> None:
    """inline: Database.transaction(inline=True), whose statements on SQLite skip aiosqlite's
    thread once the write lock is held; a failure still undoes all of it."""
    try:
        async with db.transaction(inline=inline) as session:
            account = await people.account_for(session, "zalo", "9")
            outbox.enqueue(session, account, {"text": "never"})
            await ledger.claim(session, "zalo", "u1")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with db.transaction(inline=inline) as session:
        assert await ledger.claim(session, "zalo", "u1") is True
        assert await outbox.claim(session, "zalo", 10, timedelta(seconds=5)) == []
    async with db.read() as session:  # the commit kept it
        assert (await session.execute(select(ProcessedUpdate.update_id))).scalars().all() == [
            "u1"]


async def test_a_turns_state_is_written_with_one_update_a_row_and_left_clean(db: Database
                                                                              ) -> None:
    """conversations.save and people.save_account (the engine's step, the flood count): one
    UPDATE of the changed columns each, then nothing left for the commit's flush."""
    async with db.transaction() as session:
        account = await people.account_for(session, "telegram", "42")
        conversation = Conversation(chat_account_id=account.id, flow="report", step="a",
                                    data={}, history=conversations.empty_history())
        session.add(conversation)
        await conversations.save(session, conversation)  # not inserted yet: the ORM's flush
        assert conversation.id is not None
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.transaction() as session:
            account = await people.account_for(session, "telegram", "42")
            conversation = await conversations.of_account(session, account.id)
            assert conversation is not None
            statements.clear()
            conversation.step, conversation.data = "b", {"note": "Nhà số 12 — khẩn"}
            conversation.question_token = "abc123"
            account.flood_count, account.latest_buttons = 3, [["Đã nhận", "d:1:ack"]]
            await conversations.save(session, conversation)
            await people.save_account(session, account)
            await conversations.save(session, conversation)  # nothing changed since: no query
            assert statements == ["UPDATE", "UPDATE"]
            assert not session.dirty
        assert "UPDATE" not in statements[2:]  # the commit wrote nothing more
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    async with db.read() as session:
        stored = (await session.execute(select(Conversation))).scalar_one()
        assert (stored.step, stored.data, stored.question_token) == (
            "b", {"note": "Nhà số 12 — khẩn"}, "abc123")
        account = await people.account_for(session, "telegram", "42")
        assert (account.flood_count, account.latest_buttons) == (3, [["Đã nhận", "d:1:ack"]])


async def test_a_turns_claim_takes_each_update_once_even_concurrently(db: Database) -> None:
    """ledger.claim_turn (the claim with, on PostgreSQL, the chat's turn lock in it) in the
    hot transaction a turn uses (on SQLite its statements run on the loop's thread)."""
    async def claim() -> bool:
        async with db.transaction(inline=True) as session:
            return await ledger.claim_turn(session, "telegram", "42", "7")

    results = await asyncio.gather(*(claim() for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_the_senders_read_counts_the_update_as_the_flood_window_does(db: Database
                                                                            ) -> None:
    """sender_of(count_at=...): on PostgreSQL the count is written by the read itself
    (Sender.counted), by storage.flood.count_update's rule; elsewhere the caller counts."""
    async with db.transaction() as session:
        await people.account_for(session, "telegram", "7")
    start = utcnow()
    seen: list[tuple[int, object]] = []
    for offset in (0, 10, 59, 60, 61):
        now = start + timedelta(seconds=offset)
        async with db.transaction(inline=True) as session:
            sender = await people.sender_of(session, "telegram", "7", count_at=now)
            assert sender.counted is (not db.is_sqlite)
            if not sender.counted:
                flood.count_update(sender.account, now)
                await people.save_account(session, sender.account)
    async with db.read() as session:
        account = await people.account_for(session, "telegram", "7")
        seen.append((account.flood_count, account.flood_since))
    # 0, 10, 59 in the window begun at 0; 60 begins the next, 61 is its second
    assert seen == [(2, start + timedelta(seconds=60))]


def test_names_sort_as_a_vietnamese_reader_orders_them() -> None:
    """Found by a new-user trial: Đặng and Đỗ came after Võ (code-point order)."""
    from wording import name_order

    names = ["Võ Thị Hoa", "Đỗ Văn Bình", "Nguyễn An", "Đặng Thu", "Bùi Lan"]
    assert sorted(names, key=name_order) == [
        "Bùi Lan", "Đặng Thu", "Đỗ Văn Bình", "Nguyễn An", "Võ Thị Hoa"]


async def test_an_inline_turn_waits_out_another_processs_write_lock(db: Database) -> None:
    """SQLite: a turn's BEGIN IMMEDIATE runs on the event loop's thread only while the write
    lock is free; held by another process (a `coso` command), the turn waits for it on
    aiosqlite's thread as before, and the loop goes on meanwhile."""
    if not db.is_sqlite:
        pytest.skip("SQLite's one writer")
    async with db.transaction() as session:  # the tables exist before the other writer
        await ledger.claim(session, "zalo", "first")
    other = sqlite3.connect(str(make_url(db.url).database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def turn() -> None:
        async with db.transaction(inline=True) as session:
            assert await ledger.claim(session, "zalo", "second") is True

    waiting = asyncio.create_task(turn())
    await asyncio.sleep(0.3)  # the loop is free: this sleep ends while the turn waits
    assert not waiting.done()
    other.rollback()
    other.close()
    await asyncio.wait_for(waiting, 10)
    async with db.read() as session:
        assert set((await session.execute(select(ProcessedUpdate.update_id))).scalars()) == {
            "first", "second"}


async def test_the_wal_is_checkpointed_apart_from_the_turns_commits(db: Database) -> None:
    """SQLite: no COMMIT checkpoints (an inline one would write the database file on the
    event loop's thread); Database.checkpoint does, every CHECKPOINT_EVERY write
    transactions, so the WAL does not grow without end."""
    if not db.is_sqlite:
        pytest.skip("SQLite's WAL")
    wal = Path(f"{make_url(db.url).database}-wal")
    sizes = []
    for number in range(6 * CHECKPOINT_EVERY):
        async with db.transaction(inline=True) as session:
            account = await people.account_for(session, "zalo", str(number))
            outbox.enqueue(session, account, {"text": "x" * 3000})  # a page or more
            await ledger.claim(session, "zalo", f"u{number}")
        if db._checkpointing is not None:
            await db._checkpointing
        if number % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 2:
            sizes.append(os.path.getsize(wal))  # noqa: ASYNC240 - a stat, in a test
    # The file is not cut, but once checkpointed the WAL starts over at its beginning: it
    # stays near one round's size, where without checkpoints it would grow with every round.
    assert sizes[-1] < 2 * sizes[0]
