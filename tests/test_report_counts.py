"""The per-unit counts of open and open urgent reports (unit_report_counts) stay equal to a
fresh COUNT of the reports through every write path, on both databases; 0013 fills them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, select

from storage import households, reports, units
from storage.db import Database
from storage.migrate import alembic_config, upgrade_async
from storage.models import Report, ReportStatus, UnitReportCount, utcnow
from tests.conftest import seed_ward


async def _kept(db: Database) -> dict[int, tuple[int, int]]:
    async with db.read() as session:
        return {row.unit_id: (row.open, row.open_urgent) for row in (await session.execute(
            select(UnitReportCount))).scalars() if row.open or row.open_urgent}


async def _counted(db: Database) -> dict[int, tuple[int, int]]:
    async with db.read() as session:
        return {unit_id: (int(n), int(u)) for unit_id, n, u in (await session.execute(
            select(Report.unit_id, func.count(),
                   func.sum(sa.case((Report.urgent.is_(True), 1), else_=0)))
            .where(Report.status == ReportStatus.OPEN).group_by(Report.unit_id))).all()}


async def test_kept_counts_equal_a_fresh_count_after_creates_urgency_and_resolves(
        db: Database) -> None:
    seeded = await seed_ward(db)
    now = utcnow()
    async with db.transaction() as session:
        homes = []
        for code in ("26734-KP1", "26734-KP2", "26734-KP1-T1", "26737-KP1"):
            unit = await units.by_code(session, code)
            assert unit is not None
            homes += [await households.add(session, unit, f"{code}-{n}") for n in range(3)]
        filed = [await reports.create(session, household=home, category_key="f0",
                                      people_count=1, urgent=i % 3 == 0, note=None, photo=None,
                                      person_id=None, now=now + timedelta(minutes=i))
                 for i, home in enumerate(homes * 2)]
        await reports.add_recorded(session, Report(
            household_id=homes[0].id, unit_id=homes[0].unit_id, category_key="f0",
            people_count=1, urgent=True, status="resolved", created_at=now,
            resolved_at=now))
    assert await _kept(db) == await _counted(db)
    async with db.transaction() as session:
        for i, report in enumerate(filed):
            report = await session.get(Report, report.id)
            assert report is not None
            if i % 4 == 0:
                await reports.update(session, report, person_id=None, now=now,
                                     urgent=not report.urgent)
            if i % 5 == 1:
                await reports.resolve(session, report, person_id=None, now=now)
            if i % 7 == 2:  # resolved, then marked urgent: no longer counted either way
                await reports.resolve(session, report, person_id=None, now=now)
                await reports.update(session, report, person_id=None, now=now, urgent=True)
            if i % 6 == 3:  # the same urgency again changes nothing
                await reports.update(session, report, person_id=None, now=now,
                                     urgent=report.urgent, people_count=2)
    kept, counted = await _kept(db), await _counted(db)
    assert kept == counted
    assert sum(n for n, _ in counted.values()) < len(filed)  # some were resolved
    assert any(u for _, u in counted.values())
    assert seeded.unit_ids["26737-KP1"] in counted


async def test_0013_fills_the_counts_from_the_reports_already_filed(db_url: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(db_url),
                            "0012_tokens_several_bots")
    database = Database(db_url)
    now = utcnow()
    async with database.transaction() as session:
        unit = await session.scalar(sa.text(
            "INSERT INTO units (code, name, level, path, created_at, updated_at) "
            "VALUES ('u1', 'Khu phố 1', 'quarter', '/1/', :now, :now) RETURNING id"
        ).bindparams(now=now))
        household = await session.scalar(sa.text(
            "INSERT INTO households (unit_id, code, search_key, members, elderly_alone, "
            "disability, poor, near_poor, young_children, pregnant, created_at, updated_at) "
            "VALUES (:unit, '12', '12', 2, false, false, false, false, false, false, :now, "
            ":now) RETURNING id").bindparams(unit=unit, now=now))
        for urgent, status in ((True, "open"), (False, "open"), (True, "resolved"),
                               (False, "open")):
            await session.execute(sa.text(
                "INSERT INTO reports (household_id, unit_id, category_key, people_count, "
                "urgent, status, created_at, updated_at) VALUES (:household, :unit, 'f0', 1, "
                ":urgent, :status, :now, :now)").bindparams(
                    household=household, unit=unit, urgent=urgent, status=status, now=now))
    await database.dispose()
    await upgrade_async(db_url)
    database = Database(db_url)
    try:
        assert await _kept(database) == {unit: (3, 1)}
        assert await _counted(database) == {unit: (3, 1)}
    finally:
        await database.dispose()
