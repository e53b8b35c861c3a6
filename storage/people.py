"""People, their chat accounts and their roles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from storage import flood
from storage.db import write_changes
from storage.models import (
    ChatAccount,
    Conversation,
    OutboxMessage,
    Person,
    PostHolding,
    RoleAssignment,
    Unit,
    UnitPost,
    WebSession,
    utcnow,
)


@dataclass(frozen=True)
class Grant:
    """One active role on one unit (and so on its subtree)."""

    role: str
    unit: Unit


async def account_for(session: AsyncSession, channel: str, external_id: str, *,
                      lock: bool = False) -> ChatAccount:
    """The chat account for this sender, created on first contact.

    lock=True holds the row for the rest of the transaction (PostgreSQL, FOR NO KEY UPDATE:
    see _sender_query), so two updates of one person take turns on that person's
    conversation.
    """
    # The person comes in the same query: every update needs them (person_of then reads
    # the session's identity map, not the database).
    query = (select(ChatAccount).where(ChatAccount.channel == channel,
                                       ChatAccount.external_id == external_id)
             .options(joinedload(ChatAccount.person)))
    if lock:
        query = query.with_for_update(of=ChatAccount, key_share=True)
    account = (await session.execute(query)).scalar_one_or_none()
    if account is None:
        account = ChatAccount(channel=channel, external_id=external_id)
        session.add(account)
        await session.flush()
    return account


@dataclass
class Sender:
    """Who sent an update, read at the start of its turn: the account (locked), its person
    when active, their grants, and the account's open conversation. `counted`: this update
    is already counted on the account's flood window (storage.flood), by the read itself."""

    account: ChatAccount
    person: Person | None
    grants: list[Grant]
    conversation: Conversation | None
    counted: bool = False


def _joined(account: Any) -> Any:
    """The sender's rows: the account (the table, or the counting UPDATE's rows) with its
    active person, open conversation and active grants, a row per grant."""
    return (
        select(account, Person, Conversation, RoleAssignment, Unit)
        .outerjoin(Person, (Person.id == account.person_id) & Person.active.is_(True))
        .outerjoin(Conversation, Conversation.chat_account_id == account.id)
        .outerjoin(RoleAssignment, (RoleAssignment.person_id == Person.id)
                   & RoleAssignment.active.is_(True))
        .outerjoin(Unit, Unit.id == RoleAssignment.unit_id)
        .order_by(RoleAssignment.id)
    )


def _counting_sender_query() -> Any:
    """PostgreSQL: the sender read and the update counted on the account's flood window in
    one statement (it was a SELECT and then the account's UPDATE): the UPDATE … RETURNING
    in a WITH, the person, conversation and grants joined to the row it returns. The
    UPDATE locks the row as FOR NO KEY UPDATE did (no key column changes), and the count
    is storage.flood.count_update's, in SQL: a window begins at the first update after
    the last one ended (flood_since at or before now − WINDOW)."""
    table = ChatAccount.__table__
    assert isinstance(table, Table)
    stamp = table.c.flood_since.type
    new_window = or_(table.c.flood_since.is_(None),
                     table.c.flood_since <= bindparam("window_start", type_=stamp))
    counted = (
        update(table)
        # Not "channel" and "external_id": in an UPDATE those names are the SET values'.
        .where(table.c.channel == bindparam("of_channel"),
               table.c.external_id == bindparam("of_external_id"))
        .values(flood_since=case((new_window, bindparam("flood_now", type_=stamp)),
                                 else_=table.c.flood_since),
                flood_count=case((new_window, literal(1)),
                                 else_=func.coalesce(table.c.flood_count, 0) + 1))
        .returning(*table.c)
        .cte("counted")
    )
    # populate_existing: an account already in the session takes the counted values.
    return _joined(aliased(ChatAccount, counted)).execution_options(populate_existing=True)


def _sender_query(dialect: str) -> Any:
    """One statement for what every turn reads (it was four: account, person, grants and
    conversation); a row per active grant, or one with NULLs. Built once per dialect."""
    query = _joined(ChatAccount).where(ChatAccount.channel == bindparam("channel"),
                                       ChatAccount.external_id == bindparam("external_id"))
    if dialect == "postgresql":  # SQLite: the turn's BEGIN IMMEDIATE holds the file
        # FOR NO KEY UPDATE, not FOR UPDATE: it still excludes another turn of this account
        # and the deletion of the row (storage.people.purge_strangers), but not the FOR KEY
        # SHARE a foreign key check takes. Another person's turn that queues a message to
        # this account (an outbox row pointing at it) then goes on instead of waiting for
        # this turn to end; with FOR UPDATE, two ward staff taking one urgent alert at the
        # same instant waited on each other's account (storage.reports.take).
        query = query.with_for_update(of=ChatAccount, key_share=True)
    return query


