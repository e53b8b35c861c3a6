"""/summary: the digest on demand. Ward staff get their own ward; an admin picks a ward or the
roll-up of the province/city they hold; then the period: today, 7 days or 30 days.

Scope is checked again at the end (a role may be withdrawn between the steps).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.digest import text
from bot.flows import engine
from bot.flows.engine import Flow, Option, Refused, Step, register
from bot.flows.support import scope_roots
from bot.handlers.access import reaches, refuse
from bot.i18n import N_
from bot.text import fold
from bot.turn import Turn
from storage import digest, reports, schedules
from storage.models import Role, Unit

ROLES = frozenset({Role.WARD_STAFF, Role.ADMIN})
PERIODS = {"1": N_("Today"), "7": N_("The last 7 days"), "30": N_("The last 30 days")}
ROLLUP = "all:"  # a choice "all:<unit id>": the roll-up of that unit's wards
# More areas than this (a city admin has 168 wards) are found by typing, not by buttons:
# Telegram takes at most 100 buttons, and nobody reads 168.
BUTTONS_AT_MOST = 8
EVERY_WARD = {"all", "tat ca"}


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
            options.append(Option(f"u:{unit.id}", unit.name, literal=True))
        else:
            options.append(Option(f"{ROLLUP}{unit.id}",
                                  turn.t("All wards of {unit}", unit=unit.name), literal=True))
    return options


def _matching(areas: list[Unit], typed: str) -> list[Unit]:
    """The areas a typed name or code means: 'all' the roll-ups, else a code or a part of a
    name, without case or diacritics ("ben thanh" finds "Phường Bến Thành")."""
    wanted = fold(typed)
    if wanted in EVERY_WARD:
        return [unit for unit in areas if not schedules.is_ward(unit)]
    exact = [unit for unit in areas if unit.code == typed.strip()]
    return exact or [unit for unit in areas if wanted and wanted in fold(unit.name)]


async def _check_typed(turn: Turn, typed: str) -> str | None:
    found = _matching(await _areas(turn), typed)
    if len(found) != 1:
        raise Refused(N_("No ward matches “{typed}”; type part of its name or its code.")
                      if not found else N_("{n} wards match “{typed}”; type more of the name, "
                                            "or the code."),
                      typed=typed[:40], n=turn.t.number(len(found)))
    return None


async def _finish(turn: Turn) -> None:
    wanted = str(turn.data.get("area", ""))
    areas = await _areas(turn)
    if "typed" in turn.data:
        found = _matching(areas, str(turn.data["typed"]))
        wanted = f"u:{found[0].id}" if len(found) == 1 else ""
        if found and not schedules.is_ward(found[0]):
            wanted = f"{ROLLUP}{found[0].id}"
    unit = areas[0] if not wanted and len(areas) == 1 else next(
        (u for u in areas if wanted in (f"u:{u.id}", f"{ROLLUP}{u.id}")), None)
    if unit is None or not reaches(turn, unit, ROLES):
        refuse(turn, "/summary", ROLES)
        return
    days = int(str(turn.data["period"]))
    day = reports.local_day(turn.now, turn.settings.tz)
    if schedules.is_ward(unit):
        figures = await digest.ward_figures(turn.session, unit, day, turn.settings, days)
        turn.say(text.render(turn.t, figures))
    else:
        rolled = await digest.rollup(turn.session, unit, day, turn.settings, days)
        turn.say(text.render_rollup(turn.t, rolled))


PERIOD = Step("period", "choice", N_("Which period?"),
              options=tuple(Option(key, label) for key, label in PERIODS.items()))
FLOW = register(Flow(name="summary", title=N_("the summary"), steps=(PERIOD,), finish=_finish))
FLOW_PICK = register(Flow(
    name="summary_pick", title=N_("the summary"), finish=_finish,
    steps=(Step("area", "choice", N_("Which ward?"), options=_area_options), PERIOD)))
FLOW_TYPED = register(Flow(
    name="summary_typed", title=N_("the summary"), finish=_finish,
    steps=(Step("typed", "text", N_("Which ward? Type part of its name or its code (e.g. "
                                     "ben thanh, or 26734), or 'all' for every ward."),
                max_length=100, validate=_check_typed), PERIOD)))


async def start(turn: Turn) -> None:
    areas = await _areas(turn)
    if not areas:
        refuse(turn, "/summary", ROLES)
    else:
        flow = (FLOW if len(areas) == 1 else FLOW_PICK if len(areas) <= BUTTONS_AT_MOST
                else FLOW_TYPED)
        await engine.begin(turn, flow)
