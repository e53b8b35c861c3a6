"""Registration: an invite code binds a chat account to a person, a unit and a role."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.flows import check_in, directive
from bot.flows.engine import BadAnswer, Flow, Step, register
from bot.handlers.access import post_name, role_name
from bot.i18n import N_
from bot.jobs import periodic
from bot.settings import Settings
from bot.turn import Turn
from storage import invites, people, roster, units
from storage.db import Database
from storage.invites import InviteProblem
from storage.models import Person, Role
from storage.roster import RosterError
from wording import normalize

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
# Also the web chat's answer to a login locked out (bot/channels/web.py).
LOCKED = N_("Too many wrong invite codes. For safety, codes are not checked for the next "
            "10 minutes; please try again later, or ask your ward staff for help.")
# A stranger's chat account idle this long is deleted (purge_strangers).
STRANGERS_KEPT = timedelta(days=1)


async def _check_code(turn: Turn, code: str) -> str | None:
    """The code's problem, if any; every refusal counts towards the back-off, and while
    locked out the code is not even looked up."""
    key = invites.account_key(turn.account.channel, turn.account.external_id)
    if await invites.locked_until(turn.session, key, turn.now) is not None:
        log.info("invite not checked for account %s: locked out after refused codes",
                 turn.account.id)
        raise BadAnswer(LOCKED)
    invite = await invites.find(turn.session, code)
    problem = invites.problem(invite, turn.now)
    if problem is not None:
        log.info("invite refused for account %s: %s", turn.account.id, problem.value)
        # In the update's transaction, with its ledger entry: a redelivery counts once.
        await invites.record_failure(turn.session, key, turn.now)
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
    held = next((h.unit_post.post for h in await roster.holdings_of(turn.session, person)
                 if h.unit_post.unit_id == invite.unit.id
                 and h.unit_post.post.role == invite.role), None)
    if held is not None:  # the post the ward knows them by, not the role it maps to
        turn.say(turn.t("Welcome, {name}! You are registered as {post}.\n"
                        "Send /help to see what you can do.", name=person.full_name,
                        post=post_name(turn.t, held, invite.unit, path)))
    else:
        turn.say(turn.t("Welcome, {name}! You are registered as {role} of {unit}.\n"
                        "Send /help to see what you can do.",
                        name=person.full_name, role=role_name(turn, invite.role), unit=path))
    await turn.session.flush()  # the account is the person's before their cards are made
    await directive.catch_up(turn.session, turn.settings, turn.account, person.id, turn.now)
    if invite.role == Role.LEADER:
        await check_in.catch_up(turn, invite.unit)


FLOW = register(Flow(
    name="registration",
    title=N_("registration"),
    steps=(
        Step("code", "text", N_("Please send your invite code (8 letters and digits)."),
             max_length=64, validate=_check_code),
    ),
    finish=_bind,
))


@periodic("stranger-accounts", timedelta(hours=1))
async def purge_strangers(db: Database, settings: Settings, now: datetime) -> None:
    """Chat accounts of strangers and failed logins, idle a day, and old refused codes."""
    async with db.transaction() as session:
        accounts = await people.purge_strangers(session, now - STRANGERS_KEPT)
        failures = await invites.purge_failures(session, now)
    if accounts or failures:
        log.info("purged %d idle unregistered chat accounts and %d old refused invite codes",
                 accounts, failures)
