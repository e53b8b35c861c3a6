"""`coso digest --unit CODE [--date YYYY-MM-DD] [--format text|json]`: a ward's digest now.

A ward gives its digest; a province/city unit gives the roll-up of its wards. The json carries
the same figures the text is rendered from (storage.digest).
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from typing import Any

from bot.cli.common import CliError, Context, with_db
from bot.digest import text
from storage import digest, schedules, units
from storage.db import Database
from storage.models import utcnow


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "digest", help="a ward's digest, or a province's roll-up, for one day",
        description="Print the figures the daily digest sends to ward staff: reports, urgent "
                    "cases, households, support, check-in compliance, vacancies. A unit above "
                    "the wards gives the sum of its wards, ranked.")
    parser.add_argument("--unit", required=True, metavar="CODE", help="unit code, e.g. 26734")
    parser.add_argument("--date", metavar="YYYY-MM-DD", type=date.fromisoformat,
                        help="the day (default: today in COSO_TIMEZONE)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: {kind: 'ward'|'rollup', figures: {...}}")
    parser.set_defaults(handler=handle_digest)


def handle_digest(ctx: Context, args: argparse.Namespace) -> int:
    day = args.date or datetime.now(ctx.settings.tz).date()

    async def work(db: Database) -> tuple[str, Any] | None:
        async with db.read() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            if schedules.is_ward(unit):
                return "ward", await digest.ward_figures(session, unit, day, ctx.settings,
                                                           now=utcnow())
            return "rollup", await digest.rollup(session, unit, day, ctx.settings, now=utcnow())

    found = with_db(ctx, work)
    if found is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    kind, figures = found
    if args.format == "json":
        ctx.json({"kind": kind, "figures": figures.as_json()})
    elif kind == "ward":
        ctx.out(text.render(ctx.t, figures))
    else:
        ctx.out(text.render_rollup(ctx.t, figures))
    return 0
