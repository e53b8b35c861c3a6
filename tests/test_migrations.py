"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage import migrate
from storage.conversations import HISTORY_LIMIT, History, Visit
from storage.db import Database
from storage.health import applied_revisions
from storage.migrate import alembic_config, current_heads, upgrade_async, upgrade_if_behind
from storage.models import Base, Conversation, Platform, utcnow


def _drift(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_no_drift_between_models_and_migrations(db: Database) -> None:
    async with db.engine.connect() as connection:
        drift = await connection.run_sync(_drift)
    assert drift == [], "write a migration: the models changed"


def test_one_head() -> None:
    assert len(current_heads()) == 1


def test_the_heads_read_from_the_files_are_alembics() -> None:
    """current_heads() reads the migrations' files itself (the running bot loads no alembic):
    it must agree with alembic's own reading of them."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert current_heads() == tuple(sorted(scripts.get_heads()))


async def test_a_database_at_the_head_is_not_migrated_again(
        db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_alembic(url: str, revision: str = "head") -> None:
        raise AssertionError("alembic ran on a database at the head")

    monkeypatch.setattr(migrate, "upgrade", no_alembic)
    assert await upgrade_if_behind(db, db_url) is False


async def test_a_database_behind_or_new_is_migrated(db: Database, db_url: str,
                                                   tmp_path: Path) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0013_unit_report_counts")
    assert await upgrade_if_behind(db, db_url) is True
    async with db.read() as session:
        assert await applied_revisions(session) == set(current_heads())
    new_url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    new = Database(new_url)
    try:
        assert await upgrade_if_behind(new, new_url) is True
        async with new.read() as session:
            assert await applied_revisions(session) == set(current_heads())
    finally:
        await new.dispose()


async def test_0007_turns_old_histories_into_the_bounded_typed_one(db_url: str) -> None:
    """Rows saved before 0007_engine (a stack with or without 'asked') go back as they did."""
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0006_input")
    database = Database(db_url)
    now = utcnow()
    long_stack = [f"s{i}" for i in range(120)]
    # The accounts as the schema of then has them (later migrations may add columns).
    old_accounts = sa.table("chat_accounts", sa.column("id"), sa.column("channel"),
                            sa.column("external_id"), sa.column("created_at"))
    async with database.transaction() as session:
        accounts = [await session.scalar(sa.insert(old_accounts).values(
            channel=Platform.WEB.value, external_id=f"m{i}", created_at=now
        ).returning(old_accounts.c.id)) for i in range(3)]
        rows = [
            (accounts[0], {"a": "1", "b": "2"}, {"stack": ["a", "b"],
                                                 "asked": [{}, {"a": "1"}]}),
            (accounts[1], {"a": "1", "b": "2", "c": "3"}, {"stack": ["a", "b"]}),
            (accounts[2], {}, {"stack": long_stack, "asked": [{"n": i} for i in range(120)]}),
        ]
        for account, data, history in rows:
            await session.execute(sa.insert(Conversation.__table__).values(
                chat_account_id=account, flow="f", step="c", question="q", data=data,
                history=history, started_at=now, updated_at=now))
    await upgrade_async(db_url)
    async with database.read() as session:
        found = {c.chat_account_id: History.from_json(c.history) for c in
                 (await session.execute(sa.select(Conversation))).scalars()}
    await database.dispose()
    assert found[accounts[0]].visits == [Visit("a", {}), Visit("b", {"a": "1"})]
    # Without 'asked': each step's answers are the row's minus that step's and later ones.
    assert found[accounts[1]].visits == [Visit("a", {"c": "3"}), Visit("b", {"a": "1",
                                                                                "c": "3"})]
    assert found[accounts[2]].visits == [Visit(f"s{i}", {"n": i}) for i in range(70, 120)]
    assert len(found[accounts[2]].visits) == HISTORY_LIMIT


async def test_0011_adds_the_assignee_to_reports_filed_before_it(db_url: str) -> None:
    """A report filed before 0011_report_assignee comes through it unassigned, and the
    downgrade drops the columns again."""
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0010_dashboard")
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
        await session.execute(sa.text(
            "INSERT INTO reports (household_id, unit_id, category_key, people_count, urgent, "
            "status, created_at, updated_at) VALUES (:household, :unit, 'f0', 1, true, "
            "'open', :now, :now)").bindparams(household=household, unit=unit, now=now))
    await database.dispose()
    await upgrade_async(db_url)
    database = Database(db_url)
    async with database.read() as session:
        assert (await session.execute(sa.text(
            "SELECT assigned_to_person_id, assigned_at FROM reports"))).all() == [(None, None)]
    await database.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0010_dashboard")
    database = Database(db_url)
    async with database.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("reports")})
    await database.dispose()
    assert "assigned_to_person_id" not in columns and "urgent" in columns
    await upgrade_async(db_url)
