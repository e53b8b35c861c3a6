"""several bots per channel: the bot a chat account talks to and an outbox row goes through

TELEGRAM_BOT_TOKENS / ZALO_BOT_TOKENS; NULL (an account) and "" (a row) are the default bot,
so everything made before stays with the bot it was made on.

Revision ID: 0012_tokens_several_bots
Revises: 0011_report_assignee
Create Date: 2026-12-03 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_tokens_several_bots"
down_revision = "0011_report_assignee"
branch_labels = None
depends_on = None

UNSETTLED_SQL = "status IN ('pending', 'sending')"


def upgrade() -> None:
    with op.batch_alter_table("chat_accounts") as batch_op:
        batch_op.add_column(sa.Column("bot", sa.String(length=32), nullable=True))
    op.drop_index("ix_outbox_unsettled", table_name="outbox")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("bot", sa.String(length=32), server_default="",
                                      nullable=False))
    # Each bot's sender scans its own rows only.
    op.create_index("ix_outbox_unsettled", "outbox", ["channel", "bot", "priority", "id"],
                    unique=False, postgresql_where=sa.text(UNSETTLED_SQL),
                    sqlite_where=sa.text(UNSETTLED_SQL))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not batch mode: its copy-and-drop of
    # chat_accounts fails on the foreign keys of a database that holds outbox rows.
    op.drop_index("ix_outbox_unsettled", table_name="outbox")
    op.drop_column("outbox", "bot")
    op.create_index("ix_outbox_unsettled", "outbox", ["channel", "priority", "id"],
                    unique=False, postgresql_where=sa.text(UNSETTLED_SQL),
                    sqlite_where=sa.text(UNSETTLED_SQL))
    op.drop_column("chat_accounts", "bot")
