"""/eligible: ward staff (and admins) mark a household eligible for a support policy.

household (recent, search or new) → policy → confirm. Eligibility is the denominator of
coverage, so only the ward decides it; a leader who is also ward staff elsewhere may mark only
where they are ward staff.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.household_pick import (
    household_label,
    new_unit,
    pick_household_steps,
    resolve_household,
    scope,
)
from bot.handlers.access import STAFF, reaches, refuse
from bot.i18n import N_
from bot.turn import Turn
from storage import households, support
from storage.models import Unit

log = logging.getLogger(__name__)

ROLES = STAFF


async def _policy_options(turn: Turn) -> Sequence[Option]:
    return [Option(policy.key, support.policy_label(policy, turn.locale), literal=True)
            for policy in await support.policies(turn.session)]


async def _policy_name(turn: Turn) -> str:
    policy = await support.policy(turn.session, str(turn.data["policy"]))
    return support.policy_label(policy, turn.locale) if policy else str(turn.data["policy"])


async def _summary(turn: Turn) -> str:
    return "\n".join((turn.t("Household: {household}", household=household_label(turn)),
                      turn.t("Policy: {policy}", policy=await _policy_name(turn))))


async def _target_unit(turn: Turn) -> Unit | None:
    """The unit of the picked household, or of the new one, before anything is written."""
    household_id = turn.data.get("household_id")
    if household_id is None:
        return await new_unit(turn)
    household = await households.get(turn.session, int(household_id), scope(turn))
    return household.unit if household is not None else None


async def _finish(turn: Turn) -> None:
    unit = await _target_unit(turn)
    if unit is not None and not reaches(turn, unit, ROLES):
        refuse(turn, "/eligible on this unit", ROLES)
        return
    policy = await support.policy(turn.session, str(turn.data["policy"]))
    if policy is None or not policy.active:
        turn.say(turn.t("That policy is no longer offered; nothing was saved. "
                        "Please send /eligible again."))
        return
    household = await resolve_household(turn)
    if household is None:
        return  # refused, and the person was told why
    added = await support.mark_eligible(turn.session, household, policy.key, turn.now)
    log.info("eligibility %s on unit %s by account %s (new=%s)", policy.key,
             household.unit_id, turn.account.id, added)
    name = support.policy_label(policy, turn.locale)
    if added:
        turn.say(turn.t("Saved: the household is eligible for {policy}.", policy=name))
    else:
        turn.say(turn.t("The household was already eligible for {policy}; nothing changed.",
                        policy=name))


FLOW = register(Flow(
    name="eligibility",
    title=N_("marking a household eligible"),
    steps=(
        *pick_household_steps(after="policy"),
        Step("policy", "choice", N_("Eligible for which support policy?"),
             options=_policy_options),
        Step("confirm", "confirm", N_("Mark this household eligible?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    if not any(grant.role in ROLES for grant in turn.grants):
        refuse(turn, "/eligible", ROLES)
        return
    await engine.begin(turn, FLOW)
