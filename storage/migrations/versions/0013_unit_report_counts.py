"""unit report counts: each unit's open and open urgent reports, kept as they change

The city's page counted ~600,000 open reports on each view (~400 ms, already index-only);
it sums these per-unit counts instead (storage.reports.count_change keeps them in the same
transaction as the report's write). Filled here from the reports as they stand. Also: the
index a ward's acknowledgements read directive_recipients by, and the created_at and
resolved_at indexes the city's "after the day's end" corrections probe once.

Revision ID: 0013_unit_report_counts
Revises: 0012_tokens_several_bots
Create Date: 2026-12-04 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_unit_report_counts"
down_revision = "0012_tokens_several_bots"
branch_labels = None
depends_on = None

BACKFILL = (
    "INSERT INTO unit_report_counts (unit_id, open, open_urgent) "
    "SELECT unit_id, COUNT(*), SUM(CASE WHEN urgent THEN 1 ELSE 0 END) "
    "FROM reports WHERE status = 'open' GROUP BY unit_id")


def upgrade() -> None:
    op.create_table(
        "unit_report_counts",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("open_urgent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_unit_report_counts_unit_id_units")),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_unit_report_counts")),
    )
    op.execute(BACKFILL)
    op.create_index("ix_directive_recipients_unit", "directive_recipients",
                    ["unit_id", "directive_id"], unique=False)
    op.create_index("ix_reports_created", "reports", ["created_at"], unique=False)
    op.create_index("ix_reports_resolved", "reports", ["resolved_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reports_resolved", table_name="reports")
    op.drop_index("ix_reports_created", table_name="reports")
    op.drop_index("ix_directive_recipients_unit", table_name="directive_recipients")
    op.drop_table("unit_report_counts")
