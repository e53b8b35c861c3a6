"""/summary: the digest on demand. Ward staff get their own ward; an admin picks a ward or the
roll-up of the province/city they hold (a city's 168 wards are typed: part of a name, a code,
or 'all'); then the period: today, 7 days or 30 days.

Scope is checked again at the end (a role may be withdrawn between the steps).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.digest import CHART_ELSEWHERE, TEXT_LIMITS, chart_message, text
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.support import scope_roots
from bot.handlers.access import STAFF, reaches, refuse
from bot.i18n import N_
from bot.turn import Turn
from storage import digest, reports, schedules
from storage.models import Unit

ROLES = STAFF
PERIODS = {"1": N_("Today"), "7": N_("The last 7 days"), "30": N_("The last 30 days")}
ROLLUP = "all:"  # a choice "all:<unit id>": the roll-up of that unit's wards
EVERY_WARD = ("all", "tat ca")  # typed, they choose the roll-up


async def _areas(turn: Turn) -> list[Unit]:
    """The wards (and units above wards) the person may summarise."""
    found: list[Unit] = []
    for root in scope_roots(turn, ROLES):
        found.append(root)
        if not schedules.is_ward(root):
            found += [w for w in await schedules.wards(turn.session, [root]) if w.id != root.id]
    return found


async def _area_options(turn: Turn) -> Sequence[Option]:
    options = []
    for unit in await _areas(turn):
        if schedules.is_ward(unit):
            options.append(Option(f"u:{unit.id}", unit.name, literal=True, aliases=(unit.code,)))
        else:
            options.append(Option(f"{ROLLUP}{unit.id}",
                                  turn.t("All wards of {unit}", unit=unit.name), literal=True,
                                  aliases=(unit.code, *EVERY_WARD)))
    return options


async def _finish(turn: Turn) -> None:
    wanted = str(turn.data.get("area", ""))
    areas = await _areas(turn)
    unit = areas[0] if not wanted and len(areas) == 1 else next(
        (u for u in areas if wanted in (f"u:{u.id}", f"{ROLLUP}{u.id}")), None)
    if unit is None or not reaches(turn, unit, ROLES):
        refuse(turn, "/summary", ROLES)
        return
    days = int(str(turn.data["period"]))
    day = reports.local_day(turn.now, turn.settings.tz)
    if schedules.is_ward(unit):
        figures = await digest.ward_figures(turn.session, unit, day, turn.settings, days,
                                             turn.now)
        # Split between sections where the channel's limit is shorter (Zalo: 2,000).
        limit = TEXT_LIMITS.get(turn.account.channel, text.LIMIT)
        body = text.render(turn.t, figures)
        # The digest's chart too, as the digest sends it (a photo; on Zalo by signed link).
        photo = chart_message(turn.settings, turn.t, figures, turn.account.channel)
        if photo is None:
            body += "\n\n" + turn.t(CHART_ELSEWHERE)
        for part in text.parts(body, limit):
            turn.say(part)
        if photo is not None:
            turn.say(photo.text, photo=photo.photo)
    else:
        rolled = await digest.rollup(turn.session, unit, day, turn.settings, days, turn.now)
        turn.say(text.render_rollup(turn.t, rolled))


PERIOD = Step("period", "choice", N_("Which period?"),
              options=tuple(Option(key, label) for key, label in PERIODS.items()))
FLOW = register(Flow(name="summary", title=N_("the summary"), steps=(PERIOD,), finish=_finish))
FLOW_PICK = register(Flow(
    name="summary_pick", title=N_("the summary"), finish=_finish,
    steps=(Step("area", "choice", N_("Which ward?"), options=_area_options), PERIOD)))


async def start(turn: Turn, args: str = "") -> None:
    """`/summary 7` answers the period at once (no extra tap) where there is one ward."""
    areas = await _areas(turn)
    if not areas:
        refuse(turn, "/summary", ROLES)
    elif len(areas) == 1:
        await engine.begin(turn, FLOW, args.strip() or None)
    else:
        await engine.begin(turn, FLOW_PICK)
