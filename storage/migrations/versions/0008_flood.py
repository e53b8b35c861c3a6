"""flood: a fair outbox claim, per-chat flood control, the parts of a message sent

The claim takes each chat's first unsettled row (storage.outbox.claim): a partial index on
the unsettled rows in the order they go out replaces the index over every status. Chat
accounts count their updates over a minute and remember when a stranger was last told to ask
for an invite (bot/handlers/flood.py). Outbox rows remember how many parts of a split
message went out, so a retry sends only the rest (issue 11, item 14).

Revision ID: 0008_flood
Revises: 0007_engine
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_flood"
down_revision = "0007_engine"
branch_labels = None
depends_on = None

UNSETTLED_SQL = "status IN ('pending', 'sending')"


def upgrade() -> None:
    with op.batch_alter_table("chat_accounts") as batch_op:
        batch_op.add_column(sa.Column("flood_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("flood_count", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("invite_hint_at", sa.DateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("parts_sent", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.drop_index("ix_outbox_due")
    op.create_index("ix_outbox_unsettled", "outbox", ["channel", "priority", "id"],
                    unique=False, postgresql_where=sa.text(UNSETTLED_SQL),
                    sqlite_where=sa.text(UNSETTLED_SQL))


def downgrade() -> None:
    op.drop_index("ix_outbox_unsettled", table_name="outbox")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.create_index("ix_outbox_due", ["channel", "status", "priority", "id"],
                              unique=False)
        batch_op.drop_column("parts_sent")
    with op.batch_alter_table("chat_accounts") as batch_op:
        batch_op.drop_column("invite_hint_at")
        batch_op.drop_column("flood_count")
        batch_op.drop_column("flood_since")
