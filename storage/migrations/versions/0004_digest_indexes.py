"""digest indexes: a ward's reports counted from indexes alone

The digest's GROUP BYs over a ward's reports (storage.digest) read only these columns; with
them in the index neither SQLite nor PostgreSQL visits the table. Its count of the last
week's directives takes a range on their creation time. Eligibility carries the household's
unit, as reports and deliveries do, so a ward's coverage is counted without a join that
PostgreSQL answered by reading every eligibility row of the city. Figures in
docs/performance.md ("Digest").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD = {"ix_reports_unit_created": ["unit_id", "created_at"],
       "ix_reports_unit_status": ["unit_id", "status"]}
NEW = {"ix_reports_unit_created": ["unit_id", "created_at", "category_key"],
       "ix_reports_unit_status": ["unit_id", "status", "created_at", "urgent", "category_key"],
       "ix_reports_unit_resolved": ["unit_id", "resolved_at", "category_key", "created_at"]}


def _replace(drop: dict[str, list[str]], create: dict[str, list[str]]) -> None:
    with op.batch_alter_table("reports") as batch_op:
        for name in drop:
            batch_op.drop_index(name)
        for name, columns in create.items():
            batch_op.create_index(name, columns, unique=False)


def upgrade() -> None:
    _replace(OLD, NEW)
    with op.batch_alter_table("directives") as batch_op:
        batch_op.create_index(batch_op.f("ix_directives_created_at"), ["created_at"],
                              unique=False)
    with op.batch_alter_table("support_eligibility") as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
    op.execute("UPDATE support_eligibility SET unit_id = (SELECT households.unit_id FROM "
               "households WHERE households.id = support_eligibility.household_id)")
    with op.batch_alter_table("support_eligibility") as batch_op:
        batch_op.alter_column("unit_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f("fk_support_eligibility_unit_id_units"),
                                    "units", ["unit_id"], ["id"])
        batch_op.create_index("ix_support_eligibility_unit_policy", ["unit_id", "policy_key"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("support_eligibility") as batch_op:
        batch_op.drop_index("ix_support_eligibility_unit_policy")
        batch_op.drop_constraint(batch_op.f("fk_support_eligibility_unit_id_units"),
                                 type_="foreignkey")
        batch_op.drop_column("unit_id")
    with op.batch_alter_table("directives") as batch_op:
        batch_op.drop_index(batch_op.f("ix_directives_created_at"))
    _replace(NEW, OLD)
