"""invite failures: the back-off against guessing invite codes in chat

Each refused code is a row (who tried, when) for a day; five within ten minutes refuse the
next tries for ten minutes without checking them (storage.invites.locked_until).

Revision ID: 0006_input
Revises: 0005_catalog
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_input"
down_revision = "0005_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invite_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invite_failures")),
    )
    with op.batch_alter_table("invite_failures") as batch_op:
        batch_op.create_index("ix_invite_failures_key_at", ["key", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_invite_failures_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invite_failures") as batch_op:
        batch_op.drop_index(batch_op.f("ix_invite_failures_at"))
        batch_op.drop_index("ix_invite_failures_key_at")
    op.drop_table("invite_failures")
