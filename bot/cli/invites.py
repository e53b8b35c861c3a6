"""`coso invite create | cards | revoke`: single-use codes that bind a chat account to a
role, a person of the roster or a vacant post; the cards a ward prints for its meeting."""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from bot import cards
from bot.cards import TelegramBot, telegram_bot
from bot.cli.common import CliError, Context, with_db
from bot.cli.people import find_seat
from bot.handlers.access import ROLE_NAMES, post_name
from bot.i18n import Translator
from bot.settings import Settings
from storage import invites, roster, units
from storage.db import Database
from storage.models import Person, Post, Role, Unit, UnitPost, utcnow
from storage.roster import RosterError

_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$", re.I)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def register(commands: Any) -> None:
    group = commands.add_parser("invite", aliases=["invites"], help="invite codes",
                                description="Create and revoke invite codes.")
    sub = group.add_subparsers(title="invite commands", metavar="COMMAND", required=True)
    create = sub.add_parser(
        "create", help="create invite codes for a role on a unit",
        description="Create single-use invite codes. Each is shown with its unit, role, "
                    "expiry, the Telegram deep link and the /start line for Zalo and the "
                    "web chat.")
    create.add_argument("--unit", metavar="CODE", help="unit code (with --role or --post)")
    create.add_argument("--role", choices=[role.value for role in Role])
    create.add_argument("--person", type=int, metavar="ID",
                        help="one invite for this person on the roster: redeeming links the "
                             "chat to them; their earlier unused invite is revoked")
    create.add_argument("--post", metavar="POST",
                        help="with --unit: an invite for this vacant post; whoever redeems "
                             "it becomes its holder")
    create.add_argument("--count", type=_count, default=1, metavar="N",
                        help="how many codes (default 1, at most 500)")
    create.add_argument("--expires", type=parse_duration, metavar="DURATION",
                        help="e.g. 7d, 12h or 30m (default: COSO_INVITE_EXPIRY_DAYS days)")
    create.add_argument("--json", action="store_true",
                        help="print a JSON list of {code, unit, unit_path, role, expires_at, "
                             "telegram_link, start_command}")
    create.set_defaults(handler=handle_create)
    cards = sub.add_parser(
        "cards", help="print an invite card for each person of a ward's roster (A4 PDF)",
        description="Issue a fresh invite for each person holding a post under --unit "
                    "(their earlier unused invite stops working) and write an A4 PDF, 8 "
                    "cards a page: name, post, unit, the Telegram QR code, the code and how "
                    "to join on Zalo, in Vietnamese. Needs TELEGRAM_BOT_TOKEN for the link.")
    cards.add_argument("--unit", required=True, metavar="CODE", help="the ward (or any unit)")
    cards.add_argument("--only-unconnected", action="store_true",
                       help="only people who have not connected a chat yet")
    cards.add_argument("--out", required=True, type=Path, metavar="FILE.pdf")
    cards.add_argument("--expires", type=parse_duration, metavar="DURATION",
                       help="e.g. 30d (default: COSO_INVITE_EXPIRY_DAYS days)")
    cards.set_defaults(handler=handle_cards)
    revoke = sub.add_parser("revoke", help="revoke an unused invite code",
                            description="Revoke an invite code so it can no longer be used.")
    revoke.add_argument("code", metavar="CODE")
    revoke.set_defaults(handler=handle_revoke)


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None or int(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 12h or 30m")
    return timedelta(**{_UNITS[match[2].lower()]: int(match[1])})


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 500:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 500")
    return int(text)


# --- showing invites -------------------------------------------------------------------------

@dataclass(frozen=True)
class InviteView:
    code: str
    unit: str
    unit_path: str
    role: str
    expires_at: datetime
    person: str | None = None  # the roster person it is for (None: a role or a vacant post)
    post: str | None = None  # the vacant post it fills (Vietnamese label), if any
    # The post the person holds or the vacant one, named with its unit in the reader's
    # language ("Tổ trưởng tổ dân phố 1, Khu phố 1, …"): shown instead of the bare role.
    title: str | None = None


async def views(session: AsyncSession, created: list[invites.NewInvite],
                t: Translator | None = None) -> list[InviteView]:
    """What the admin needs to hand each new code over (call inside the session); with `t`,
    each post's title in its language."""
    paths: dict[int, str] = {}
    result = []
    for new in created:
        unit = new.invite.unit
        if unit.id not in paths:
            paths[unit.id] = await units.full_path(session, unit)
        person = (await session.get(Person, new.invite.person_id)
                  if new.invite.person_id is not None else None)
        seat = (await session.get(UnitPost, new.invite.unit_post_id, options=[
            joinedload(UnitPost.post)]) if new.invite.unit_post_id is not None else None)
        post = seat.post if seat else await _held_post(session, person, unit, new.invite.role)
        result.append(InviteView(new.code, unit.code, paths[unit.id], new.invite.role,
                                 new.invite.expires_at, person.full_name if person else None,
                                 seat.post.label_vi if seat else None,
                                 post_name(t, post, unit, paths[unit.id])
                                 if t is not None and post is not None else None))
    return result


async def _held_post(session: AsyncSession, person: Person | None, unit: Unit,
                     role: str) -> Post | None:
    """The post of the roster person's invite: the one they hold on its unit, for its role."""
    if person is None:
        return None
    return next((h.unit_post.post for h in await roster.holdings_of(session, person)
                 if h.unit_post.unit_id == unit.id and h.unit_post.post.role == role), None)


# One bot for every invite shown, or each invite code's own (several bots: the one serving
# the invite's unit, TELEGRAM_BOT_TOKENS).
Bots = TelegramBot | Mapping[str, TelegramBot]


def bot_for(bots: Bots, code: str) -> TelegramBot:
    return bots if isinstance(bots, TelegramBot) else bots[code]


async def serving_bots(settings: Settings, t: Translator,
                       codes_above: Mapping[str, Sequence[str]]) -> dict[str, TelegramBot]:
    """invite code -> the Telegram bot serving its unit (codes_above: the codes of the
    invite's unit and those above it, nearest first); one getMe per bot."""
    asked: dict[str, TelegramBot] = {}
    found = {}
    for code, above in codes_above.items():
        serving = settings.bot_serving("telegram", above)
        key = serving.key if serving is not None else ""
        if key not in asked:
            asked[key] = await telegram_bot(settings, t, above)
        found[code] = asked[key]
    return found


def as_json(ctx: Context, found: list[InviteView], bots: Bots) -> list[dict[str, Any]]:
    return [{"code": view.code, "unit": view.unit, "unit_path": view.unit_path,
             "role": view.role, "person": view.person,
             "expires_at": view.expires_at.astimezone(ctx.settings.tz).isoformat(),
             "telegram_link": bot_for(bots, view.code).link(view.code),
             "start_command": f"/start {view.code}"}
            for view in found]


def show(ctx: Context, found: list[InviteView], bots: Bots, json: bool) -> None:
    """Print the invites (text or JSON); a missing Telegram link is explained, on stderr
    when the output is JSON so that scripts read clean JSON."""
    if json:
        ctx.json(as_json(ctx, found, bots))
        explain_missing_links(ctx, found, bots)
        return
    for view in found:
        _show_one(ctx, view, bot_for(bots, view.code))


def explain_missing_links(ctx: Context, found: list[InviteView], bots: Bots) -> None:
    """On stderr, each reason a Telegram link is missing, once."""
    for problem in dict.fromkeys(bot_for(bots, view.code).problem for view in found):
        if problem:
            ctx.err(ctx.t("Telegram link unavailable: {reason}", reason=problem))


def _show_one(ctx: Context, view: InviteView, bot: TelegramBot) -> None:
    t = ctx.t
    link = bot.link(view.code)
    ctx.out(t("Invite code: {code}", code=view.code))
    # Every invite says whom it is for, so none reads as a bare code line.
    if view.person:
        ctx.out(t("For: {name}", name=view.person))
    elif view.post:
        ctx.out(t("For: whoever takes the vacant post {post}", post=view.post))
    else:
        ctx.out(t("For: the person you hand it to"))
    ctx.out(t("Unit: {path} ({code})", path=view.unit_path, code=view.unit))
    ctx.out(t("Post: {post}", post=view.title) if view.title else
            t("Role: {role}", role=t(ROLE_NAMES[Role(view.role)])))
    ctx.out(t("Expires: {when}", when=t.datetime(view.expires_at)))
    ctx.out(t("Telegram: {link}", link=link) if link else
            t("Telegram link unavailable: {reason}", reason=bot.problem))
    ctx.out(t("Zalo: send {command}", command=f"/start {view.code}"))
    if ctx.settings.web_chat:  # the web chat asks for the code in a field of its own
        ctx.out(t("Web chat ({url}): type {code} in the invite code field", code=view.code,
                  url=ctx.settings.public_url or
                  f"http://{ctx.settings.web_host}:{ctx.settings.web_port}"))
    ctx.out()


# --- create / revoke -------------------------------------------------------------------------

def handle_create(ctx: Context, args: argparse.Namespace) -> int:
    expires_in = args.expires or timedelta(days=ctx.settings.invite_expiry_days)
    if args.person is not None or args.post is not None:
        return _create_roster(ctx, args, expires_in)
    if args.unit is None or args.role is None:
        raise CliError(ctx.t("give --unit and --role, --unit and --post, or --person"))

    async def work(db: Database) -> tuple[list[InviteView], TelegramBot] | None:
        async with db.transaction() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            created = await invites.create(session, unit, args.role, expires_in, args.count)
            found = await views(session, created, ctx.t)
            codes = await units.codes_above(session, unit)
        # With several bots, the link is to the bot serving the unit (TELEGRAM_BOT_TOKENS).
        return found, await telegram_bot(ctx.settings, ctx.t, codes)

    outcome = with_db(ctx, work)
    if outcome is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    show(ctx, *outcome, json=args.json)
    return 0


def _create_roster(ctx: Context, args: argparse.Namespace, expires_in: timedelta) -> int:
    """One invite for a person of the roster, or for a vacant post."""
    if (args.person is None) == (args.post is None) or args.count != 1 or args.role \
            or (args.post is not None and args.unit is None):
        raise CliError(ctx.t("give either --person ID, or --unit CODE --post POST (one "
                             "invite, no --role)"))

    async def work(db: Database) -> tuple[list[InviteView], TelegramBot]:
        async with db.transaction() as session:
            try:
                if args.person is not None:
                    person = await roster.person_by_id(session, args.person)
                    if person is None:
                        raise CliError(ctx.t("no active person with id {id}", id=args.person))
                    new = await roster.invite_person(session, person, expires_in)
                else:
                    _, unit_post = await find_seat(session, ctx, args.unit, args.post)
                    new = await roster.invite_post(session, unit_post, expires_in)
            except RosterError as exc:
                raise CliError(ctx.t(exc.msgid, **exc.values)) from None
            found = await views(session, [new], ctx.t)
            codes = await units.codes_above(session, new.invite.unit)
        return found, await telegram_bot(ctx.settings, ctx.t, codes)

    show(ctx, *with_db(ctx, work), json=args.json)
    return 0


def handle_cards(ctx: Context, args: argparse.Namespace) -> int:
    """The link comes first: with Telegram on and its username unknown, a card's QR code
    would be useless, so no invite is revoked or issued then. Without Telegram the cards
    carry the code and the other ways in (Zalo, the web chat), no QR code."""
    expires_in = args.expires or timedelta(days=ctx.settings.invite_expiry_days)
    async def unit_codes(db: Database) -> list[str]:
        async with db.read() as session:
            unit = await units.by_code(session, args.unit)
            return await units.codes_above(session, unit) if unit else []

    # With several bots (TELEGRAM_BOT_TOKENS), each card links to the bot serving its unit.
    several = len(ctx.settings.telegram_bots) > 1
    bot = asyncio.run(telegram_bot(ctx.settings, ctx.t,
                                   with_db(ctx, unit_codes) if several else ()))
    if bot.username is None and ctx.settings.telegram_bots:
        raise CliError(ctx.t("invite cards need the Telegram link: {reason}",
                             reason=bot.problem))

    async def work(db: Database) -> list[cards.Card] | None:
        async with db.transaction() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            made = await roster.invite_holders(session, unit, expires_in,
                                               only_unconnected=args.only_unconnected)
            paths: dict[int, str] = {}
            bots: dict[int, TelegramBot] = {}
            found = []
            for item in made:
                place = item.unit_post.unit
                if place.id not in paths:
                    above = await units.ancestors(session, place)
                    paths[place.id] = ", ".join(u.name for u in above)
                    bots[place.id] = await telegram_bot(
                        ctx.settings, ctx.t, [u.code for u in above]) if several else bot
                link = bots[place.id].link(item.code) or bot.link(item.code)
                found.append(cards.Card.for_settings(
                    ctx.settings, item.person.full_name, item.unit_post.post.label_vi,
                    paths[place.id], item.code, link))
            return found

    made = with_db(ctx, work)
    if made is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    if not made:
        ctx.out(ctx.t("Nobody to print a card for under {code}.", code=args.unit))
        return 0
    cards.write_pdf(made, Translator("vi", ctx.settings.tz), args.out)
    ctx.out(ctx.t.plural("Wrote {n} invite card to {file}.", "Wrote {n} invite cards to "
                         "{file}.", len(made), file=str(args.out)))
    return 0


def handle_revoke(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> tuple[invites.InviteProblem | None, bool]:
        async with db.transaction() as session:
            invite = await invites.find(session, args.code)
            problem = invites.problem(invite, utcnow())
            if invite is None or problem in (invites.InviteProblem.USED,
                                             invites.InviteProblem.REVOKED):
                return problem, False
            await invites.revoke(session, args.code)
            return problem, True

    problem, revoked = with_db(ctx, work)
    code = invites.normalize_code(args.code)
    if problem is invites.InviteProblem.UNKNOWN:
        raise CliError(ctx.t("unknown invite code {code}", code=code))
    if problem is invites.InviteProblem.USED:
        raise CliError(ctx.t("invite {code} was already used; to remove that person's access "
                             "run `coso users deactivate ID`", code=code))
    if problem is invites.InviteProblem.REVOKED:
        ctx.out(ctx.t("Invite {code} was already revoked.", code=code))
        return 0
    assert revoked
    ctx.out(ctx.t("Invite {code} revoked.", code=code))
    return 0

