"""`coso report list`: household situation reports, for scripts and audits.

Output carries household codes but never head-of-household names or notes: an audit needs to
know which household and what happened, not who lives there.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from bot.cli.common import CliError, Context, with_db
from storage import reports, units
from storage.db import Database
from storage.export import REPORT_STATUS
from storage.models import Report


def register(commands: Any) -> None:
    group = commands.add_parser("report", help="household situation reports",
                                description="List household situation reports.")
    sub = group.add_subparsers(title="report commands", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", help="reports in a unit and its subtree",
                             description="Reports filed in the unit and everything under it, "
                                         "oldest first.")
    listing.add_argument("--unit", required=True, metavar="CODE", help="unit code, e.g. 26734")
    listing.add_argument("--open", action="store_true", help="only reports not yet resolved")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON list of {id, unit_code, household_code, "
                              "category_key, people_count, urgent, status, created_at, "
                              "resolved_at}")
    listing.set_defaults(handler=handle_list)


def report_entry(report: Report, unit_code: str) -> dict[str, Any]:
    resolved = report.resolved_at.isoformat() if report.resolved_at else None
    return {"id": report.id, "unit_code": unit_code, "household_code": report.household.code,
            "category_key": report.category_key, "people_count": report.people_count,
            "urgent": report.urgent, "status": report.status,
            "created_at": report.created_at.isoformat(), "resolved_at": resolved}


def handle_list(ctx: Context, args: argparse.Namespace) -> int:
    labels: dict[str, str] = {}  # category key -> its label in the person's language

    async def work(db: Database) -> list[dict[str, Any]] | None:
        async with db.read() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            found = await reports.list_for_unit(session, unit, open_only=args.open)
            codes = {u.id: u.code for u in await units.subtree(session, unit)}
            labels.update((report.category_key,
                           reports.category_label(report.category, ctx.t.locale))
                          for report in found)
            return [report_entry(report, codes[report.unit_id]) for report in found]

    entries = with_db(ctx, work)
    if entries is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    if args.json:
        ctx.json(entries)
    elif not entries:
        ctx.out(ctx.t("No reports under {code}.", code=args.unit))
    else:
        _table(ctx, entries, labels)
    return 0


def _table(ctx: Context, entries: list[dict[str, Any]], labels: dict[str, str]) -> None:
    """The catalogue's labels and the statuses' names, not their keys (`--json` keeps those)."""
    t = ctx.t
    header = [t("ID"), t("Filed"), t("Unit"), t("Household"), t("Category"), t("People"),
              t("Urgent"), t("Status")]
    rows = [[str(e["id"]), t.datetime(datetime.fromisoformat(e["created_at"])), e["unit_code"],
             e["household_code"], labels.get(e["category_key"], e["category_key"]),
             t.number(e["people_count"]), t("yes") if e["urgent"] else t("no"),
             t(REPORT_STATUS[e["status"]]) if e["status"] in REPORT_STATUS else e["status"]]
            for e in entries]
    ctx.table(header, rows)
