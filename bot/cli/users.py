"""`coso users list | deactivate`: the people who have joined, and ending their access."""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli.common import CliError, Context, with_db
from bot.handlers.access import ROLE_NAMES
from bot.i18n import N_
from storage import people
from storage.db import Database
from storage.models import Person, Role


def register(commands: Any) -> None:
    group = commands.add_parser("users", help="people and their roles",
                                description="List people and deactivate them.")
    sub = group.add_subparsers(title="users commands", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", help="list people, their roles and linked channels",
                             description="List people with their active roles (role@unit) "
                                         "and the chat channels they have linked.")
    listing.add_argument("--all", action="store_true", help="include deactivated people")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON list of {id, name, roles, channels, active}")
    listing.set_defaults(handler=handle_list)
    deactivate = sub.add_parser("deactivate", help="end a person's roles and access",
                                description="Deactivate a person: their roles end and their "
                                            "chat accounts count as strangers. History stays.")
    deactivate.add_argument("id", type=int, metavar="ID", help="the id from `coso users list`")
    deactivate.set_defaults(handler=handle_deactivate)


def person_entry(person: Person) -> dict[str, Any]:
    roles = [{"role": r.role, "unit": r.unit.code} for r in person.roles if r.active]
    channels = sorted({a.channel for a in person.accounts})
    return {"id": person.id, "name": person.full_name, "roles": roles,
            "channels": channels, "active": person.active}


def handle_list(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.read() as session:
            found = await people.list_people(session, include_inactive=args.all)
            return [person_entry(person) for person in found]

    entries = with_db(ctx, work)
    if args.json:
        ctx.json(entries)
    elif not entries:
        ctx.out(ctx.t("Nobody has joined yet: create invites with `coso invite create`."))
    else:
        _table(ctx, entries)
    return 0


def _table(ctx: Context, entries: list[dict[str, Any]]) -> None:
    """Roles named as chat names them ('ward staff at 26743'); `--json` keeps the keys."""
    t = ctx.t
    header = [t("ID"), t("Name"), t("Roles"), t("Channels"), t("Active")]
    rows = [[str(e["id"]), e["name"],
             "; ".join(t(N_("{role} at {unit}"), role=t(ROLE_NAMES[Role(r["role"])]),
                         unit=r["unit"]) for r in e["roles"]) or "-",
             ", ".join(e["channels"]) or "-",
             t("yes") if e["active"] else t("no")] for e in entries]
    ctx.table(header, rows)


def handle_deactivate(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> bool | None:
        async with db.transaction() as session:
            person = await session.get(Person, args.id)
            if person is None:
                return None
            if not person.active:
                return False
            await people.deactivate(session, person)
            return True

    outcome = with_db(ctx, work)
    if outcome is None:
        raise CliError(ctx.t("no person with id {id}", id=args.id))
    if outcome:
        ctx.out(ctx.t("Person {id} deactivated: their roles have ended.", id=args.id))
    else:
        ctx.out(ctx.t("Person {id} was already deactivated.", id=args.id))
    return 0
