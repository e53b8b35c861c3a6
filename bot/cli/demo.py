"""`coso demo`: a demo ward with quarters, groups, its roster and an invite per person."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import cards
from bot.cli.common import Context, with_db
from bot.cli.invites import (
    InviteView,
    TelegramBot,
    as_json,
    explain_missing_links,
    serving_bots,
    show,
    views,
)
from bot.handlers.access import ROLE_NAMES
from bot.i18n import Translator
from storage import demo, invites, migrate, roster, units
from storage.db import Database
from storage.models import Person, Role
from storage.private import private_dir


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo", help="build a demo ward and print invites to try the bot with",
        description="Migrate the database, then create (or reuse) a demo ward in Ho Chi Minh "
                    "City with 3 quarters of 2 groups each and its roster: a head for each "
                    "quarter and group (one group's post left vacant), ward staff and a "
                    "monitor. Prints a fresh invite per person (redeeming it claims that "
                    "person), one for the vacant post and one for an admin. Safe to repeat.")
    parser.add_argument("--json", action="store_true",
                        help='print {"ward": {code, path}, "invites": [...]} with invites as '
                             "in `coso invite create --json`")
    parser.set_defaults(handler=handle_demo)


CARDS_FILE = "demo-invite-cards.pdf"  # in COSO_DATA_DIR


@dataclass(frozen=True)
class DemoOutcome:
    ward_code: str
    ward_path: str
    invites: list[InviteView]
    bots: dict[str, TelegramBot]  # invite code -> the bot its link opens
    cards: Path | None = None  # the demo people's invite cards, when there is a bot link


def handle_demo(ctx: Context, args: argparse.Namespace) -> int:
    show_demo(ctx, with_db(ctx, lambda db: build_demo(ctx, db)), args.json)
    return 0


async def build_demo(ctx: Context, db: Database) -> DemoOutcome:
    """Migrate, build the demo in one transaction, then look up the Telegram bot."""
    await migrate.upgrade_if_behind(db, ctx.settings.database_url)
    expires_in = timedelta(days=ctx.settings.invite_expiry_days)
    async with db.transaction() as session:
        built = await demo.build(session, expires_in, tz=ctx.settings.tz)
        path = await units.full_path(session, built.ward)
        found = await views(session, built.invites, ctx.t)
        card_posts = await _card_posts(session, built.invites,
                                       Translator("vi", ctx.settings.tz))
        # With several bots (TELEGRAM_BOT_TOKENS), each invite links to the bot serving its
        # unit, as `coso invite create` and the chat's invite cards do.
        above = {new.code: await units.codes_above(session, new.invite.unit)
                 for new in built.invites}
    bots = await serving_bots(ctx.settings, ctx.t, above)
    written = None
    if any(bot.username for bot in bots.values()) or not ctx.settings.telegram_bots:
        cards_of = [cards.Card.for_settings(ctx.settings, view.person, card_posts[view.code],
                                            view.unit_path, view.code,
                                            bots[view.code].link(view.code))
                    for view in found if view.person is not None]
        written = cards.write_pdf(cards_of, Translator("vi", ctx.settings.tz),
                                  private_dir(ctx.settings.data_dir) / CARDS_FILE)
    return DemoOutcome(built.ward.code, path, found, bots, written)


async def _card_posts(session: AsyncSession, made: list[invites.NewInvite], t: Translator
                      ) -> dict[str, str]:
    """code -> what a person's card names them: their post, or their role on the ward."""
    posts = {}
    for new in made:
        person = (await session.get(Person, new.invite.person_id)
                  if new.invite.person_id is not None else None)
        if person is None:
            continue
        held = await roster.holdings_of(session, person)
        posts[new.code] = (held[0].unit_post.post.label_vi if held
                           else t(ROLE_NAMES[Role(new.invite.role)]))
    return posts


async def build_demo_if_empty(ctx: Context, db: Database) -> DemoOutcome | None:
    await migrate.upgrade_if_behind(db, ctx.settings.database_url)
    async with db.read() as session:
        count = await units.count(session)
    return await build_demo(ctx, db) if count == 0 else None


def show_demo(ctx: Context, outcome: DemoOutcome, json: bool) -> None:
    if json:
        ctx.json({"ward": {"code": outcome.ward_code, "path": outcome.ward_path},
                  "invites": as_json(ctx, outcome.invites, outcome.bots),
                  "cards": str(outcome.cards) if outcome.cards else None})
        explain_missing_links(ctx, outcome.invites, outcome.bots)
        return
    ctx.out(ctx.t("Demo ward ready: {path} ({code})", path=outcome.ward_path,
                  code=outcome.ward_code))
    ctx.out(ctx.t("Try it: type an invite code below in the web chat's invite code field, "
                  "open its link on Telegram, or send its /start line on Zalo."))
    if outcome.cards is not None:
        ctx.out(ctx.t("Invite cards to print: {file}", file=str(outcome.cards)))
    ctx.out()
    show(ctx, outcome.invites, outcome.bots, json=False)
