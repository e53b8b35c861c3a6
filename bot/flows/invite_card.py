"""/invite: ward staff (and admins) send one person of their roster a fresh invite card.

person (those not yet connected first, or found by name without diacritics) → confirm
(their earlier code stops working) → the card: on Telegram and the web chat a PNG (as on the
printed cards: name, post, unit, the QR code of the Telegram link, the code, the Zalo steps)
with the link and the code as text; on Zalo the same picture by signed link when
COSO_PUBLIC_URL is set, and the text in any case.

Option values carry what branching needs: 'p:<person id>' for a person, 'search' to type a
name. The person is checked against the asker's scope again at write time.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bot import cards, files
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.support import scope_roots
from bot.handlers.access import STAFF, refuse
from bot.i18n import N_, Translator
from bot.turn import Turn
from storage import roster, units
from storage.models import Platform, Unit
from storage.roster import Holder, RosterError

log = logging.getLogger(__name__)

ROLES = STAFF
LISTED = 8  # people offered at first (not yet connected first); anyone else by search
MATCHES = 8
MAX_QUERY = 60
PICKED = "p"
SEARCH = "search"
# The bot's Telegram username by token, asked once (getMe) rather than at every card.
_USERNAMES: dict[str, str] = {}


def roots(turn: Turn) -> list[Unit]:
    return scope_roots(turn, ROLES)


async def labels(turn: Turn, found: Sequence[Holder], everyone: Sequence[Holder]
                 ) -> list[Option]:
    """'Name · unit · post', the unit as short as tells it from every other of the roster's
    ("Khu phố 2 › Tổ dân phố 1": each quarter has a group 1); the post last, as a button
    cut to Telegram's length loses the least there."""
    short = await units.short_paths(turn.session, [h.unit_post.unit.path for h in everyone])
    return [Option(f"{PICKED}:{h.person.id}",
                   f"{h.person.full_name} · {short[h.unit_post.unit.path]} · "
                   f"{post_label(turn, h)}", literal=True) for h in found]


def post_label(turn: Turn, holder: Holder) -> str:
    post = holder.unit_post.post
    return post.label_vi if turn.t.locale == "vi" else post.label_en


async def _pick_options(turn: Turn) -> Sequence[Option]:
    everyone = await roster.holders_in(turn.session, roots(turn))
    return (*await labels(turn, everyone[:LISTED], everyone),
            Option(SEARCH, N_("Search by name")))


async def _match_options(turn: Turn) -> Sequence[Option]:
    wanted = set(turn.data.get("card_matches") or [])
    everyone = await roster.holders_in(turn.session, roots(turn))
    found = [h for h in everyone if h.person.id in wanted]
    return (*await labels(turn, found, everyone), Option(SEARCH, N_("Search again")))


async def _run_search(turn: Turn, query: Any) -> None:
    found = await roster.holders_in(turn.session, roots(turn), str(query))
    turn.data["card_matches"] = [h.person.id for h in found[:MATCHES]]


def _route(key: str) -> engine.Branch:
    def route(data: Mapping[str, Any]) -> str:
        return "query" if data.get(key) == SEARCH else "confirm"

    return route


def _after_query(data: Mapping[str, Any]) -> str:
    return "match" if data.get("card_matches") else "none"


async def _record(turn: Turn, value: Any) -> None:
    """The picked person in data['card_person'] (a search answer clears it)."""
    kind, _, rest = str(value or "").partition(":")
    turn.data["card_person"] = int(rest) if kind == PICKED and rest.isdigit() else None


async def _chosen(turn: Turn) -> Holder | None:
    person_id = turn.data.get("card_person")
    return None if person_id is None else await roster.holder_in(turn.session, roots(turn),
                                                                 int(person_id))


async def _summary(turn: Turn) -> str:
    holder = await _chosen(turn)
    if holder is None:
        return "—"
    return turn.t("A new invite card for {name} ({post}, {unit}). The code they had before "
                  "stops working.", name=holder.person.full_name, post=post_label(turn, holder),
                  unit=holder.unit_post.unit.name)


