"""/drill (start one), /drill status (each unit's times), the drill cards' buttons, and the
reminders to units that have not finished."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot import drill_change
from bot.flows import drill
from bot.handlers.access import refuse
from bot.handlers.commands import Handlers, asked_items, start_or_status
from bot.handlers.missing import missing_lines
from bot.i18n import N_, Translator
from bot.jobs import periodic
from bot.messages import Button, parse_id
from bot.settings import Settings
from bot.turn import Turn
from storage import drills
from storage.db import Database
from storage.models import DrillScenario

log = logging.getLogger(__name__)
HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command

HANDLERS.button(drill.BUTTON, drill.on_button)


REMIND = "drr"  # "drr:<drill id>": the current card again to the units not done
STATUS_HINT = N_("Write /drill status, or /drill status with a drill's number "
                 "(e.g. /drill status 2).")


@command("drill", N_("Start a scenario drill, or see how units are doing (/drill status)"),
         roles=drill.ROLES, position=61)
async def drill_command(turn: Turn, args: str) -> None:
    await start_or_status(turn, args, drill.start, status)


async def status(turn: Turn, asked: str) -> None:
    """The ward's latest drills, or the one whose number follows."""
    ward_ids = [ward.id for ward in drill.wards(turn)]

    async def one(number: int) -> drills.Results | None:
        return await drills.results(turn.session, number, ward_ids)

    async def latest() -> list[drills.Results]:
        return [result for entry in await drills.latest(turn.session, ward_ids)
                if (result := await one(entry.id))]

    found = await asked_items(
        turn, asked, one, latest, hint=STATUS_HINT,
        not_found=N_("There is no drill #{id} in your ward."),
        none_yet=N_("No drill has been run in your ward yet. Send /drill to start one."))
    for results in found:
        turn.say(report(turn.t, results), buttons=_remind_button(turn.t, results))


def _remind_button(t: Translator, results: drills.Results) -> tuple[Button, ...]:
    behind = sum(1 for unit in results.units if unit.to_complete is None)
    if not behind or results.drill.ended_at is not None:
        return ()
    return (Button(t.plural("Remind the {n} unit not done", "Remind the {n} units not done",
                            behind), f"{REMIND}:{results.drill.id}"),)


def report(t: Translator, results: drills.Results) -> str:
    """The drill's units with their times and, under those not done, their leaders; then
    the ward's response rate and medians."""
    total = len(results.units)
    lines = [t("Drill #{id}: {scenario}, started {when}", id=results.drill.id,
               scenario=drills.label(results.scenario, t.locale),
               when=t.datetime(results.drill.started_at)),
             t("Acknowledged {acknowledged}/{total}, completed {completed}/{total}.",
               acknowledged=t.number(results.acknowledged), completed=t.number(results.completed),
               total=t.number(total))]
    for name, value in ((N_("Median time to acknowledge: {time}"),
                         results.median_to_acknowledge),
                        (N_("Median time to complete: {time}"), results.median_to_complete)):
        if value is not None:
            lines.append(t(name, time=t.duration(value)))
    steps = len(results.scenario.steps)
    for unit in results.units:
        lines.append(t("• {unit}: {progress}", unit=unit.label or unit.unit_name,
                       progress=_progress(t, unit, steps)))
        if unit.to_complete is None:
            lines.extend(missing_lines(t, unit.missing))
    unreachable = sum(1 for unit in results.units if unit.to_complete is None
                      for m in unit.missing if not m.connected)
    if unreachable:
        lines.append(t.plural("{n} of them has no chat connected: phone them.",
                              "{n} of them have no chat connected: phone them.", unreachable))
    lines.extend(step_lines(t, results))
    change = improvement(t, results)
    if change:
        lines.append(change)
    return "\n".join(lines)


