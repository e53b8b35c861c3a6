"""/drill (start one), /drill status (each unit's times), the drill cards' buttons, and the
reminders to units that have not finished."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.flows import drill
from bot.handlers.commands import command, start_or_status
from bot.handlers.router import BUTTONS
from bot.i18n import N_, Translator
from bot.jobs import periodic
from bot.settings import Settings
from bot.turn import Turn
from storage import drills
from storage.db import Database
from storage.models import DrillScenario

log = logging.getLogger(__name__)

BUTTONS[drill.BUTTON] = drill.on_button


@command("drill", N_("Start a scenario drill, or see how units are doing (/drill status)"),
         roles=drill.ROLES, position=61)
async def drill_command(turn: Turn, args: str) -> None:
    await start_or_status(turn, args, drill.start, status)


async def status(turn: Turn) -> None:
    wards = drill.wards(turn)
    found = await drills.latest(turn.session, [ward.id for ward in wards])
    if not found:
        turn.say(turn.t("No drill has been run in your ward yet. Send /drill to start one."))
        return
    for entry in found:
        results = await drills.results(turn.session, entry.id)
        if results is not None:
            turn.say(report(turn.t, results))


def report(t: Translator, results: drills.Results) -> str:
    """The drill's units with their times, then the ward's response rate and medians."""
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
        lines.append(t("• {unit}: {progress}", unit=unit.unit_name,
                       progress=_progress(t, unit, steps)))
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
    changes = drills.changes(results)
    if results.previous is None or not changes:
        return None
    said = []
    for number, delta in changes:
        minutes = round(delta.total_seconds() / 60)
        amount = t.plural("{n} minute", "{n} minutes", abs(minutes))
        if minutes < 0:
            said.append(t("Step {n} {time} faster than last time", n=number, time=amount))
        elif minutes > 0:
            said.append(t("Step {n} {time} slower than last time", n=number, time=amount))
        else:
            said.append(t("Step {n} as fast as last time", n=number))
    return t("{changes} (drill #{id} before).", changes="; ".join(said),
             id=results.previous.drill.id)


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
