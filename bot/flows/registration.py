"""Registration: an invite code binds a chat account to a person, a unit and a role."""

from __future__ import annotations

import logging

from bot.flows.engine import Flow, Step, register
from bot.handlers.access import role_name
from bot.i18n import N_
from bot.text import normalize
from bot.turn import Turn
from storage import invites, people, roster, units
from storage.invites import InviteProblem
from storage.models import Person
from storage.roster import RosterError

log = logging.getLogger(__name__)

# The roster's refusals at redeeming (storage/roster.py raises these msgids).
ROSTER_REFUSALS = (
    N_("This invite is for a person no longer on the ward's roster. Ask your ward staff for a "
       "new one."),
    N_("This chat is already connected to another person. Ask your ward staff."),
)

PROBLEMS = {
    InviteProblem.UNKNOWN: N_("That invite code is not valid. Check it and send it again."),
    InviteProblem.USED: N_("That invite code has already been used. Ask your ward staff for "
                           "a new one."),
    InviteProblem.EXPIRED: N_("That invite code has expired. Ask your ward staff for a new "
                              "one."),
    InviteProblem.REVOKED: N_("That invite code was withdrawn. Ask your ward staff for a new "
                              "one."),
}


async def _check_code(turn: Turn, code: str) -> str | None:
    invite = await invites.find(turn.session, code)
    problem = invites.problem(invite, turn.now)
    if problem is not None:
        log.info("invite refused for account %s: %s", turn.account.id, problem.value)
        return PROBLEMS[problem]
    return None


async def _bind(turn: Turn) -> None:
    invite = await invites.find(turn.session, turn.data["code"])
    assert invite is not None and invites.problem(invite, turn.now) is None
    name = normalize(turn.incoming.display_name or "") or turn.t("(no name)")
    fresh = Person(full_name=name[:200], locale=turn.account.locale)
    try:  # a roster invite: this person, or the holder-to-be of a vacant post
        person = await roster.claim(turn.session, invite, turn.account, turn.person, fresh)
    except RosterError as exc:
        log.info("roster invite refused for account %s", turn.account.id)
        turn.say(turn.t(exc.msgid))
        return
    if person is None:
        person = turn.person
        if person is None:
            turn.session.add(fresh)
            await turn.session.flush()
            turn.account.person_id = fresh.id
            person = fresh
        await people.assign(turn.session, person, invite.unit, invite.role)
    turn.person = person
    await invites.redeem(turn.session, turn.data["code"], person.id)
    turn.grants = await people.grants(turn.session, person)
    log.info("account %s registered as %s on unit %s", turn.account.id, invite.role,
             invite.unit.code)
    path = await units.full_path(turn.session, invite.unit)
    turn.say(turn.t("Welcome, {name}! You are registered as {role} of {unit}.\n"
                    "Send /help to see what you can do.",
                    name=person.full_name, role=role_name(turn, invite.role), unit=path))


FLOW = register(Flow(
    name="registration",
    title=N_("registration"),
    steps=(
        Step("code", "text", N_("Please send your invite code (8 letters and digits)."),
             max_length=64, validate=_check_code),
    ),
    finish=_bind,
))
