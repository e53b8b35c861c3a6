"""`coso support list | coverage | eligible import`: support deliveries for scripts and audits.

Output carries household codes but never head-of-household names: an audit needs to know
which household, not who lives there.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import CliError, Context, import_file, with_db
from bot.flows.support import amount_text, status_text
from storage import support, units
from storage.db import Database
from storage.eligibility_import import (
    EligibilityResult,
    EligibilityRow,
    apply_rows,
    read_csv,
)
from storage.models import SupportDelivery


def register(commands: Any) -> None:
    group = commands.add_parser("support", help="support-policy deliveries and coverage",
                                description="List deliveries, show coverage, import "
                                            "eligibility.")
    sub = group.add_subparsers(title="support commands", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", help="deliveries in a unit and its subtree",
                             description="Deliveries recorded in the unit and everything "
                                         "under it, latest first.")
    listing.add_argument("--unit", required=True, metavar="CODE", help="unit code, e.g. 26734")
    listing.add_argument("--policy", metavar="P", help="only this policy key, e.g. food_bag")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON list of {id, unit_code, household_code, "
                              "policy_key, amount, measure, status, delivered_on}")
    listing.set_defaults(handler=handle_list)
    cover = sub.add_parser("coverage", help="households delivered ÷ households eligible",
                           description="Per policy: households marked eligible, households "
                                       "with a delivered record, coverage and amount "
                                       "delivered, in the unit and everything under it.")
    cover.add_argument("--unit", required=True, metavar="CODE", help="unit code, e.g. 26734")
    cover.add_argument("--json", action="store_true",
                       help="print a JSON list of {policy_key, measure, eligible, "
                            "delivered_households, coverage, amount_delivered}")
    cover.set_defaults(handler=handle_coverage)
    _register_eligible(sub)


def _register_eligible(sub: Any) -> None:
    eligible = sub.add_parser("eligible", help="households eligible for a policy",
                              description="Mark households eligible for support policies.")
    esub = eligible.add_subparsers(title="eligible commands", metavar="COMMAND", required=True)
    imp = esub.add_parser(
        "import", help="mark households eligible from a CSV file",
        description="Read a UTF-8 CSV file with the header household_code,policy_key and an "
                    "optional unit_code column (needed when a code is used in two units "
                    "under --unit). The whole file is imported, or nothing when a row is "
                    "bad. Households already eligible are counted, not duplicated.")
    imp.add_argument("--unit", required=True, metavar="CODE",
                     help="the unit whose households the file names, e.g. 26734")
    imp.add_argument("file", metavar="FILE.csv", type=Path)
    imp.set_defaults(handler=handle_eligible_import)


# --- list ------------------------------------------------------------------------------------

def delivery_entry(delivery: SupportDelivery) -> dict[str, Any]:
    return {"id": delivery.id, "unit_code": delivery.household.unit.code,
            "household_code": delivery.household.code, "policy_key": delivery.policy_key,
            "amount": delivery.amount, "measure": delivery.policy.measure,
            "status": delivery.status, "delivered_on": delivery.delivered_on.isoformat()}


def handle_list(ctx: Context, args: argparse.Namespace) -> int:
    labels: dict[str, str] = {}  # policy key -> its label in the person's language

    async def work(db: Database) -> list[dict[str, Any]] | None:
        async with db.read() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            if args.policy:
                await _known_policy(ctx, session, args.policy)
            found = await support.deliveries(session, [unit], policy_key=args.policy)
            labels.update((d.policy_key, support.policy_label(d.policy, ctx.t.locale))
                          for d in found)
            return [delivery_entry(delivery) for delivery in found]

    entries = with_db(ctx, work)
    if entries is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    t = ctx.t
    if args.json:
        ctx.json(entries)
    elif not entries:
        ctx.out(t("No deliveries recorded under {code}.", code=args.unit))
    else:
        ctx.table([t("ID"), t("Date"), t("Unit"), t("Household"), t("Policy"), t("Amount"),
                   t("Status")],
                  [[str(e["id"]), t.date(date.fromisoformat(e["delivered_on"])), e["unit_code"],
                    e["household_code"], labels[e["policy_key"]],
                    amount_text(t, e["measure"], e["amount"]), status_text(t, e["status"])]
                   for e in entries])
    return 0


async def _known_policy(ctx: Context, session: AsyncSession, key: str) -> None:
    """A mistyped --policy would list nothing and look like no deliveries: say so instead."""
    known = [policy.key for policy in await support.policies(session, active_only=False)]
    if key not in known:
        raise CliError(ctx.t("unknown policy {policy}; the policies are: {known}",
                             policy=key, known=", ".join(known)))


# --- coverage --------------------------------------------------------------------------------

def handle_coverage(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> list[dict[str, Any]] | None:
        async with db.read() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            rows = await support.coverage(session, unit)
            labels.update((row.policy.key, support.policy_label(row.policy, ctx.t.locale))
                          for row in rows)
            return [{"policy_key": row.policy.key, "measure": row.policy.measure,
                     "eligible": row.eligible, "delivered_households": row.delivered,
                     "coverage": row.ratio, "amount_delivered": row.amount} for row in rows]

    labels: dict[str, str] = {}
    entries = with_db(ctx, work)
    if entries is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    if args.json:
        ctx.json(entries)
        return 0
    t = ctx.t
    ctx.table([t("Policy"), t("Eligible"), t("Delivered"), t("Coverage"), t("Amount")],
              [[labels[e["policy_key"]], t.number(e["eligible"]),
                t.number(e["delivered_households"]),
                "-" if e["coverage"] is None else f"{t.number(round(100 * e['coverage']))}%",
                amount_text(t, e["measure"], e["amount_delivered"])] for e in entries])
    return 0


# --- eligible import -------------------------------------------------------------------------

def handle_eligible_import(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database, rows: list[EligibilityRow]) -> EligibilityResult | None:
        async with db.transaction() as session:
            root = await units.by_code(session, args.unit)
            if root is None:
                return None
            return await apply_rows(session, root, rows)

    result = import_file(ctx, args.file, read_csv,
                         lambda rows: with_db(ctx, lambda db: work(db, rows)))
    if result is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    ctx.out(ctx.t.plural(
        "Imported {n} eligibility ({added} new, {already} already recorded).",
                         "Imported {n} eligibilities ({added} new, {already} already recorded).",
                         result.total, added=ctx.t.number(result.added),
                         already=ctx.t.number(result.already)))
    return 0