# pg_advisory_xact_lock(namespace, key): the first int4 keeps Coso's locks apart from those any
# other program on the same database takes. hashtext() of "channel/external id": two
# accounts sharing a hash only take turns with each other, which is harmless.
TURN_LOCK_NAMESPACE = 0x636F  # "co"
_TURN_LOCK = select(func.pg_advisory_xact_lock(
    literal(TURN_LOCK_NAMESPACE),
    func.hashtext(bindparam("channel") + literal("/") + bindparam("external_id"))))


async def lock_turn(session: AsyncSession, channel: str, external_id: str) -> None:
    """Take this chat's turn lock (PostgreSQL; SQLite's BEGIN IMMEDIATE holds the file).

    Its own statement, before anything of the chat is read. On PostgreSQL (READ COMMITTED)
    a statement's snapshot is taken when it starts: a sender query that waited on the row
    lock of another process's turn would get the account row as that turn left it, but
    the joined rows (the open conversation, the grants) as they were before it, so the
    second of two updates handled at once by two processes would answer the question the
    first had already moved past. Waiting here instead, the query that follows starts
    after the other turn committed and sees all of it. Held until the transaction ends.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_TURN_LOCK, {"channel": channel, "external_id": external_id})


_SENDER_QUERIES: dict[str, Any] = {}

# session.info key: the open conversation read with the sender, {account id: conversation},
# taken (once) by storage.conversations.of_account instead of a query of its own.
PREFETCHED_CONVERSATION = "prefetched_conversation"


async def sender_of(session: AsyncSession, channel: str, external_id: str, *,
                    locked: bool = False, count_at: datetime | None = None) -> Sender:
    """The sender of an update, locked for the turn (lock_turn, then the account row as
    account_for(lock=True)), created on first contact; their conversation is kept for
    conversations.of_account.

    locked: the turn lock is held already (storage.ledger.claim_turn). count_at: on
    PostgreSQL, count this update on the account's flood window at that time in the same
    statement (Sender.counted); elsewhere, and for an account created here, the caller
    counts it (storage.flood.count_update) and saves the account."""
    if not locked:
        await lock_turn(session, channel, external_id)
    dialect = session.get_bind().dialect.name
    values: dict[str, Any] = {"channel": channel, "external_id": external_id}
    counting = count_at is not None and dialect == "postgresql"
    if counting:
        assert count_at is not None
        query = _SENDER_QUERIES.get("postgresql+count")
        if query is None:
            query = _SENDER_QUERIES["postgresql+count"] = _counting_sender_query()
        values = {"of_channel": channel, "of_external_id": external_id,
                  "flood_now": count_at, "window_start": count_at - flood.WINDOW}
    else:
        query = _SENDER_QUERIES.get(dialect)
        if query is None:
            query = _SENDER_QUERIES[dialect] = _sender_query(dialect)
    rows = (await session.execute(query, values)).all()
    if not rows:
        account = await account_for(session, channel, external_id, lock=True)
        session.info[PREFETCHED_CONVERSATION] = {account.id: None}
        return Sender(account, None, [], None)
    account, person, conversation = rows[0][0], rows[0][1], rows[0][2]
    # The relationship as loaded (None for a deactivated person too: nothing reads it then),
    # so nothing lazy-loads it later.
    set_committed_value(account, "person", person)
    found: list[Grant] = []
    seen: set[tuple[str, int]] = set()
    for *_, role, unit in rows:
        if role is not None and unit is not None and (role.role, role.unit_id) not in seen:
            seen.add((role.role, role.unit_id))
            found.append(Grant(role.role, unit))
    session.info[PREFETCHED_CONVERSATION] = {account.id: conversation}
    return Sender(account, person, found, conversation, counted=counting)


async def save_account(session: AsyncSession, account: ChatAccount) -> None:
    """Write the account's changed columns now (a turn's flood count, an unblock, a language
    noted): one Core UPDATE, not the ORM's flush (docs/performance.md, hot path)."""
    await write_changes(session, account)


async def person_of(session: AsyncSession, account: ChatAccount) -> Person | None:
    if account.person_id is None:
        return None
    person = await session.get(Person, account.person_id)
    return person if person is not None and person.active else None


async def grants(session: AsyncSession, person: Person | None) -> list[Grant]:
    if person is None:
        return []
    query = (
        select(RoleAssignment)
        .where(RoleAssignment.person_id == person.id, RoleAssignment.active.is_(True))
        .options(joinedload(RoleAssignment.unit, innerjoin=True))
        .order_by(RoleAssignment.id)
    )
    rows = (await session.execute(query)).scalars().all()
    # Holding two posts may give the same role on the same unit twice: one grant.
    seen: set[tuple[str, int]] = set()
    found = []
    for row in rows:
        if (row.role, row.unit_id) not in seen:
            seen.add((row.role, row.unit_id))
            found.append(Grant(row.role, row.unit))
    return found


async def assign(session: AsyncSession, person: Person, unit: Unit, role: str) -> RoleAssignment:
    """Give the role on the unit unless the person already holds exactly that."""
    query = select(RoleAssignment).where(
        RoleAssignment.person_id == person.id, RoleAssignment.unit_id == unit.id,
        RoleAssignment.role == role, RoleAssignment.active.is_(True))
    existing = (await session.execute(query)).scalar_one_or_none()
    if existing is not None:
        return existing
    assignment = RoleAssignment(person_id=person.id, unit_id=unit.id, role=role)
    session.add(assignment)
    await session.flush()
    return assignment


