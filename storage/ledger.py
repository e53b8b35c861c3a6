"""The processed-update ledger: each (channel, update id) takes effect once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedUpdate, utcnow
from storage.people import TURN_LOCK_NAMESPACE


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


def _turn_claim_statement() -> Any:
    """PostgreSQL: the chat's turn lock (storage.people.lock_turn) taken by the claim itself,
    one statement where there were two: the row is inserted from a SELECT that first waits
    for the lock. The INSERT's conflict check reads the key as committed by then (a
    redelivery handled meanwhile by another process is seen), and the turn's next statement
    takes its snapshot after the lock, as it did after lock_turn's own statement."""
    turn_lock = select(func.pg_advisory_xact_lock(
        literal(TURN_LOCK_NAMESPACE),
        func.hashtext(bindparam("channel") + literal("/") + bindparam("external_id")),
    ).label("locked")).subquery("turn_lock")
    rows = select(bindparam("channel"), bindparam("update_id"),
                  bindparam("processed_at", type_=ProcessedUpdate.__table__.c.processed_at.type)
                  ).select_from(turn_lock)
    return (pg_insert(ProcessedUpdate)
            .from_select(["channel", "update_id", "processed_at"], rows)
            .on_conflict_do_nothing(index_elements=["channel", "update_id"]))


_TURN_CLAIM: list[Any] = []


async def claim_turn(session: AsyncSession, channel: str, update_id: str, external_id: str
                     ) -> bool:
    """claim(), and the chat's turn lock with it (storage.people.lock_turn): on PostgreSQL in
    the claim's own statement; elsewhere (SQLite's BEGIN IMMEDIATE holds the file) the
    claim alone. The sender is then read with storage.people.sender_of(locked=True)."""
    if session.get_bind().dialect.name != "postgresql":
        return await claim(session, channel, update_id)
    if not _TURN_CLAIM:
        _TURN_CLAIM.append(_turn_claim_statement())
    connection = await session.connection()
    result = await connection.execute(_TURN_CLAIM[0], {
        "channel": channel, "update_id": update_id, "external_id": external_id,
        "processed_at": utcnow()})
    return bool(result.rowcount)
