"""report assignee: who took an urgent report from its alert, and when

Revision ID: 0011_report_assignee
Revises: 0010_dashboard
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_report_assignee"
down_revision = "0010_dashboard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_to_person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_reports_assigned_to_person_id_people"),
                                    "people", ["assigned_to_person_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_reports_assigned_to_person_id_people"),
                                 type_="foreignkey")
        batch_op.drop_column("assigned_at")
        batch_op.drop_column("assigned_to_person_id")
