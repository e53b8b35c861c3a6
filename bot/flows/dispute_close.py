"""/disputes: ward staff (and admins) read the open disputes in their area and close one.

dispute (oldest first) → the dispute in full: close it? → closing note. The monitor who raised
it is told how it was settled, in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot import notify
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.support import delivery_line, scope_roots
from bot.handlers.access import STAFF, reaches, refuse
from bot.i18n import N_, Translator
from bot.messages import Outgoing
from bot.turn import Turn
from storage import support, units
from storage.models import DeliveryDispute, SupportDelivery

log = logging.getLogger(__name__)

ROLES = STAFF
CHOICES = 10
NOTE_LIMIT = 500
PREFIX = "x"


async def _dispute_options(turn: Turn) -> Sequence[Option]:
    found = await support.open_disputes(turn.session, scope_roots(turn, ROLES), limit=CHOICES)
    return [Option(f"{PREFIX}:{dispute.id}", f"#{dispute.id} · {delivery_line(turn.t, d)}",
                   literal=True) for dispute, d in found]


async def _chosen(turn: Turn) -> tuple[DeliveryDispute, SupportDelivery] | None:
    """The chosen dispute and its delivery, if still in this person's area."""
    dispute_id = int(str(turn.data["dispute"]).split(":", 1)[1])
    dispute = await support.dispute(turn.session, dispute_id)
    found = await support.delivery(turn.session, dispute.delivery_id) if dispute else None
    if dispute is None or found is None or not reaches(turn, found.household.unit, ROLES):
        return None
    return dispute, found


async def _details(turn: Turn) -> str:
    chosen = await _chosen(turn)
    if chosen is None:
        return "—"
    dispute, found = chosen
    t = turn.t
    return "\n".join((t("Dispute #{id}, raised {when}:", id=dispute.id,
                        when=t.datetime(dispute.created_at)),
                      await units.full_path(turn.session, found.household.unit),
                      delivery_line(t, found), t("Note: {note}", note=dispute.note)))


async def _finish(turn: Turn) -> None:
    chosen = await _chosen(turn)
    if chosen is None:
        refuse(turn, "/disputes on this dispute", ROLES)
        return
    dispute, found = chosen
    if dispute.status != support.DISPUTE_OPEN:
        turn.say(turn.t("Dispute #{id} was closed meanwhile; nothing more was saved.",
                        id=dispute.id))
        return
    note = str(turn.data["note"])
    await support.close_dispute(turn.session, dispute, note, turn.now,
                                turn.person.id if turn.person else None)
    log.info("dispute %s closed on unit %s by account %s", dispute.id, found.unit_id,
             turn.account.id)
    await _tell_monitor(turn, dispute, found, note)
    turn.say(turn.t("Dispute #{id} closed.", id=dispute.id))


async def _tell_monitor(turn: Turn, dispute: DeliveryDispute, found: SupportDelivery,
                        note: str) -> None:
    if dispute.person_id is None or (turn.person and turn.person.id == dispute.person_id):
        return

    def render(t: Translator) -> Outgoing:
        return Outgoing(text="\n".join((
            t("The ward closed your dispute #{id}:", id=dispute.id), delivery_line(t, found),
            t("Their note: {note}", note=note))))

    await notify.notify_people(turn.session, turn.settings, [dispute.person_id], render)


FLOW = register(Flow(
    name="dispute_close",
    title=N_("closing a dispute"),
    steps=(
        Step("dispute", "choice", N_("Open disputes in your area, oldest first. Which one?"),
             options=_dispute_options),
        Step("review", "confirm", N_("Close this dispute? You will be asked how it was "
                                     "settled."),
             summary=_details),
        Step("note", "text", N_("How was it settled? (up to {max_length} characters)"),
             max_length=NOTE_LIMIT),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    roots = scope_roots(turn, ROLES)
    if not roots:
        refuse(turn, "/disputes", ROLES)
        return
    if not await support.open_disputes(turn.session, roots, limit=1):
        turn.say(turn.t("No open disputes in your area."))
        return
    await engine.begin(turn, FLOW)
