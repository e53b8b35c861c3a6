"""catalog: the city's own catalogues (situations, policies, scenarios) and drills by step

Situations gain the aliases typed in chat, urgent-by-default and a ward owner; policies a
legal basis and a validity; scenarios the expected minutes per step, the unit levels that
take part, a ward owner and a version. A drill keeps the steps it ran (its report shows
them even after the scenario changed), and each unit the time it ticked each step.
The seeded rows get the new fields filled in, so nothing changes for a running city.

Revision ID: 0005_catalog
Revises: 0004
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_catalog"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

ALIASES = {
    "f0": (["F0", "ca benh"], True),
    "f1": (["F1", "tiep xuc"], False),
    "home_isolation": (["cach ly"], False),
    "hospital": (["benh vien", "nhap vien"], False),
    "recovered": (["khoi benh"], False),
    "short_food": (["thieu an", "thieu luong thuc"], False),
    "short_medicine": (["thieu thuoc"], False),
    "lost_income": (["mat thu nhap"], False),
    "medical_visit": (["y te", "can bac si"], True),
    "alone_vulnerable": (["mot minh"], False),
    "other": (["khac"], False),
}
LEGAL_BASIS = {"nq68_cash": "Nghị quyết 68/NQ-CP"}
STEP_MINUTES = 10  # what a seeded step is expected to take, until the ward says otherwise


def upgrade() -> None:
    with op.batch_alter_table("report_categories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("aliases", JSON, nullable=True))
        batch_op.add_column(sa.Column("urgent", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_report_categories_unit_id"), ["unit_id"],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_report_categories_unit_id_units"),
                                    "units", ["unit_id"], ["id"])
    with op.batch_alter_table("support_policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_basis", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
    with op.batch_alter_table("drill_scenarios", schema=None) as batch_op:
        batch_op.add_column(sa.Column("levels", JSON, nullable=True))
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False,
                                      server_default="1"))
        batch_op.create_index(batch_op.f("ix_drill_scenarios_unit_id"), ["unit_id"],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_drill_scenarios_unit_id_units"),
                                    "units", ["unit_id"], ["id"])
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scenario_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("steps", JSON, nullable=True))
    with op.batch_alter_table("drill_participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_seconds", JSON, nullable=True))
    _fill_seeded()


def _fill_seeded() -> None:
    bind = op.get_bind()
    categories = sa.table("report_categories", sa.column("key"), sa.column("aliases", JSON),
                          sa.column("urgent"))
    for key, (aliases, urgent) in ALIASES.items():
        bind.execute(categories.update().where(categories.c.key == key)
                     .values(aliases=aliases, urgent=urgent))
    policies = sa.table("support_policies", sa.column("key"), sa.column("legal_basis"))
    for key, basis in LEGAL_BASIS.items():
        bind.execute(policies.update().where(policies.c.key == key).values(legal_basis=basis))
    scenarios = sa.table("drill_scenarios", sa.column("key"), sa.column("steps", JSON))
    for key, steps in bind.execute(sa.select(scenarios.c.key, scenarios.c.steps)).all():
        steps = json.loads(steps) if isinstance(steps, str) else steps
        timed = [{**step, "minutes": step.get("minutes", STEP_MINUTES)} for step in steps]
        bind.execute(scenarios.update().where(scenarios.c.key == key).values(steps=timed))


def downgrade() -> None:
    with op.batch_alter_table("drill_participants", schema=None) as batch_op:
        batch_op.drop_column("step_seconds")
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.drop_column("steps")
        batch_op.drop_column("scenario_version")
    with op.batch_alter_table("drill_scenarios", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_drill_scenarios_unit_id_units"),
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_drill_scenarios_unit_id"))
        batch_op.drop_column("version")
        batch_op.drop_column("unit_id")
        batch_op.drop_column("levels")
    with op.batch_alter_table("support_policies", schema=None) as batch_op:
        batch_op.drop_column("valid_to")
        batch_op.drop_column("valid_from")
        batch_op.drop_column("legal_basis")
    with op.batch_alter_table("report_categories", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_report_categories_unit_id_units"),
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_report_categories_unit_id"))
        batch_op.drop_column("unit_id")
        batch_op.drop_column("urgent")
        batch_op.drop_column("aliases")
