"""The commands everyone has: /start, /help, /lang, /cancel."""

from __future__ import annotations

from bot.flows import engine, language, registration
from bot.handlers.access import post_name, role_name
from bot.handlers.commands import Handlers, offered
from bot.handlers.words import TABLE
from bot.i18n import N_
from bot.turn import Turn
from storage import roster, units
from storage.models import Post

HANDLERS = Handlers()  # included by bot.handlers.included
command = HANDLERS.command


@command("start", N_("Register with an invite code"), position=90, newcomers_only=True)
async def start(turn: Turn, args: str) -> None:
    if args or turn.person is None:
        await engine.begin(turn, registration.FLOW, first_answer=args or None)
        return
    turn.say(turn.t("Welcome back, {name}. Send /help to see what you can do.",
                    name=turn.person.full_name))


@command("help", N_("What I can do for you"), position=81)
async def help_(turn: Turn, args: str) -> None:
    if turn.person is None:
        turn.say(turn.t("Coso helps heads of quarters, hamlets and residential groups report to "
                        "their ward.\nTo start, ask your ward staff for an invite code, then "
                        "send /start followed by the code, e.g. /start AB12CD34.\n"
                        "/lang changes the language."))
        return
    lines = [turn.t("You are:")]
    # The post a grant comes with names it as the ward does ("Tổ trưởng tổ dân phố 1, …").
    posts: dict[tuple[str, int], list[Post]] = {}
    for held in await roster.holdings_of(turn.session, turn.person):
        seat = held.unit_post
        posts.setdefault((seat.post.role, seat.unit_id), []).append(seat.post)
    for grant in turn.grants:
        path = await units.full_path(turn.session, grant.unit)
        lines += [f"• {post_name(turn.t, post, grant.unit, path)}"
                  for post in posts.get((grant.role, grant.unit.id), [])
                  ] or [f"• {role_name(turn, grant.role)} — {path}"]
    lines += ["", turn.t("Commands:")]
    lines += [f"{_named(c.name)} — {turn.t(c.description)}" for c in offered(turn)]
    lines += ["", turn.t("The words in brackets work too, typed without the slash and "
                         "without accents."),
              turn.t("In any question: 'back' changes the previous answer, 'skip' passes an "
                     "optional one, 'cancel' stops; the buttons under it do the same.")]
    turn.say("\n".join(lines))


def _named(name: str) -> str:
    """'/report (báo cáo)': the command and the first word that also runs it."""
    entry = TABLE.get(name)
    return f"/{name} ({entry.words[0]})" if entry else f"/{name}"


@command("lang", N_("Change language / Đổi ngôn ngữ"), position=80)
async def lang(turn: Turn, args: str) -> None:
    await engine.begin(turn, language.FLOW, first_answer=args or None)


@command("cancel", N_("Stop the current question"), position=82)
async def cancel(turn: Turn, args: str) -> None:
    # Reached only with no conversation open; an open one takes /cancel itself.
    turn.say(turn.t("There is nothing to cancel."))
