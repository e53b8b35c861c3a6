"""The processed-update ledger: each (channel, update id) takes effect once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedUpdate


def _claim_statement(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(ProcessedUpdate)
        .values(channel=bindparam("channel"), update_id=bindparam("update_id"))
        .on_conflict_do_nothing(index_elements=["channel", "update_id"])
    )


# Built once per dialect (every update runs it), then only executed with its values.
_CLAIMS: dict[str, Any] = {}


async def claim(session: AsyncSession, channel: str, update_id: str) -> bool:
    """Enter the update in the ledger; False when it was there already (a redelivery).

    Runs inside the transaction that carries the update's effects, so an update whose
    handling fails is not marked processed and the platform's redelivery is handled anew.
    """
    dialect = session.get_bind().dialect.name
    statement = _CLAIMS.get(dialect)
    if statement is None:
        statement = _CLAIMS[dialect] = _claim_statement(dialect)
    # On the connection: Core, not the ORM's bulk insert (which has no rowcount).
    connection = await session.connection()
    result = await connection.execute(statement, {"channel": channel, "update_id": update_id})
    return bool(result.rowcount)
