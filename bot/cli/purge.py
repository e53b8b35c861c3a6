"""`coso purge --before DATE`: remove personal data past retention (Decree 13/2023/ND-CP)."""

from __future__ import annotations

import argparse
from datetime import date, datetime, time
from typing import Any

from bot.cli.common import CliError, Context, with_db
from storage import purge
from storage.db import Database
from storage.models import utcnow


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "purge", help="remove personal data older than a date",
        description="Clears notes and photos of resolved reports, receipt photos, closed "
                    "disputes' notes, sent messages, the update ledger, and the names and "
                    "platform ids of people deactivated before DATE (local midnight). Counts "
                    "the digests use (reports, check-ins, deliveries) are kept.")
    parser.add_argument("--before", required=True, type=date.fromisoformat,
                        metavar="YYYY-MM-DD")
    parser.add_argument("--json", action="store_true", help="print what was removed, by kind")
    parser.set_defaults(handler=handle_purge)


def handle_purge(ctx: Context, args: argparse.Namespace) -> int:
    before = datetime.combine(args.before, time.min, ctx.settings.tz)
    if before > utcnow():
        raise CliError(ctx.t("--before must be a past date"))

    async def work(db: Database) -> purge.Purged:
        async with db.transaction() as session:
            return await purge.purge(session, before)

    done = with_db(ctx, work)
    if args.json:
        ctx.json(done.as_dict())
    else:
        for kind, count in done.as_dict().items():
            ctx.out(f"{kind}: {ctx.t.number(count)}")
    return 0
