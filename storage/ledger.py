"""The processed-update ledger: each (channel, update id) takes effect once."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedUpdate


async def claim(session: AsyncSession, channel: str, update_id: str) -> bool:
    """Enter the update in the ledger; False when it was there already (a redelivery).

    Runs inside the transaction that carries the update's effects, so an update whose
    handling fails is not marked processed and the platform's redelivery is handled anew.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(ProcessedUpdate)
        .values(channel=channel, update_id=update_id)
        .on_conflict_do_nothing(index_elements=["channel", "update_id"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]
