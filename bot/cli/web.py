"""`coso web link --person ID`: the same single-use dashboard link as /web, at the terminal."""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli.common import CliError, Context, with_db
from bot.dashboard.links import DASHBOARD_ROLES, login_url
from storage import dashboard_sessions, people
from storage.db import Database
from storage.models import Person, utcnow


def register(commands: Any) -> None:
    group = commands.add_parser("web", help="the ward dashboard's login links",
                                description="Links to the ward dashboard (COSO_DASHBOARD).")
    sub = group.add_subparsers(title="web commands", metavar="COMMAND", required=True)
    link = sub.add_parser("link", help="a single-use login link for a person",
                          description="Print a login link valid 10 minutes, usable once, for "
                                      "a person holding ward staff, admin or monitor.")
    link.add_argument("--person", required=True, type=int, metavar="ID",
                      help="the id from `coso users list`")
    link.set_defaults(handler=handle_link)


def handle_link(ctx: Context, args: argparse.Namespace) -> int:
    if not ctx.settings.dashboard:
        raise CliError(ctx.t("The dashboard is switched off on this server."))

    async def work(db: Database) -> str | None:
        async with db.transaction() as session:
            person = await session.get(Person, args.person)
            if person is None or not person.active:
                return None
            grants = await people.grants(session, person)
            if not any(grant.role in DASHBOARD_ROLES for grant in grants):
                return ""
            return await dashboard_sessions.create_link(session, person, utcnow())

    token = with_db(ctx, work)
    if token is None:
        raise CliError(ctx.t("no person with id {id}", id=args.person))
    if not token:
        raise CliError(ctx.t("person {id} holds no ward staff, admin or monitor role",
                             id=args.person))
    ctx.out(login_url(ctx.settings, token))
    return 0
