"""engine: a conversation's history typed and bounded

Before, conversations.history was {"stack": [step keys], "asked": [answers when asked]}
(rows saved before "asked" existed have only the stack) and grew by one entry per answer
without end: ticking a flag 1,800 times gave a 273 KB row. Now it is
storage.conversations.History: {"back": [{"step": key, "answers": {...}}]}, the last 50.
A row without "asked" gets, for each step, the answers minus that step's and later steps'
keys: what 'back' did for such rows before.

Revision ID: 0007_engine
Revises: 0006_input
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_engine"
down_revision = "0006_input"
branch_labels = None
depends_on = None

LIMIT = 50  # storage.conversations.HISTORY_LIMIT when this was written
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
conversations = sa.table("conversations", sa.column("id", sa.Integer),
                         sa.column("data", _JSON), sa.column("history", _JSON))


def to_back(history: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    if "back" in history:
        return {"back": list(history["back"])[-LIMIT:]}
    stack = [str(key) for key in history.get("stack", [])]
    asked = list(history.get("asked", []))
    if len(asked) != len(stack):
        asked = [{key: value for key, value in data.items() if key not in stack[index:]}
                 for index in range(len(stack))]
    visits = [{"step": key, "answers": dict(answers)} for key, answers in zip(stack, asked)]
    return {"back": visits[-LIMIT:]}


def to_stack(history: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    visits = history.get("back", [])
    return {"stack": [visit["step"] for visit in visits],
            "asked": [visit["answers"] for visit in visits]}


def _rewrite(convert: Any) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(conversations.c.id, conversations.c.data,
                                  conversations.c.history)).all()
    for row in rows:
        bind.execute(conversations.update().where(conversations.c.id == row.id)
                     .values(history=convert(row.history or {}, row.data or {})))


def upgrade() -> None:
    _rewrite(to_back)


def downgrade() -> None:
    _rewrite(to_stack)
