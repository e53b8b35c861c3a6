"""Storage on SQLite and PostgreSQL: the unit tree, invites, the ledger and the outbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from storage import invites, ledger, outbox, people, units
from storage.db import Database
from storage.models import Invite, OutboxStatus, Person, utcnow


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
        outbox.enqueue(session, account, {"text": "bulk"}, priority=outbox.BULK)
        outbox.enqueue(session, account, {"text": "reply"})
    async with db.transaction() as session:
        claimed = await outbox.claim(session, "telegram", 10, timedelta(seconds=-1))
        assert [row.payload["text"] for row, _ in claimed] == ["reply", "bulk"]
        assert all(external == "7" for _, external in claimed)
    # The lease ran out (a sender died in flight): the rows are due again.
    async with db.transaction() as session:
        again = await outbox.claim(session, "telegram", 10, timedelta(seconds=60))
        assert len(again) == 2 and all(row.attempts == 2 for row, _ in again)
        await outbox.mark_sent(session, [again[0][0].id])
    async with db.transaction() as session:
        assert await outbox.claim(session, "telegram", 10, timedelta(seconds=60)) == []
    async with db.read() as session:
        box = await outbox.mailbox(session, account.id, 0)
        assert sorted(row.status for row in box) == [OutboxStatus.SENDING, OutboxStatus.SENT]


async def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    try:
        async with db.transaction() as session:
            account = await people.account_for(session, "zalo", "9")
            outbox.enqueue(session, account, {"text": "never"})
            await ledger.claim(session, "zalo", "u1")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with db.transaction() as session:
        assert await ledger.claim(session, "zalo", "u1") is True
        assert await outbox.claim(session, "zalo", 10, timedelta(seconds=5)) == []
