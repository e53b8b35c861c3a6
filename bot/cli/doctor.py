"""`coso doctor`: checks the settings, the database, the tokens and webhooks, the public
URL and the data directory; a short table (or --json), non-zero when something fails."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from bot.cli.common import Context
from bot.i18n import Translator
from bot.ops import doctor
from bot.ops.doctor import FAIL, Finding


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor", help="check the set-up: settings, database, tokens, webhooks, disk",
        description="Check what the bot needs: the settings and the time zone, the database "
                    "and its migration level, each configured token (getMe) and webhook "
                    "(getWebhookInfo: address, updates waiting, last error), "
                    "COSO_PUBLIC_URL reached from here, and the data directory's space and "
                    "permissions. Exits 1 when a check fails.")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {check, status, detail}; status is ok, "
                             "warn or fail")
    parser.set_defaults(handler=handle_doctor)


def handle_doctor(ctx: Context, args: argparse.Namespace) -> int:
    findings = asyncio.run(_quietly(doctor.run_all(ctx.settings)))
    if args.json:
        ctx.json([{"check": f.key, "status": f.status, "detail": _detail(ctx, f),
                   **({"bot": f.bot} if f.bot else {}),
                   **({"bot_id": f.bot_id} if f.bot_id else {})} for f in findings])
    else:
        _table(ctx, findings)
    return 1 if any(f.status == FAIL for f in findings) else 0


async def _quietly(checks: Coroutine[Any, Any, list[Finding]]) -> list[Finding]:
    """The channels' clients log a failed call ("zalo getMe failed: ClientConnectorError"):
    with no logging set up, Python would print that on stderr under the table, which says
    it already, in a sentence. A handler that drops records keeps it off the screen."""
    root = logging.getLogger()
    quiet = logging.NullHandler()
    root.addHandler(quiet)
    try:
        return await checks
    finally:
        root.removeHandler(quiet)


def _detail(ctx: Context, finding: Finding) -> str:
    """The finding in the reader's language, its numbers and times written by Babel (71,4 and
    7/12/2026 lúc 03:48 in vi), as every other command writes them."""
    return ctx.t(finding.detail, **{name: _written(ctx.t, value)
                                    for name, value in finding.values.items()})


def _written(t: Translator, value: Any) -> Any:
    if isinstance(value, datetime):
        return t.full_datetime(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return t.number(value)
    return value


def _table(ctx: Context, findings: list[Finding]) -> None:
    t = ctx.t
    marks = {"ok": t("ok"), "warn": t("warn"), "fail": t("FAIL")}
    rows = [[t(f.label) + (f" {f.bot_id}" if f.bot_id else ""), marks[f.status],
             _detail(ctx, f)]
            for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for label, mark, detail in rows:
        ctx.out(f"{label.ljust(widths[0])}  {mark.ljust(widths[1])}  {detail}".rstrip())
    failed = sum(f.status == FAIL for f in findings)
    ctx.out(t("All checks passed.") if not failed else
            t.plural("{n} check failed.", "{n} checks failed.", failed))