def step_lines(t: Translator, results: drills.Results) -> list[str]:
    """Per step: the median and slowest unit against the expected minutes, the late units,
    and the same figures of the previous drill of the scenario."""
    before = {f.number: f for f in drills.step_figures(results.previous)} \
        if results.previous else {}
    lines = []
    for figures in drills.step_figures(results):
        text = str(figures.step.get(t.locale) or figures.step.get("vi") or "")
        head = t("Step {n} ({step}), expected {expected}:", n=figures.number, step=text,
                 expected=t.duration(figures.expected) if figures.expected else "—")
        lines.append(f"{head} {_figures(t, figures)}")
        earlier = before.get(figures.number)
        if earlier is not None and earlier.median is not None:
            lines.append("  " + t("last time: {figures}", figures=_figures(t, earlier)))
    return lines


def _figures(t: Translator, figures: drills.StepFigures) -> str:
    if figures.median is None or figures.slowest is None:
        return t("no unit has reached it yet")
    text = t("median {median}, slowest {slowest} ({unit})", median=t.duration(figures.median),
             slowest=t.duration(figures.slowest), unit=figures.slowest_unit)
    if figures.late:
        text += "; " + t("late: {units}", units=", ".join(figures.late))
    return text


def improvement(t: Translator, results: drills.Results) -> str | None:
    """One line: each step's median against the previous drill of the scenario."""
    before = results.previous.drill.id if results.previous else None
    return drill_change.improvement(t, drills.changes(results), before)


async def on_remind(turn: Turn, payload: str) -> None:
    """Staff's "Remind": each unit not done gets its current card again, once an hour at
    most."""
    wanted = parse_id(payload.split(":", 1)[1] if ":" in payload else "")
    ward_ids = [ward.id for ward in drill.wards(turn)]
    results = (await drills.results(turn.session, wanted, ward_ids)
               if wanted is not None and ward_ids else None)
    if results is None:
        refuse(turn, "a drill reminder", drill.ROLES)
        return
    if results.drill.ended_at is not None:
        turn.say(turn.t("Drill #{id} has ended.", id=results.drill.id))
        return
    entries = await drills.to_remind(turn.session, results.drill, turn.now)
    if isinstance(entries, datetime):
        turn.say(turn.t("A reminder for drill #{id} went out less than an hour ago; the next "
                        "one can be sent from {when}.", id=results.drill.id,
                        when=turn.t.datetime(entries)))
        return
    if not entries:
        turn.say(turn.t("Every unit has finished drill #{id}; no reminder is needed.",
                        id=results.drill.id))
        return
    queued = 0
    for entry in entries:
        queued += await drill.send_card(turn.session, turn.settings, entry, results.scenario,
                                        reminder=True)
    log.info("drill %s: reminder by hand to %d units, %d messages", results.drill.id,
             len(entries), queued)
    turn.say(turn.t.plural("Reminder for drill #{id} sent to {n} unit.",
                           "Reminder for drill #{id} sent to {n} units.", len(entries),
                           id=results.drill.id))


HANDLERS.button(REMIND, on_remind)


def _progress(t: Translator, unit: drills.UnitResult, steps: int) -> str:
    if unit.to_complete is not None:
        return t("done in {time}", time=t.duration(unit.to_complete))
    if unit.to_acknowledge is not None:
        return t("acknowledged in {time}, step {done}/{steps}",
                 time=t.duration(unit.to_acknowledge), done=unit.steps_done, steps=steps)
    return t("no answer yet")


@periodic("drill-reminders", timedelta(minutes=1))
async def remind(db: Database, settings: Settings, now: datetime) -> None:
    """Units that have not finished get their current card again, every REMIND_EVERY."""
    async with db.transaction() as session:
        due = await drills.due_reminders(session, now)
        for entry, started in due:
            found = await session.get(DrillScenario, started.scenario_key)
            assert found is not None
            scenario = drills.as_run(started, found)
            entry.reminders += 1
            entry.reminded_at = now
            await drill.send_card(session, settings, entry, scenario, reminder=True)
    if due:
        log.info("drill reminders sent to %d units", len(due))
