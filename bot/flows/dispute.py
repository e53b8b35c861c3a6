"""/dispute: a monitor (Fatherland Front, mass organisations) flags a delivery as disputed.

delivery (the latest in their area) → note → confirm. The dispute and the ward staff's notice
commit together; the ward staff close it with /disputes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot import notify
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.support import delivery_line, scope_roots
from bot.handlers.access import MONITORS, reaches, refuse
from bot.i18n import N_, Translator
from bot.messages import Outgoing
from bot.turn import Turn
from storage import support, units
from storage.models import DeliveryDispute, Role, SupportDelivery

log = logging.getLogger(__name__)

ROLES = MONITORS
CHOICES = 10
NOTE_LIMIT = 500
PREFIX = "d"


async def _recent(turn: Turn) -> Sequence[SupportDelivery]:
    return await support.deliveries(turn.session, scope_roots(turn, ROLES), limit=CHOICES)


async def _delivery_options(turn: Turn) -> Sequence[Option]:
    found = await _recent(turn)
    disputed = await support.disputed_ids(turn.session, [d.id for d in found])
    return [Option(f"{PREFIX}:{d.id}", ("⚠ " if d.id in disputed else "")
                   + delivery_line(turn.t, d), literal=True) for d in found]


async def _chosen(turn: Turn) -> SupportDelivery | None:
    """The chosen delivery, if it is still in the monitor's area."""
    delivery_id = int(str(turn.data["delivery"]).split(":", 1)[1])
    found = await support.delivery(turn.session, delivery_id)
    if found is None or not reaches(turn, found.household.unit, ROLES):
        return None
    return found


async def _summary(turn: Turn) -> str:
    found = await _chosen(turn)
    line = delivery_line(turn.t, found) if found else "—"
    return "\n".join((turn.t("Flag this delivery as disputed:"), line,
                      turn.t("Note: {note}", note=turn.data["note"])))


async def _finish(turn: Turn) -> None:
    found = await _chosen(turn)
    if found is None:
        refuse(turn, "/dispute on this delivery", ROLES)
        return
    if await support.disputed_ids(turn.session, [found.id]):
        turn.say(turn.t("That delivery is already disputed and waiting for the ward staff; "
                        "nothing more was saved."))
        return
    dispute = await support.open_dispute(turn.session, found,
                                         turn.person.id if turn.person else None,
                                         str(turn.data["note"]), turn.now)
    log.info("dispute %s opened on delivery %s (unit %s) by account %s", dispute.id,
             found.id, found.unit_id, turn.account.id)
    told = await _tell_ward_staff(turn, dispute, found)
    if told:
        turn.say(turn.t.plural("Flagged as disputed (#{id}); the ward staff were told "
                               "({n} person).",
                               "Flagged as disputed (#{id}); the ward staff were told "
                               "({n} people).", told, id=dispute.id))
    else:
        turn.say(turn.t("Flagged as disputed (#{id}). No ward staff member is registered for "
                        "this ward yet, so nobody was told.", id=dispute.id))


async def _tell_ward_staff(turn: Turn, dispute: DeliveryDispute,
                           found: SupportDelivery) -> int:
    unit = found.household.unit
    staff = await notify.holders_over(turn.session, unit, Role.WARD_STAFF)
    path = await units.full_path(turn.session, unit)

    def render(t: Translator) -> Outgoing:
        return Outgoing(text="\n".join((
            t("A monitor flagged a support delivery as disputed (#{id}):", id=dispute.id),
            path, delivery_line(t, found), t("Note: {note}", note=dispute.note),
            t("Send /disputes to review and close it."))))

    return await notify.notify_people(turn.session, turn.settings, staff, render)


FLOW = register(Flow(
    name="dispute",
    title=N_("the dispute"),
    steps=(
        Step("delivery", "choice", N_("Which delivery do you dispute? The latest in your "
                                      "area:"),
             options=_delivery_options),
        Step("note", "text", N_("What is wrong with it? (up to {max_length} characters)"),
             max_length=NOTE_LIMIT),
        Step("confirm", "confirm", N_("Send this to the ward staff?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    roots = scope_roots(turn, ROLES)
    if not roots:
        refuse(turn, "/dispute", ROLES)
        return
    if not await support.deliveries(turn.session, roots, limit=1):
        turn.say(turn.t("No support deliveries have been recorded in your area yet."))
        return
    await engine.begin(turn, FLOW)
