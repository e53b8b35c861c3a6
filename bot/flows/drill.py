"""/drill: ward staff start a scenario drill, and each unit's leader plays it through.

Starting (a conversation): scenario → which units (the whole ward, or one quarter/hamlet
with its groups) → confirm. Every unit there with an active leader takes part.

Playing (one-tap buttons, numbers on Zalo; payload "dr:<participant>:<a|s<n>|d>"): the card
asks to acknowledge, then offers the scenario's steps one at a time in order, then "done";
each press answers with the next card. The drill row, its participants and the cards commit
together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot import notify
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.support import scope_roots
from bot.handlers.access import LEADERS, STAFF, reaches, refuse
from bot.i18n import N_, Translator
from bot.messages import Button, Outgoing, parse_id
from bot.settings import Settings
from bot.turn import Turn
from storage import directives, drills, outbox, schedules, units
from storage.drills import Progress
from storage.models import Drill, DrillParticipant, DrillScenario, Person, Role, Unit

log = logging.getLogger(__name__)

ROLES = STAFF
BUTTON = "dr"
EVERYWHERE = "all"


# --- starting a drill ------------------------------------------------------------------------

def wards(turn: Turn) -> list[Unit]:
    """The wards this person runs drills in: ward-level units they hold a role on."""
    return [unit for unit in scope_roots(turn, ROLES) if unit.level in schedules.WARD_LEVELS]


async def _scenario_options(turn: Turn) -> Sequence[Option]:
    """The city's scenarios, then the ward's own."""
    return [Option(s.key, drills.label(s, turn.t.locale), literal=True)
            for s in await drills.scenarios_for(turn.session, wards(turn)[0])]


async def _area_options(turn: Turn) -> Sequence[Option]:
    ward = wards(turn)[0]
    led = {unit.id for unit, _ in await schedules.leaders_in(turn.session, ward)}
    children = [unit for unit in await units.subtree(turn.session, ward)
                if unit.parent_id == ward.id]
    parts = [Option(f"u:{child.id}", child.name, literal=True, aliases=(child.code,))
             for child in children
             if any(unit.id in led for unit in await units.subtree(turn.session, child))]
    return [Option(EVERYWHERE, N_("The whole ward")), *parts]


async def taking_part(turn: Turn, ward: Unit, area: str) -> list[Unit]:
    """The units with an active leader in the chosen area, in tree order."""
    chosen = ward.path
    if area != EVERYWHERE:
        found = await units.in_scope(turn.session, int(area.split(":", 1)[1]), [ward])
        chosen = found.path if found is not None else ""
    scenario = await turn.session.get(DrillScenario, str(turn.data.get("scenario")))
    seen: dict[int, Unit] = {}
    for unit, _ in await schedules.leaders_in(turn.session, ward):
        if (chosen and unit.path.startswith(chosen)
                and (scenario is None or drills.takes_part(scenario, unit))):
            seen.setdefault(unit.id, unit)
    return list(seen.values())


async def _summary(turn: Turn) -> str:
    ward = wards(turn)[0]
    scenario = await turn.session.get(DrillScenario, str(turn.data["scenario"]))
    taking = await taking_part(turn, ward, str(turn.data["area"]))
    # Where names repeat (a Tổ dân phố 1 in every quarter) each is named with its quarter.
    labels = await units.short_paths(turn.session, [unit.path for unit in taking])
    names = [labels[unit.path] for unit in taking]
    lines = [turn.t("Drill: {scenario}", scenario=drills.label(scenario, turn.t.locale)
                    if scenario else "—"),
             turn.t.plural("{n} unit takes part: {units}", "{n} units take part: {units}",
                           len(names), units=", ".join(names) or "—")]
    return "\n".join(lines)


async def _finish(turn: Turn) -> None:
    ward = next(iter(wards(turn)), None)
    scenario = await turn.session.get(DrillScenario, str(turn.data["scenario"]))
    if (ward is None or scenario is None or not drills.offered(scenario, ward)
            or not reaches(turn, ward, ROLES)):
        refuse(turn, "/drill", ROLES)
        return
    taking = await taking_part(turn, ward, str(turn.data["area"]))
    if not taking:
        turn.say(turn.t("No unit there has a leader yet, so no drill was started."))
        return
    drill = await drills.start(turn.session, ward, scenario, [u.id for u in taking],
                               turn.person.id if turn.person else None, turn.now)
    queued = await send_cards(turn.session, turn.settings, drill, scenario)
    log.info("drill %s started in ward %s: %d units, %d messages", drill.id, ward.id,
             len(taking), queued)
    unreached = await _unreached(turn, ward, taking)
    if not unreached:
        turn.say(turn.t("Drill #{id} started: {n} units were sent the scenario. Send /drill "
                        "status to follow it.", id=drill.id, n=turn.t.number(len(taking))))
        return
    # Status means names: a unit no chat reaches has its leaders to phone, not a count.
    labels = await units.short_paths(turn.session, [unit.path for unit, _ in unreached])
    turn.say("\n".join([
        turn.t("Drill #{id} started: the scenario reached {reached} of {n} units. Send "
               "/drill status to follow it.", id=drill.id,
               reached=turn.t.number(len(taking) - len(unreached)),
               n=turn.t.number(len(taking))),
        turn.t.plural("{n} unit has no leader with a chat connected; phone them:",
                      "{n} units have no leader with a chat connected; phone them:",
                      len(unreached)),
        *(turn.t("• {unit} — {leaders}", unit=labels[unit.path],
                 leaders=", ".join(person.full_name for person in leaders))
          for unit, leaders in unreached)]))


async def _unreached(turn: Turn, ward: Unit, taking: Sequence[Unit]
                     ) -> list[tuple[Unit, list[Person]]]:
    """The units taking part none of whose leaders a chat reaches, with those leaders."""
    wanted = {unit.id for unit in taking}
    leaders: dict[int, tuple[Unit, list[Person]]] = {}
    for unit, person in await schedules.leaders_in(turn.session, ward):
        if unit.id in wanted:
            leaders.setdefault(unit.id, (unit, []))[1].append(person)
    reachable = await directives.connected(
        turn.session, {person.id for _, people in leaders.values() for person in people})
    return [(unit, people) for unit, people in leaders.values()
            if not any(person.id in reachable for person in people)]


FLOW = register(Flow(
    name="drill",
    title=N_("starting a drill"),
    steps=(
        Step("scenario", "choice", N_("Which scenario?"), options=_scenario_options),
        Step("area", "choice", N_("Which units take part?"), options=_area_options),
        Step("confirm", "confirm", N_("Start this drill now?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    if not wards(turn):
        if scope_roots(turn, ROLES):
            turn.say(turn.t("A drill is started from a ward. From a city or province, use "
                            "`coso drill start --unit WARD --scenario KEY`."))
        else:
            refuse(turn, "/drill", ROLES)
        return
    await engine.begin(turn, FLOW)


# --- the card each unit's leaders play -------------------------------------------------------

def card(t: Translator, entry: DrillParticipant, scenario: DrillScenario, unit: Unit,
         reminder: bool = False) -> Outgoing:
    """What the unit sees next: acknowledge, the next step, done, or thanks."""
    steps = drills.steps(scenario, t.locale)
    head = t("Drill #{id}: {scenario} — {unit}", id=entry.drill_id,
             scenario=drills.label(scenario, t.locale), unit=unit.name)
    if reminder:
        head = t("Reminder: {drill}", drill=head)
    payload = f"{BUTTON}:{entry.id}:"
    if entry.acknowledged_at is None:
        listing = "\n".join(f"{n}. {step}" for n, step in enumerate(steps, start=1))
        return Outgoing(text="\n".join((head, t("Steps:"), listing,
                                        t("Tap Received to begin."))),
                        buttons=(Button(t("Received"), payload + "a"),))
    if entry.completed_at is None and entry.steps_done < len(steps):
        step = entry.steps_done + 1
        return Outgoing(text="\n".join((head, t("Step {n} of {total}: {step}", n=step,
                                                total=len(steps), step=steps[step - 1]))),
                        buttons=(Button(t("Step {n} done", n=step), f"{payload}s{step}"),))
    if entry.completed_at is None:
        return Outgoing(text="\n".join((head, t("All steps are ticked. Report the drill done "
                                                "when the unit has finished."))),
                        buttons=(Button(t("Drill done"), payload + "d"),))
    return Outgoing(text=t("Thank you: {unit} completed drill #{id}.", unit=unit.name,
                           id=entry.drill_id))


async def send_cards(session: AsyncSession, settings: Settings, drill: Drill,
                     scenario: DrillScenario) -> int:
    """The first card to every leader of every unit taking part; returns messages queued."""
    queued = 0
    for entry in await drills.participants(session, drill.id):
        queued += await send_card(session, settings, entry, scenario)
    return queued


async def send_card(session: AsyncSession, settings: Settings, entry: DrillParticipant,
                    scenario: DrillScenario, reminder: bool = False) -> int:
    """The unit's current card to each of its active leaders (on every chat account)."""
    unit = await session.get(Unit, entry.unit_id)
    assert unit is not None  # a participant's unit exists (foreign key)
    leaders = await notify.holders_on(session, unit, Role.LEADER)

    def render(t: Translator) -> Outgoing:
        return card(t, entry, scenario, unit, reminder)

    return await notify.notify_people(session, settings, leaders, render, outbox.BULK,
                                      ref=f"drill:{entry.drill_id}:{entry.unit_id}")


async def on_button(turn: Turn, payload: str) -> None:
    """A leader's press on a drill card: move the unit on and show the next card."""
    _, participant_text, action = (payload.split(":") + ["", ""])[:3]
    participant_id = parse_id(participant_text)
    found = (await drills.participant(turn.session, participant_id)
             if participant_id is not None else None)
    unit = await turn.session.get(Unit, found[0].unit_id) if found else None
    if found is None or unit is None or not reaches(turn, unit, LEADERS):
        refuse(turn, "a drill card", LEADERS)
        return
    entry, drill, scenario = found
    progress = drills.press(entry, drill, len(scenario.steps), action,
                            turn.person.id if turn.person else None, turn.now)
    if progress is Progress.ENDED:
        turn.say(turn.t("Drill #{id} has ended.", id=drill.id))
        return
    if progress is Progress.OUT_OF_ORDER:
        turn.say(turn.t("Please go through the steps in order."))
    elif progress is Progress.MOVED:
        log.info("drill %s unit %s: %s", drill.id, unit.id, action)
    message = card(turn.t, entry, scenario, unit)
    turn.say(message.text, message.buttons)
