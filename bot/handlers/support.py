"""Support-policy commands: /support and /eligible (writes), /deliveries, /dispute and /disputes
(the monitors' oversight and the ward staff's answer to it)."""

from __future__ import annotations

from bot.flows import dispute, dispute_close, eligibility
from bot.flows import support as support_flow
from bot.flows.support import delivery_line, scope_roots
from bot.handlers.access import OVERSEERS
from bot.handlers.commands import Handlers
from bot.i18n import N_, Translator
from bot.turn import Turn
from storage import support, units
from storage.models import Unit

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command

READERS = OVERSEERS
LATEST = 10


@command("support", N_("Record support handed to a household"),
         roles=support_flow.ROLES, position=30)
async def support_command(turn: Turn, args: str) -> None:
    await support_flow.start(turn)


@command("eligible", N_("Mark a household eligible for a support policy"),
         roles=eligibility.ROLES, position=31)
async def eligible_command(turn: Turn, args: str) -> None:
    await eligibility.start(turn)


@command("deliveries", N_("Support deliveries and coverage in your area"),
         roles=READERS, position=40)
async def deliveries_command(turn: Turn, args: str) -> None:
    for root in scope_roots(turn, READERS):
        turn.say(await _overview(turn, root))


@command("dispute", N_("Flag a support delivery as disputed"), roles=dispute.ROLES, position=41)
async def dispute_command(turn: Turn, args: str) -> None:
    await dispute.start(turn)


@command("disputes", N_("Open disputes on support deliveries"),
         roles=dispute_close.ROLES, position=42)
async def disputes_command(turn: Turn, args: str) -> None:
    await dispute_close.start(turn)


async def _overview(turn: Turn, root: Unit) -> str:
    """Coverage per policy, then the latest deliveries (⚠ when disputed), for one area."""
    t = turn.t
    lines = [t("Support in {unit}", unit=await units.full_path(turn.session, root)), ""]
    rows = [row for row in await support.coverage(turn.session, root)
            if row.eligible or row.delivered]
    if rows:
        lines.append(t("Coverage (households delivered / eligible):"))
        lines += [coverage_line(t, row) for row in rows]
    else:
        lines.append(t("No household has been marked eligible or received support yet."))
    latest = await support.deliveries(turn.session, [root], limit=LATEST)
    lines += ["", t("Latest deliveries:") if latest else t("No deliveries recorded yet.")]
    disputed = await support.disputed_ids(turn.session, [d.id for d in latest])
    lines += [("⚠ " if d.id in disputed else "• ") + delivery_line(t, d) for d in latest]
    if disputed:
        lines += ["", t("⚠ disputed by a monitor")]
    return "\n".join(lines)


def coverage_line(t: Translator, row: support.Coverage) -> str:
    """'Túi an sinh: 12/40 hộ (30%)'; without eligible households, just who received it."""
    name = support.policy_label(row.policy, t.locale)
    if row.ratio is None:
        text = t.plural("{policy}: {n} household received it; none marked eligible",
                        "{policy}: {n} households received it; none marked eligible",
                        row.delivered, policy=name)
    else:
        text = t.plural("{policy}: {delivered}/{n} household ({percent})",
                        "{policy}: {delivered}/{n} households ({percent})", row.eligible,
                        policy=name, delivered=t.number(row.delivered),
                        percent=t.percent(row.ratio))
    if row.amount and row.policy.measure == "vnd":
        text += " · " + t.money(row.amount)
    return text
