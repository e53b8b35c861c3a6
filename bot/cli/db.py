"""`coso db upgrade`: bring the schema to the newest migration."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.exc import DBAPIError

from bot.cli.common import CliError, Context, database_problem
from storage import migrate


def register(commands: Any) -> None:
    group = commands.add_parser("db", help="database schema",
                                description="Manage the database schema.")
    sub = group.add_subparsers(title="db commands", metavar="COMMAND", required=True)
    upgrade = sub.add_parser(
        "upgrade", help="apply all migrations (alembic upgrade head)",
        description="Apply every pending migration to COSO_DATABASE_URL. Safe to repeat.")
    upgrade.set_defaults(handler=handle_upgrade)


def handle_upgrade(ctx: Context, args: argparse.Namespace) -> int:
    try:
        migrate.upgrade(ctx.settings.database_url)
    except DBAPIError as exc:
        raise CliError(database_problem(ctx.t, exc)) from None
    except OSError as exc:
        raise CliError(ctx.t("cannot reach the database: {error}", error=str(exc))) from None
    revision = ", ".join(migrate.current_heads())
    ctx.out(ctx.t("Database is up to date (revision {revision}).", revision=revision))
    return 0