async def deactivate(session: AsyncSession, person: Person) -> None:
    """End the person's roles; their accounts then count as strangers. History stays."""
    now = utcnow()
    person.active, person.deactivated_at = False, now
    roles = (await session.execute(select(RoleAssignment).where(
        RoleAssignment.person_id == person.id, RoleAssignment.active.is_(True)))).scalars()
    for role in roles:
        role.active, role.ended_at = False, now
    # Their posts fall vacant from now (storage/roster.py keeps who held them when).
    holdings = (await session.execute(select(PostHolding).where(
        PostHolding.person_id == person.id, PostHolding.ended_at.is_(None)))).scalars()
    for holding in holdings:
        holding.ended_at = now
        seat = await session.get(UnitPost, holding.unit_post_id)
        if seat is not None:
            seat.vacant_since = now


async def list_people(session: AsyncSession, *, include_inactive: bool = False
                      ) -> Sequence[Person]:
    query = select(Person).options(
        selectinload(Person.roles).selectinload(RoleAssignment.unit),
        selectinload(Person.accounts),
    ).order_by(Person.id)
    if not include_inactive:
        query = query.where(Person.active.is_(True))
    return (await session.execute(query)).scalars().all()


async def purge_strangers(session: AsyncSession, idle_since: datetime, limit: int = 1000
                          ) -> int:
    """Delete chat accounts that never registered and were idle since `idle_since`: created
    before it, with no message to them and no conversation moving since. A failed login or a
    passing stranger otherwise leaves a row (and its replies) forever. The ledger is keyed by
    the update, not the account, so a redelivered old update is still recognised.

    The accounts are locked first, skipping any an update is being handled for right now
    (the router holds its account's row), so no reply can be written to a deleted account.
    """
    recent_message = exists().where(OutboxMessage.chat_account_id == ChatAccount.id,
                                    OutboxMessage.created_at >= idle_since)
    recent_talk = exists().where(Conversation.chat_account_id == ChatAccount.id,
                                 Conversation.updated_at >= idle_since)
    logged_in = exists().where(WebSession.chat_account_id == ChatAccount.id)
    query = (select(ChatAccount.id)
             .where(ChatAccount.person_id.is_(None), ChatAccount.created_at < idle_since,
                    ~recent_message, ~recent_talk, ~logged_in)
             .order_by(ChatAccount.id).limit(limit)
             .with_for_update(skip_locked=True))
    ids = list((await session.execute(query)).scalars())
    if not ids:
        return 0
    for table in (Conversation, OutboxMessage, WebSession):
        await session.execute(delete(table).where(table.chat_account_id.in_(ids)))
    await session.execute(delete(ChatAccount).where(ChatAccount.id.in_(ids)))
    return len(ids)


async def accounts_of(session: AsyncSession, person: Person) -> Sequence[ChatAccount]:
    """The person's chat accounts, oldest first."""
    return (await session.execute(select(ChatAccount).where(
        ChatAccount.person_id == person.id).order_by(ChatAccount.id))).scalars().all()


async def active_accounts(session: AsyncSession, person_ids: Iterable[int]
                          ) -> list[tuple[ChatAccount, Person]]:
    """Every chat account of the given people who are active, with its person."""
    query = (select(ChatAccount, Person).join(Person, Person.id == ChatAccount.person_id)
             .where(Person.id.in_(set(person_ids)), Person.active.is_(True))
             .order_by(ChatAccount.id))
    return [(account, person) for account, person in (await session.execute(query)).all()]


async def holders_over(session: AsyncSession, unit: Unit, role: str) -> list[int]:
    """People holding `role` on this unit or any unit above it (who oversee it)."""
    ancestor_ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    query = select(RoleAssignment.person_id).where(
        RoleAssignment.unit_id.in_(ancestor_ids), RoleAssignment.role == role,
        RoleAssignment.active.is_(True)).distinct()
    return list((await session.execute(query)).scalars())


async def holders_within(session: AsyncSession, unit: Unit, role: str) -> list[int]:
    """People holding `role` on this unit or anywhere in its subtree."""
    query = (select(RoleAssignment.person_id).join(Unit, Unit.id == RoleAssignment.unit_id)
             .where(Unit.path.startswith(unit.path), RoleAssignment.role == role,
                    RoleAssignment.active.is_(True)).distinct())
    return list((await session.execute(query)).scalars())


async def holders_on(session: AsyncSession, unit: Unit, role: str) -> list[int]:
    """People holding `role` on exactly this unit (its leaders, say)."""
    query = select(RoleAssignment.person_id).where(
        RoleAssignment.unit_id == unit.id, RoleAssignment.role == role,
        RoleAssignment.active.is_(True)).distinct()
    return list((await session.execute(query)).scalars())
