"""/export: ward staff and admins get their area's records as an Excel file in the chat.

(unit, when the person holds roles on several) → period → the .xlsx, sent as a document. The
file is written under COSO_DATA_DIR/exports and sent from there; Zalo carries no documents, so
on Zalo the person gets a signed link valid 24 hours (bot.files) when COSO_PUBLIC_URL is set,
and is otherwise told to use Telegram, the web chat or `coso export`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta

from bot import files
from bot.export import file_stem, write_xlsx
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.support import scope_roots
from bot.handlers.access import STAFF, reaches, refuse
from bot.i18n import N_
from bot.turn import Turn
from storage import export, reports
from storage.models import Platform, Unit

log = logging.getLogger(__name__)

ROLES = STAFF
NO_FILES = frozenset({Platform.ZALO.value})  # the Zalo Bot API sends text and photos only
PERIODS = {"7": N_("The last 7 days"), "30": N_("The last 30 days"),
           "month": N_("This month"), "last_month": N_("Last month")}


def period_of(choice: str, today: date) -> tuple[date, date]:
    if choice == "month":
        return today.replace(day=1), today
    if choice == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    return today - timedelta(days=int(choice) - 1), today


async def _unit_options(turn: Turn) -> Sequence[Option]:
    return [Option(f"u:{unit.id}", unit.name, literal=True, aliases=(unit.code,))
            for unit in scope_roots(turn, ROLES)]


async def _finish(turn: Turn) -> None:
    unit = await _chosen_unit(turn)
    if unit is None:
        refuse(turn, "/export", ROLES)
        return
    today = reports.local_day(turn.now, turn.settings.tz)
    start, end = period_of(str(turn.data["period"]), today)
    period = export.Period(start, end, turn.settings.tz)
    sheets = await export.sheets(turn.session, unit, period, turn.t.locale)
    name = f"{file_stem(unit.code, start, end)}.xlsx"
    path = write_xlsx(sheets, turn.t, turn.settings.data_dir / "exports" / name)
    log.info("export of unit %s (%s rows) for account %s", unit.id,
             sum(len(sheet.rows) for sheet in sheets), turn.account.id)
    head = turn.t("{unit}, {start} – {end}: one sheet per kind of record.",
                  unit=unit.name, start=turn.t.date(start), end=turn.t.date(end))
    if turn.account.channel in NO_FILES:  # a signed link instead (start checked there is one)
        link = files.signed_url(turn.settings, path)
        turn.say(f"{head}\n" + turn.t("Open it within 24 hours: {link}", link=link or "—"))
        return
    turn.say(head, document=str(path), filename=name)


async def _chosen_unit(turn: Turn) -> Unit | None:
    """The unit asked for, if the person still holds a role over it."""
    roots = scope_roots(turn, ROLES)
    wanted = turn.data.get("unit")
    unit = roots[0] if wanted is None and len(roots) == 1 else next(
        (root for root in roots if f"u:{root.id}" == wanted), None)
    return unit if unit is not None and reaches(turn, unit, ROLES) else None


PERIOD = Step("period", "choice", N_("Which period?"),
              options=tuple(Option(key, label) for key, label in PERIODS.items()))
FLOW = register(Flow(name="export", title=N_("the export"), steps=(PERIOD,),
                     finish=_finish))
FLOW_PICK = register(Flow(
    name="export_pick", title=N_("the export"), finish=_finish,
    steps=(Step("unit", "choice", N_("Which area?"), options=_unit_options), PERIOD)))


async def start(turn: Turn) -> None:
    roots = scope_roots(turn, ROLES)
    if not roots:
        refuse(turn, "/export", ROLES)
    elif turn.account.channel in NO_FILES and not turn.settings.public_url:
        turn.say(turn.t("Zalo cannot carry files. Send /export on Telegram or in the web chat, "
                        "or ask your administrator for `coso export`."))
    else:
        await engine.begin(turn, FLOW if len(roots) == 1 else FLOW_PICK)
