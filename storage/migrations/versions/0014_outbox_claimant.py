"""outbox claimant: which process claimed a row, so a dead process's claims are freed at once

Revision ID: 0014_outbox_claimant
Revises: 0013_unit_report_counts
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_outbox_claimant"
down_revision = "0013_unit_report_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
