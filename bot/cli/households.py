"""`coso households import | list`: a unit's household register from and to files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.cli.common import CliError, Context, import_file, with_db
from storage import households, units
from storage.db import Database
from storage.household_import import (
    COLUMNS,
    HouseholdRow,
    ImportResult,
    apply_rows,
    read_csv,
)


def register(commands: Any) -> None:
    group = commands.add_parser("households", help="the household register of a unit",
                                description="Import and list the households of a unit.")
    sub = group.add_subparsers(title="households commands", metavar="COMMAND", required=True)
    imp = sub.add_parser(
        "import", help="create or update a unit's households from a CSV file",
        description=f"Read a UTF-8 CSV file with the header {','.join(COLUMNS)} and an "
                    "optional unit_code column naming a sub-unit of --unit. Flags read 1/0, "
                    "x/blank, có/không, yes/no, true/false. A code already in the unit is "
                    "updated. The whole file is imported, or nothing when a row is bad.")
    imp.add_argument("--unit", required=True, metavar="CODE", help="the unit the file is for")
    imp.add_argument("file", metavar="FILE.csv", type=Path)
    imp.set_defaults(handler=handle_import)
    listing = sub.add_parser("list", help="show the households of a unit and its sub-units",
                             description="Show the households of a unit's subtree.")
    listing.add_argument("--unit", required=True, metavar="CODE")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON list of {code,unit,head_name,members,flags}")
    listing.set_defaults(handler=handle_list)


def handle_import(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database, rows: list[HouseholdRow]) -> ImportResult | None:
        async with db.transaction() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            return await apply_rows(session, unit, rows)

    result = import_file(ctx, args.file, read_csv,
                         lambda rows: with_db(ctx, lambda db: work(db, rows)))
    if result is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    ctx.out(ctx.t.plural("Imported {n} household ({created} new, {updated} updated).",
                         "Imported {n} households ({created} new, {updated} updated).",
                         result.total, created=ctx.t.number(result.created),
                         updated=ctx.t.number(result.updated)))
    return 0


def handle_list(ctx: Context, args: argparse.Namespace) -> int:
    entries = with_db(ctx, lambda db: _entries(db, args.unit))
    if entries is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    if args.json:
        ctx.json(entries)
    elif not entries:
        ctx.out(ctx.t("No households yet: add some with `coso households import --unit CODE "
                      "FILE.csv` or /household in chat."))
    else:
        t = ctx.t
        ctx.table([t("Unit"), t("Household"), t("Head of household"), t("Members"),
                   t("Flags")],
                  [[e["unit"], e["code"], e["head_name"] or "-", t.number(e["members"]),
                    ", ".join(t(households.FLAG_LABELS[f]) for f in e["flags"]) or "-"]
                   for e in entries])
    return 0


async def _entries(db: Database, code: str) -> list[dict[str, Any]] | None:
    async with db.read() as session:
        unit = await units.by_code(session, code)
        if unit is None:
            return None
        found = await households.in_subtree(session, unit)
        return [{"code": h.code, "unit": h.unit.code, "head_name": h.head_name,
                 "members": h.members, "flags": households.flags_of(h)} for h in found]