async def _finish(turn: Turn) -> None:
    holder = await _chosen(turn)
    if holder is None:
        refuse(turn, "/invite for this person", ROLES)
        return
    bot = await telegram(turn, holder.unit_post.unit)
    try:
        new = await roster.invite_person(
            turn.session, holder.person, timedelta(days=turn.settings.invite_expiry_days))
    except RosterError as exc:
        turn.say(turn.t(exc.msgid, **exc.values))
        return
    log.info("invite card for person %s issued by account %s", holder.person.id,
             turn.account.id)
    link = bot.link(new.code)
    # In Vietnamese whatever the sender's language, as the printed cards: it is for the
    # person who joins, not for the ward staff who sends it. Without Telegram (a web chat or
    # Zalo only set-up) the card still comes, with no QR code: the code and the other ways.
    card = cards.Card.for_settings(turn.settings, holder.person.full_name,
                                   holder.unit_post.post.label_vi,
                                   await units.full_path(turn.session, holder.unit_post.unit),
                                   new.code, link)
    text = _card_text(turn, holder, card, new.invite.expires_at)
    path = turn.settings.data_dir / "cards" / f"{secrets.token_hex(12)}.png"
    photo: str | None = str(cards.write_png(card, Translator("vi", turn.settings.tz), path))
    if turn.account.channel == Platform.ZALO:  # Zalo fetches a photo by URL only
        photo = files.signed_url(turn.settings, str(photo))  # None without COSO_PUBLIC_URL
        if photo is None:
            text += "\n\n" + turn.t("The card's image cannot reach Zalo until the operator "
                                     "sets COSO_PUBLIC_URL; the code above works as it is.")
    turn.say(text, photo=photo)


def _card_text(turn: Turn, holder: Holder, card: cards.Card, expires: Any) -> str:
    t = turn.t
    lines = [t("Invite for {name} ({post}, {unit}), valid until {when}. Send them the card "
               "or this message.", name=holder.person.full_name, post=post_label(turn, holder),
               unit=holder.unit_post.unit.name, when=t.date(expires)),
             "", t("Invite code: {code}", code=cards.spaced(card.code))]
    if card.link is not None:
        lines.append(t("Telegram: open {link}", link=card.link))
    return "\n".join(lines + cards.other_ways(card, t))


async def telegram(turn: Turn, unit: Unit) -> cards.TelegramBot:
    """The Telegram username of the bot serving the unit (TELEGRAM_BOT_TOKENS; the default
    bot without), for the card's link: getMe once per token."""
    codes = await units.codes_above(turn.session, unit)
    serving = turn.settings.bot_serving("telegram", codes)
    token = serving.token if serving is not None else None
    if token and token in _USERNAMES:
        return cards.TelegramBot(_USERNAMES[token])
    bot = await cards.telegram_bot(turn.settings, turn.t, codes)
    if token and bot.username:
        _USERNAMES[token] = bot.username
    return bot


FLOW = register(Flow(
    name="invite_card",
    title=N_("the invite card"),
    steps=(
        Step("pick", "choice", N_("Whose invite card? Those not connected to a chat yet come "
                                  "first; search to find anyone else."),
             options=_pick_options, on_answer=_record, goes_to=("query", "confirm"),
             next=_route("pick")),
        Step("query", "text", N_("Type part of the person's name (without diacritics is "
                                 "fine, e.g. nguyen van)."),
             max_length=MAX_QUERY, on_answer=_run_search, goes_to=("match", "none"),
             next=_after_query),
        Step("match", "choice", N_("People on your roster matching “{query}”:"),
             options=_match_options, on_answer=_record, goes_to=("query", "confirm"),
             next=_route("match")),
        Step("none", "choice", N_("Nobody holding a post in your area matches “{query}”."),
             options=(Option(SEARCH, N_("Search again")),), goes_to=("query",)),
        Step("confirm", "confirm", N_("Send the card?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    if not roots(turn):
        refuse(turn, "/invite", ROLES)
        return
    if not await roster.holders_in(turn.session, roots(turn)):
        turn.say(turn.t("Nobody holds a post in your area yet: the ward's roster is imported "
                        "with `coso people import`."))
        return
    await engine.begin(turn, FLOW)
