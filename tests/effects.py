"""The '# effects' block that ends each golden transcript: what the conversation committed.

Each row written ('+ table key: values' added, '~ table key: column: old → new' changed,
'- table key' deleted; times shown as <time> and dates as <date>, secrets and empty values
left out), and each message queued to someone who is not in the transcript ('→ channel id:',
then the message). Left out as bookkeeping: the ledger of updates, the outbox (its messages
to the transcript's people are the transcript) and the open conversation (the transcript
shows where it stands). As goflow's runner tests pin the session and events after each
resume, so a change that writes or sends more than it says shows in the diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from bot.messages import Outgoing
from storage.db import Database
from storage.models import Base, ChatAccount, OutboxMessage
from tests.chat import Chat, transcript_lines

EFFECTS = "# effects"
# Bookkeeping, not effects: the ledger of every update, the outbox (shown as messages), the
# conversation's own state (the transcript shows where it stands).
NOT_EFFECTS = {"processed_updates", "outbox", "conversations"}
SECRET = ("code_hash", "token_hash")  # random per run, and not for a reviewer's eyes
Rows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


async def _rows(db: Database) -> Rows:
    found: Rows = {}
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_EFFECTS:
                continue
            key = [column.name for column in table.primary_key.columns]
            rows = (await session.execute(select(table))).mappings().all()
            # The key names the row on its line, so its columns are left out of the values.
            found[table.name] = {tuple(row[k] for k in key):
                                 {k: v for k, v in row.items() if k not in key} for row in rows}
    return found


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return "<time>"
    if isinstance(value, date):
        return "<date>"
    return repr(value)


def _fields(row: dict[str, Any]) -> str:
    """The row's values, less empty ones and secrets."""
    return " ".join(f"{name}={_shown(value)}" for name, value in row.items()
                    if value is not None and value is not False and name not in SECRET)


def _row_effects(before: Rows, after: Rows) -> list[str]:
    lines = []
    for table, rows in after.items():
        old = before.get(table, {})
        for key in sorted(rows.keys() | old.keys(), key=repr):
            name = f"{table} {'/'.join(map(str, key))}"
            if key not in old:
                lines.append(f"+ {name}: {_fields(rows[key])}")
            elif key not in rows:
                lines.append(f"- {name}")
            elif changed := [f"{column}: {_shown(value)} → {_shown(rows[key][column])}"
                             for column, value in old[key].items()
                             if value != rows[key][column] and column not in SECRET]:
                lines.append(f"~ {name}: {', '.join(changed)}")
    return lines


async def _to_others(db: Database, chats: list[Chat], after_id: int) -> list[str]:
    """Messages queued since after_id to anyone but the transcript's people."""
    async with db.read() as session:
        rows = (await session.execute(
            select(OutboxMessage, ChatAccount).join(ChatAccount)
            .where(OutboxMessage.id > after_id).order_by(OutboxMessage.id))).all()
    speakers = {(chat.channel, chat.external_id) for chat in chats}
    lines = []
    for row, account in rows:
        if (account.channel, account.external_id) in speakers:
            continue
        lines.append(f"→ {account.channel} {account.external_id}:")
        lines += [f"  {line}" for line in transcript_lines([Outgoing.from_payload(row.payload)])]
    return lines or ["→ nothing to anyone else"]


async def _last_outbox_id(db: Database) -> int:
    async with db.read() as session:
        ids = (await session.execute(select(OutboxMessage.id))).scalars().all()
    return max(ids, default=0)




@dataclass
class Effects:
    """What the database held when the transcript began, to tell what it changed."""

    db: Database
    rows: Rows
    outbox_id: int

    @classmethod
    async def begin(cls, db: Database) -> Effects:
        return cls(db, await _rows(db), await _last_outbox_id(db))

    async def block(self, chats: list[Chat]) -> list[str]:
        """The '# effects' block: rows written, then messages queued to anyone else."""
        return [EFFECTS, *_row_effects(self.rows, await _rows(self.db)),
                *await _to_others(self.db, chats, self.outbox_id)]
