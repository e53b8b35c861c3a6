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
from storage.models import Base, Channel, ChatAccount, Conversation, utcnow


def _drift(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_no_drift_between_models_and_migrations(db: Database) -> None:
    async with db.engine.connect() as connection:
        drift = await connection.run_sync(_drift)
    assert drift == [], "write a migration: the models changed"


def test_one_head() -> None:
    assert len(current_heads()) == 1


async def test_0005_turns_old_histories_into_the_bounded_typed_one(db_url: str) -> None:
    """Rows saved before 0005 (a stack with or without 'asked') go back as they did then."""
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0004")
    database = Database(db_url)
    now = utcnow()
    long_stack = [f"s{i}" for i in range(120)]
    async with database.transaction() as session:
        accounts = [ChatAccount(channel=Channel.WEB, external_id=f"m{i}") for i in range(3)]
        session.add_all(accounts)
        await session.flush()
        rows = [
            (accounts[0], {"a": "1", "b": "2"}, {"stack": ["a", "b"],
                                                 "asked": [{}, {"a": "1"}]}),
            (accounts[1], {"a": "1", "b": "2", "c": "3"}, {"stack": ["a", "b"]}),
            (accounts[2], {}, {"stack": long_stack, "asked": [{"n": i} for i in range(120)]}),
        ]
        for account, data, history in rows:
            await session.execute(sa.insert(Conversation.__table__).values(
                chat_account_id=account.id, flow="f", step="c", question="q", data=data,
                history=history, started_at=now, updated_at=now))
    await upgrade_async(db_url)
    async with database.read() as session:
        found = {c.chat_account_id: History.from_json(c.history) for c in
                 (await session.execute(sa.select(Conversation))).scalars()}
    await database.dispose()
    assert found[accounts[0].id].visits == [Visit("a", {}), Visit("b", {"a": "1"})]
    # Without 'asked': each step's answers are the row's minus that step's and later ones.
    assert found[accounts[1].id].visits == [Visit("a", {"c": "3"}), Visit("b", {"a": "1",
                                                                                "c": "3"})]
    assert found[accounts[2].id].visits == [Visit(f"s{i}", {"n": i}) for i in range(70, 120)]
    assert len(found[accounts[2].id].visits) == HISTORY_LIMIT
