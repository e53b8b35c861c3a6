"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.migrate import current_heads
from storage.models import Base


def _drift(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_no_drift_between_models_and_migrations(db: Database) -> None:
    async with db.engine.connect() as connection:
        drift = await connection.run_sync(_drift)
    assert drift == [], "write a migration: the models changed"


def test_one_head() -> None:
    assert len(current_heads()) == 1
