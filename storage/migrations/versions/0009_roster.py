"""roster: posts, the posts of each unit, who held which post when, phones, person invites

A post (trưởng khu phố, tổ trưởng ...) is a catalogue row mapped to a Coso role; a unit's
post is a seat, vacant or held; a holding carries the role grant its holder has. People gain
an optional phone; invites may be bound to a person or to a vacant post.

Revision ID: 0009_roster
Revises: 0008_flood
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_roster"
# HELPER.md asks for "0004"; main already carries 0005_catalog, and two heads would not
# upgrade. The lead re-chains when merging.
down_revision = "0008_flood"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)
HEADS = ["quarter", "hamlet", "village"]

# key, Vietnamese, English, role, unit levels
DEFAULT_POSTS = (
    ("truong_khu_pho", "Trưởng khu phố / Trưởng ấp", "Head of quarter / hamlet", "leader",
     HEADS),
    ("pho_truong", "Phó trưởng khu phố / Phó trưởng ấp", "Deputy head of quarter / hamlet",
     "leader", HEADS),
    ("to_truong", "Tổ trưởng tổ dân phố", "Head of residential group", "leader", ["group"]),
    ("bi_thu_chi_bo", "Bí thư chi bộ", "Party cell secretary", "monitor", HEADS),
    ("truong_ban_mttq", "Trưởng ban công tác Mặt trận", "Head of the Front work committee",
     "monitor", HEADS),
)


def upgrade() -> None:
    posts = op.create_table(
        "posts",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("label_vi", sa.String(length=200), nullable=False),
        sa.Column("label_en", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("levels", JSON, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_posts")),
    )
    op.create_table(
        "unit_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("post_key", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("vacant_since", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["post_key"], ["posts.key"],
                                name=op.f("fk_unit_posts_post_key_posts")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_unit_posts_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_posts")),
        sa.UniqueConstraint("unit_id", "post_key", name=op.f("uq_unit_posts_unit_id")),
    )
    op.create_index(op.f("ix_unit_posts_unit_id"), "unit_posts", ["unit_id"], unique=False)
    op.create_table(
        "post_holdings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_post_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role_assignment_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"],
                                name=op.f("fk_post_holdings_person_id_people")),
        sa.ForeignKeyConstraint(["role_assignment_id"], ["role_assignments.id"],
                                name=op.f("fk_post_holdings_role_assignment_id_role_assignments")),
        sa.ForeignKeyConstraint(["unit_post_id"], ["unit_posts.id"],
                                name=op.f("fk_post_holdings_unit_post_id_unit_posts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_holdings")),
    )
    op.create_index(op.f("ix_post_holdings_person_id"), "post_holdings", ["person_id"],
                    unique=False)
    op.create_index(op.f("ix_post_holdings_unit_post_id"), "post_holdings", ["unit_post_id"],
                    unique=False)
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("unit_post_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_invites_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invites_unit_post_id"), ["unit_post_id"],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_invites_person_id_people"), "people",
                                    ["person_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_invites_unit_post_id_unit_posts"),
                                    "unit_posts", ["unit_post_id"], ["id"])
    op.bulk_insert(posts, [
        {"key": key, "label_vi": vi, "label_en": en, "role": role, "levels": levels,
         "position": position, "active": True}
        for position, (key, vi, en, role, levels) in enumerate(DEFAULT_POSTS)])


def downgrade() -> None:
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_invites_unit_post_id_unit_posts"),
                                 type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_invites_person_id_people"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_invites_unit_post_id"))
        batch_op.drop_index(batch_op.f("ix_invites_person_id"))
        batch_op.drop_column("unit_post_id")
        batch_op.drop_column("person_id")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("phone")
    op.drop_index(op.f("ix_post_holdings_unit_post_id"), table_name="post_holdings")
    op.drop_index(op.f("ix_post_holdings_person_id"), table_name="post_holdings")
    op.drop_table("post_holdings")
    op.drop_index(op.f("ix_unit_posts_unit_id"), table_name="unit_posts")
    op.drop_table("unit_posts")
    op.drop_table("posts")
