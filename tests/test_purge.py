"""`coso purge`: personal data older than the cut-off goes, newer data and every count stays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.cli import main as cli_main
from bot.settings import get_settings
from storage import households, outbox, people, reports, support, units
from storage.db import Database
from storage.models import (
    ChatAccount,
    OutboxMessage,
    OutboxStatus,
    Person,
    ProcessedUpdate,
    Report,
    SupportDelivery,
    utcnow,
)
from storage.reports import CheckInAnswer
from tests.conftest import seed_ward

NOW = utcnow()
OLD, RECENT = NOW - timedelta(days=60), NOW - timedelta(days=2)
CUT_OFF = (NOW - timedelta(days=30)).date()


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COSO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _records(db: Database) -> dict[str, int]:
    """Old and recent records of every kind the purge looks at; returns their ids."""
    await seed_ward(db)
    ids: dict[str, int] = {}
    async with db.transaction() as session:
        unit = await units.by_code(session, "26734-KP1")
        assert unit is not None
        home = await households.add(session, unit, "12 Lê Lợi", head_name="Nguyễn Văn An",
                                    members=3)
        for label, when, resolve in (("old", OLD, True), ("recent", RECENT, True),
                                     ("old_open", OLD, False)):
            report = await reports.create(session, household=home, category_key="f0",
                                          people_count=1, urgent=False, note="Sốt cao",
                                          photo="AgAC-1", person_id=None, now=when)
            if resolve:
                await reports.resolve(session, report, person_id=None, now=when, note="Khỏi")
            ids[label] = report.id
        await reports.record_check_in(session, unit.id, OLD.date(), CheckInAnswer.REPORTED,
                                      None, OLD)
        delivery = await support.record_delivery(
            session, household=home, policy_key="food_bag", amount=1, status="delivered",
            delivered_on=OLD.date(), photo="receipt-1", person_id=None, now=OLD)
        ids["delivery"] = delivery.id
        gone = Person(full_name="Trần Thị Bình", active=False, deactivated_at=OLD)
        session.add(gone)
        await session.flush()
        account = await people.account_for(session, "telegram", "98765")
        account.person_id = gone.id
        sent = outbox.enqueue(session, account, {"text": "Chào Trần Thị Bình"})
        sent.status, sent.created_at = OutboxStatus.SENT, OLD
        outbox.enqueue(session, account, {"text": "still waiting"})
        session.add(ProcessedUpdate(channel="telegram", update_id="1", processed_at=OLD))
        ids["person"], ids["account"] = gone.id, account.id
    return ids


async def test_purge_clears_old_personal_data_and_keeps_counts(
        db: Database, cli_db: None, capsys: pytest.CaptureFixture[str]) -> None:
    ids = await _records(db)
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, ["purge", "--before", CUT_OFF.isoformat(),
                                              "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "report_notes": 1, "report_event_notes": 1, "delivery_photos": 1, "dispute_notes": 0,
        "messages": 1, "ledger_entries": 1, "people": 1}
    async with db.read() as session:
        kept = {r.id: r for r in (await session.execute(select(Report))).scalars()}
        assert (kept[ids["old"]].note, kept[ids["old"]].photo) == (None, None)
        assert kept[ids["recent"]].note == "Sốt cao"  # newer than the cut-off
        assert kept[ids["old_open"]].note == "Sốt cao"  # still open: the ward works on it
        assert len(kept) == 3  # the counts the digests use are all still there
        delivery = await session.get(SupportDelivery, ids["delivery"])
        assert delivery is not None and delivery.photo is None and delivery.amount == 1
        person = await session.get(Person, ids["person"])
        account = await session.get(ChatAccount, ids["account"])
        assert person is not None and person.full_name == "—"
        assert account is not None and account.external_id == f"purged-{account.id}"
        left = (await session.execute(select(OutboxMessage.payload))).scalars().all()
        assert left == [{"text": "still waiting"}]  # unsent messages are not history yet
        assert await session.scalar(select(func.count()).select_from(ProcessedUpdate)) == 0
    # A second run finds nothing more.
    code = await asyncio.to_thread(cli_main, ["purge", "--before", CUT_OFF.isoformat(),
                                              "--json"])
    assert set(json.loads(capsys.readouterr().out).values()) == {0}


async def test_a_future_cut_off_is_refused(db: Database, cli_db: None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    await _records(db)
    capsys.readouterr()
    tomorrow = (NOW + timedelta(days=2)).date().isoformat()
    assert await asyncio.to_thread(cli_main, ["purge", "--before", tomorrow]) == 1
    assert "--before" in capsys.readouterr().err
