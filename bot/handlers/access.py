"""Who may do what: a role held on a unit covers that unit's subtree."""

from __future__ import annotations

import logging

from bot.i18n import N_, Translator
from bot.turn import Turn
from storage.models import Post, Role, Unit
from storage.units import contains
from wording import post_title

log = logging.getLogger(__name__)

# Who may do what, named once: each flow and command says which of these it takes.
LEADERS = frozenset({Role.LEADER})
MONITORS = frozenset({Role.MONITOR})
STAFF = frozenset({Role.WARD_STAFF, Role.ADMIN})  # ward staff and administrators
WRITERS = LEADERS | STAFF  # who record households, reports and support
OVERSEERS = STAFF | MONITORS  # who read support deliveries without recording them
ANY_ROLE = WRITERS | MONITORS
# An urgent report's alert: taken, viewed and its leader called by the ward staff and
# administrators over the report's unit (checked in storage: storage.reports.get_in_scope).
ALERT_ROLES = STAFF
# Who read a household head's name in full when viewing a report: those who meet the
# household (its leader, the ward staff who act on it). Administrators above the ward and
# monitors read initials, as the dashboard shows everyone.
NAME_READERS = frozenset({Role.LEADER, Role.WARD_STAFF})

ROLE_NAMES = {
    Role.LEADER: N_("leader (head of a quarter, hamlet or residential group)"),
    Role.WARD_STAFF: N_("ward staff"),
    Role.ADMIN: N_("administrator"),
    Role.MONITOR: N_("monitor (Fatherland Front, mass organisations)"),
}


def permits(turn: Turn, roles: frozenset[str]) -> bool:
    """True when the command is open to everyone or the person holds one of the roles."""
    return not roles or turn.has_role(*roles)


def reaches(turn: Turn, unit: Unit, roles: frozenset[str]) -> bool:
    """True when the person holds one of the roles on this unit or above it."""
    return any(grant.role in roles and contains(grant.unit, unit) for grant in turn.grants)


def refuse(turn: Turn, action: str, roles: frozenset[str]) -> None:
    """Answer a refused action and log it, without any personal data."""
    log.info("refused %s for account %s (roles %s)", action, turn.account.id,
             sorted({grant.role for grant in turn.grants}) or "none")
    if turn.person is None or not turn.grants:  # no role left after a handover: a stranger
        turn.say(turn.t("You are not registered yet. Ask your ward staff for an invite code, "
                        "then send /start followed by the code."))
        return
    names = ", ".join(turn.t(ROLE_NAMES[Role(role)]) for role in sorted(roles))
    turn.say(turn.t("Sorry, this is only for: {roles}.", roles=names))


def role_name(turn: Turn, role: str) -> str:
    return turn.t(ROLE_NAMES[Role(role)])


def post_name(t: Translator, post: Post, unit: Unit, path: str) -> str:
    """Who a post holder is, as the ward says it: 'Tổ trưởng tổ dân phố 1, Khu phố 1, Phường
    Bến Thành, …' (`path`: the unit's full path, its own name first); in English 'Head of
    residential group, Tổ dân phố 1, Khu phố 1, …'. A post whose name does not end with the
    unit's kind reads 'Bí thư chi bộ Khu phố 1, …'."""
    if t.locale == "vi":
        merged = post_title(post.label_vi, unit.name)
        if merged is not None:
            rest = path[len(unit.name):] if path.startswith(unit.name) else ""
            return merged + rest
    label = post.label_vi if t.locale == "vi" else post.label_en
    return t("{post}, {unit}", post=label, unit=path)
