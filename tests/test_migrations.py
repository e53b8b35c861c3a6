"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage.conversations import HISTORY_LIMIT, History, Visit
from storage.db import Database
from storage.migrate import alembic_config, current_heads, upgrade_async
from storage.models import Base, Conversation, Platform, utcnow


def _drift(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_no_drift_between_models_and_migrations(db: Database) -> None:
    async with db.engine.connect() as connection:
        drift = await connection.run_sync(_drift)
    assert drift == [], "write a migration: the models changed"


def test_one_head() -> None:
    assert len(current_heads()) == 1


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
