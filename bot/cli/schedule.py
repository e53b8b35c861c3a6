"""`coso schedule set | show`: the wards' daily times (check-in question, reminder, digest).

A running bot reads schedules at every minute's tick, so a change made here takes effect
without a restart, in every process.
"""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli.common import CliError, Context, with_db
from storage import schedules, units
from storage.db import Database
from storage.models import Unit
from storage.schedules import Change, ScheduleError, Times


def register(commands: Any) -> None:
    group = commands.add_parser(
        "schedule", help="the wards' check-in, reminder and digest times",
        description="Each ward's daily times: the check-in question to leaders, the reminder "
                    "to units that have not answered, the escalation of the units still "
                    "silent to ward staff (COSO_ESCALATION_AFTER_MINUTES after the reminder, "
                    "never after the digest), and the digest to ward staff. Unset values "
                    "follow the city-wide defaults COSO_CHECK_IN_AT, COSO_REMINDER_AT, "
                    "COSO_DIGEST_AT and COSO_WEEKDAYS_ONLY.")
    sub = group.add_subparsers(title="schedule commands", metavar="COMMAND", required=True)
    setter = sub.add_parser("set", help="set a ward's own times",
                            description="Set a ward's own times; a running bot uses them "
                                        "from its next minute on.")
    setter.add_argument("--unit", required=True, metavar="CODE",
                        help="the ward (or commune, special zone), e.g. 26734")
    # Whole literals, not f-strings, so `coso --help` can translate them (localized_help).
    setter.add_argument("--prompt", metavar="HH:MM", help="check-in question; HH:MM in "
                        "COSO_TIMEZONE, or 'default' for the city-wide default")
    setter.add_argument("--reminder", metavar="HH:MM", help="reminder; HH:MM in "
                        "COSO_TIMEZONE, or 'default' for the city-wide default")
    setter.add_argument("--digest", metavar="HH:MM", help="daily digest; HH:MM in "
                        "COSO_TIMEZONE, or 'default' for the city-wide default")
    days = setter.add_mutually_exclusive_group()
    days.add_argument("--weekdays", "--weekdays-only", dest="weekdays_only",
                      action="store_const", const=True, help="run Monday to Friday only")
    days.add_argument("--every-day", dest="weekdays_only", action="store_const", const=False,
                      help="run every day, weekends included")
    setter.add_argument("--json", action="store_true", help="print the result as in show --json")
    setter.set_defaults(handler=handle_set)
    show = sub.add_parser("show", help="show the wards' effective times",
                          description="Show each ward's effective times; * marks a ward's own "
                                      "value, the others are the city-wide defaults.")
    show.add_argument("--unit", metavar="CODE",
                      help="a ward, or a province for its wards, or a unit for its ward")
    show.add_argument("--json", action="store_true",
                      help="print a JSON list of {code, name, prompt_at, reminder_at, "
                           "digest_at, escalation_at, weekdays_only, overridden}")
    show.set_defaults(handler=handle_show)


def entry(ward: Unit, times: Times) -> dict[str, Any]:
    return {"code": ward.code, "name": ward.name, **times.as_dict()}


def handle_set(ctx: Context, args: argparse.Namespace) -> int:
    change = Change(args.prompt, args.reminder, args.digest, args.weekdays_only)
    if change == Change():
        raise CliError(ctx.t("nothing to change: give --prompt, --reminder, --digest, "
                             "--weekdays or --every-day"), 2)

    async def work(db: Database) -> dict[str, Any]:
        async with db.transaction() as session:
            ward = await units.by_code(session, args.unit)
            if ward is None:
                raise CliError(ctx.t("unknown unit {code}", code=args.unit))
            try:
                times = await schedules.set_schedule(session, ctx.settings, ward, change)
            except ScheduleError as exc:
                raise CliError(ctx.t(str(exc))) from None
            return entry(ward, times)

    result = with_db(ctx, work)
    if args.json:
        ctx.json([result])
    else:
        _table(ctx, [result])
    return 0


def handle_show(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.read() as session:
            within: list[Unit] | None = None
            if args.unit:
                unit = await units.by_code(session, args.unit)
                if unit is None:
                    raise CliError(ctx.t("unknown unit {code}", code=args.unit))
                ward = await schedules.ward_of(session, unit)
                within = [ward or unit]
            found = await schedules.schedules(session, ctx.settings, within)
            return [entry(ward, times) for ward, times in found]

    entries = with_db(ctx, work)
    if args.json:
        ctx.json(entries)
    elif not entries:
        ctx.out(ctx.t("No ward, commune or special zone there."))
    else:
        _table(ctx, entries)
    return 0


def _table(ctx: Context, entries: list[dict[str, Any]]) -> None:
    t = ctx.t

    def mark(e: dict[str, Any], name: str, value: str) -> str:
        return value + ("*" if name in e["overridden"] else "")

    header = [t("Code"), t("Ward"), t("Check-in"), t("Reminder"), t("Escalation"),
              t("Digest"), t("Days")]
    rows = [[e["code"], e["name"], mark(e, "prompt_at", e["prompt_at"]),
             mark(e, "reminder_at", e["reminder_at"]), e["escalation_at"],
             mark(e, "digest_at", e["digest_at"]),
             mark(e, "weekdays_only", t("Mon–Fri") if e["weekdays_only"] else t("every day"))]
            for e in entries]
    ctx.table(header, rows)
    if any(e["overridden"] for e in entries):
        ctx.out(t("* the ward's own value; the others are the city-wide defaults"))
