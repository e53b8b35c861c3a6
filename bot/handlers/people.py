"""/people: who of the ward's roster has not connected a chat yet, and which posts are vacant
(and for how many days), for ward staff and admins, within their own units."""

from __future__ import annotations

from bot.flows import handover, invite_card
from bot.handlers.access import STAFF
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.turn import Turn
from storage import roster, units
from storage.models import Unit

ROLES = STAFF
MAX_LINES = 30  # per list: a chat message stays readable (and under Telegram's limit)


HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command


@command("people", N_("Your ward's posts: who has not joined yet, which are vacant"),
         roles=ROLES, position=64)
async def people_command(turn: Turn, args: str) -> None:
    scopes = [grant.unit for grant in turn.grants if grant.role in ROLES]
    # A unit inside another of the asker's units is already counted there.
    tops = [u for u in scopes if not any(o.id != u.id and units.contains(o, u) for o in scopes)]
    for unit in {u.id: u for u in tops}.values():
        turn.say(await _overview(turn, unit))


async def _overview(turn: Turn, unit: Unit) -> str:
    """The posts not connected and the vacant ones, in roster order (as `coso people list`)."""
    entries = await roster.listing(turn.session, unit)
    waiting = [e for e in entries if e.seat.holder is not None and not e.channels]
    vacant = [e for e in entries if e.seat.holder is None]
    t = turn.t
    lines = [t("Posts in {unit}: {total}, {joined} connected to a chat.",
               unit=unit.name, total=t.number(len(entries)),
               joined=t.number(len(entries) - len(waiting) - len(vacant)))]
    if not entries:
        lines.append(t("No posts yet: the ward's roster is imported with `coso people "
                       "import`."))
    if waiting:
        lines += ["", t("Not connected yet ({n}):", n=t.number(len(waiting)))]
        lines += ["• " + t("{post}: {name}", post=_post(turn, e),
                           name=e.seat.holder.full_name if e.seat.holder else "")
                  for e in waiting[:MAX_LINES]]
        lines += _more(turn, len(waiting))
    if vacant:
        lines += ["", t("Vacant ({n}):", n=t.number(len(vacant)))]
        lines += ["• " + _vacant(turn, e) for e in vacant[:MAX_LINES]]
        lines += _more(turn, len(vacant))
    return "\n".join(lines)


def _vacant(turn: Turn, entry: roster.Listed) -> str:
    unit_post = entry.seat.unit_post
    since = unit_post.vacant_since or unit_post.created_at
    days = max(0, (turn.now - since).days)
    return turn.t.plural("{post}: vacant for {n} day (since {day})",
                         "{post}: vacant for {n} days (since {day})", days,
                         post=_post(turn, entry), day=turn.t.date(since))


def _post(turn: Turn, entry: roster.Listed) -> str:
    """'Tổ dân phố 3 · Khu phố 1 — Tổ trưởng tổ dân phố'."""
    post = entry.seat.unit_post.post
    label = post.label_vi if turn.t.locale == "vi" else post.label_en
    return turn.t("{place} — {post}", place=entry.place, post=label)


def _more(turn: Turn, count: int) -> list[str]:
    if count <= MAX_LINES:
        return []
    return [turn.t("… and {n} more (coso people list)", n=turn.t.number(count - MAX_LINES))]


@command("invite", N_("Send one person of your ward their invite card"), roles=ROLES,
         position=65)
async def invite_command(turn: Turn, args: str) -> None:
    await invite_card.start(turn)


@command("handover", N_("Hand a post of your ward over to another person"), roles=ROLES,
         position=66)
async def handover_command(turn: Turn, args: str) -> None:
    await handover.start(turn)
