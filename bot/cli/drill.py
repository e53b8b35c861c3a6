"""`coso drill`: start a scenario drill for a ward, and read its results."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from bot.cli.common import CliError, Context, show_record, with_db
from bot.flows.drill import send_cards
from bot.handlers.drills import report
from storage import drills, schedules, units
from storage.db import Database
from storage.models import DrillScenario, utcnow


def register(commands: Any) -> None:
    group = commands.add_parser("drill", help="scenario drills",
                                description="Start scenario drills and read their results.")
    sub = group.add_subparsers(title="drill commands", metavar="COMMAND", required=True)
    begin = sub.add_parser("start", help="send a scenario to the units of a ward",
                           description="Every unit in the ward (or under --only) with an "
                                       "active leader takes part.")
    begin.add_argument("--unit", required=True, metavar="CODE", help="the ward")
    begin.add_argument("--scenario", required=True, metavar="KEY",
                       help="a key from `coso drill scenarios`")
    begin.add_argument("--only", metavar="CODE", help="only this quarter/hamlet and below")
    begin.add_argument("--json", action="store_true", help="print {id, units}")
    begin.set_defaults(handler=handle_start)
    results = sub.add_parser("report", help="each unit's times, and the ward's medians")
    results.add_argument("id", type=int, metavar="ID")
    results.add_argument("--json", action="store_true")
    results.set_defaults(handler=handle_report)
    listing = sub.add_parser("scenarios", help="the scenario catalogue")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=handle_scenarios)


def handle_start(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> dict[str, Any]:
        async with db.transaction() as session:
            ward = await units.by_code(session, args.unit)
            if ward is None:
                raise CliError(ctx.t("unknown unit {code}", code=args.unit))
            if ward.level not in schedules.WARD_LEVELS:
                raise CliError(ctx.t("A drill is run in a ward, commune or special zone."))
            scenario = await session.get(DrillScenario, args.scenario)
            if scenario is None or not drills.offered(scenario, ward):
                raise CliError(ctx.t("unknown scenario {key}", key=args.scenario))
            area = await units.by_code(session, args.only) if args.only else ward
            if area is None or not units.contains(ward, area):
                raise CliError(ctx.t("unit {code} is not {unit} or one of its sub-units",
                                     code=args.only, unit=args.unit))
            taking = sorted({unit.id for unit, _ in await schedules.leaders_in(session, ward)
                             if unit.path.startswith(area.path)
                             and drills.takes_part(scenario, unit)})
            if not taking:
                raise CliError(ctx.t("No unit there has a leader yet, so no drill was "
                                     "started."))
            drill = await drills.start(session, ward, scenario, taking, None, utcnow())
            await send_cards(session, ctx.settings, drill, scenario)
            return {"id": drill.id, "units": len(taking)}

    started = with_db(ctx, work)
    if args.json:
        ctx.json(started)
    else:
        ctx.out(ctx.t("Drill #{id} started: {n} units were sent the scenario.",
                      id=started["id"], n=ctx.t.number(started["units"])))
    return 0


def handle_report(ctx: Context, args: argparse.Namespace) -> int:
    return show_record(ctx, args.json, lambda session: drills.results(session, args.id),
                       ctx.t("no drill with id {id}", id=args.id), report, _as_json)


def _as_json(results: drills.Results) -> dict[str, Any]:
    def seconds(value: timedelta | None) -> float | None:
        return None if value is None else value.total_seconds()

    return {"id": results.drill.id, "scenario": results.scenario.key,
            "started_at": results.drill.started_at.isoformat(),
            "units_total": len(results.units), "acknowledged": results.acknowledged,
            "completed": results.completed,
            "median_seconds_to_acknowledge": seconds(results.median_to_acknowledge),
            "median_seconds_to_complete": seconds(results.median_to_complete),
            "units": [{"code": u.unit_code, "name": u.unit_name, "steps_done": u.steps_done,
                       "steps_total": len(results.scenario.steps),
                       "seconds_to_acknowledge": seconds(u.to_acknowledge),
                       "seconds_to_complete": seconds(u.to_complete),
                       "reminders": u.reminders} for u in results.units],
            **_steps_json(results)}


def _steps_json(results: drills.Results) -> dict[str, Any]:
    """Per step the median and slowest time against the expected minutes, the late units,
    and the previous drill of the scenario's figures with the change (negative: faster)."""
    def seconds(value: timedelta | None) -> float | None:
        return None if value is None else value.total_seconds()

    def figures(step: drills.StepFigures) -> dict[str, Any]:
        return {"units_timed": step.times, "median_seconds": seconds(step.median),
                "slowest_seconds": seconds(step.slowest), "slowest_unit": step.slowest_unit,
                "late_units": step.late}

    before = {f.number: f for f in drills.step_figures(results.previous)} \
        if results.previous else {}
    changes = dict(drills.changes(results))
    return {"scenario_version": results.drill.scenario_version,
            "previous_drill_id": results.previous.drill.id if results.previous else None,
            "steps": [{"number": step.number, "vi": step.step.get("vi"),
                       "en": step.step.get("en"), "expected_minutes": step.step.get("minutes"),
                       **figures(step),
                       "previous": figures(before[step.number]) if step.number in before
                       else None,
                       "change_seconds": seconds(changes.get(step.number))}
                      for step in drills.step_figures(results)]}


def handle_scenarios(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> list[DrillScenario]:
        async with db.read() as session:
            return list(await drills.scenarios(session))

    found = with_db(ctx, work)
    if args.json:
        ctx.json([{"key": s.key, "label_vi": s.label_vi, "label_en": s.label_en,
                   "steps": s.steps} for s in found])
    else:
        for scenario in found:
            ctx.out(f"{scenario.key}: {drills.label(scenario, ctx.t.locale)}")
    return 0
