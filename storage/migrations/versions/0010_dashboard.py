"""dashboard: the web dashboard's single-use links and browser sessions

Revision ID: 0010_dashboard
Revises: 0009_roster
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_dashboard"
down_revision = "0009_roster"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("link_hash", sa.String(length=64), nullable=False),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"],
                                name=op.f("fk_dashboard_sessions_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_sessions")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_dashboard_sessions_link_hash")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_dashboard_sessions_session_hash")),
    )
    with op.batch_alter_table("dashboard_sessions") as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboard_sessions_person_id"), ["person_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dashboard_sessions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboard_sessions_person_id"))
    op.drop_table("dashboard_sessions")
