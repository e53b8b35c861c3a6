"""/web: a single-use login link to the ward dashboard; /web sessions lists and ends them."""

from __future__ import annotations

import logging

from bot.dashboard.links import DASHBOARD_ROLES, login_url
from bot.handlers.commands import Handlers
from bot.i18n import N_
from bot.turn import Turn
from storage import dashboard_sessions
from wording import fold

log = logging.getLogger(__name__)

LIST_WORDS = frozenset({"sessions", "phien", "phien dang nhap"})
END_WORDS = frozenset({"end", "logout", "ket thuc", "thoat"})


HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command


@command("web", N_("The ward dashboard in your browser (a login link)"),
         roles=DASHBOARD_ROLES, position=64)
async def web_command(turn: Turn, args: str) -> None:
    if not turn.settings.dashboard:
        turn.say(turn.t("The dashboard is switched off on this server."))
        return
    assert turn.person is not None  # the roles above are held by a registered person
    words = fold(args).split()
    if words and words[0] in LIST_WORDS:
        await _list(turn)
    elif words and words[0] in END_WORDS:
        await _end(turn, words[1:])
    else:
        token = await dashboard_sessions.create_link(turn.session, turn.person, turn.now)
        log.info("dashboard: a login link for account %s", turn.account.id)
        turn.say(turn.t("Open this link in your browser within {minutes} minutes; it works "
                        "once and logs you in for {hours} hours. Do not forward it.\n{url}",
                        minutes=dashboard_sessions.LINK_MINUTES,
                        hours=dashboard_sessions.SESSION_HOURS,
                        url=login_url(turn.settings, token)))


async def _list(turn: Turn) -> None:
    assert turn.person is not None
    live = await dashboard_sessions.live_of(turn.session, turn.person, turn.now)
    if not live:
        turn.say(turn.t("You have no open dashboard sessions."))
        return
    lines = [turn.t("Open dashboard sessions:")]
    for row in live:
        assert row.redeemed_at is not None and row.expires_at is not None
        lines.append(turn.t("#{id}: opened {opened}, until {until}", id=row.id,
                            opened=turn.t.datetime(row.redeemed_at),
                            until=turn.t.datetime(row.expires_at)))
    lines.append(turn.t("To end one: /web end NUMBER. To end them all: /web end all."))
    turn.say("\n".join(lines))


async def _end(turn: Turn, words: list[str]) -> None:
    assert turn.person is not None
    wanted = words[0].lstrip("#") if words else ""
    if wanted not in {"all", "tat ca", "tat"} and not wanted.isdigit():
        turn.say(turn.t("To end one: /web end NUMBER. To end them all: /web end all."))
        return
    ended = await dashboard_sessions.end(turn.session, turn.person,
                                         int(wanted) if wanted.isdigit() else None, turn.now)
    turn.say(turn.t.plural("{n} dashboard session ended.", "{n} dashboard sessions ended.",
                           ended))
