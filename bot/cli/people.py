"""`coso people import | list | assign`: a ward's roster of posts and the people holding them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import CliError, Context, import_file, with_db
from bot.handlers.access import ROLE_NAMES
from bot.i18n import Translator
from storage import roster, units
from storage.db import Database
from storage.models import Role, Unit, utcnow
from storage.roster import RosterError
from storage.roster_import import ImportResult, RosterRow, apply_rows, read_csv


def register(commands: Any) -> None:
    group = commands.add_parser("people", help="a ward's roster: posts and who holds them",
                                description="Import, list and hand over a ward's posts.")
    sub = group.add_subparsers(title="people commands", metavar="COMMAND", required=True)
    imp = sub.add_parser(
        "import", help="a ward's roster from a CSV file",
        description="Read a UTF-8 CSV file (Excel's CSV UTF-8 is fine) with the header "
                    "unit_code,post,full_name,phone; one file per ward. `post` is a post's key or "
                    "label (see `coso people posts`). A blank full_name declares a vacant "
                    "post; another name than the holder's hands the post over. The whole "
                    "file is imported, or nothing when a row is bad.")
    imp.add_argument("file", metavar="FILE.csv", type=Path)
    imp.set_defaults(handler=handle_import)
    listing = sub.add_parser("list", help="each post of a unit's subtree and its holder",
                             description="Show each post, its holder, the chats they have "
                                         "connected and since when, and since when a vacant "
                                         "post is vacant: the units in the tree's order "
                                         "(Khu phố 2 before Khu phố 11), each written as "
                                         "'Tổ dân phố 3 · Khu phố 1', then the posts in the "
                                         "catalogue's order.")
    listing.add_argument("--unit", required=True, metavar="CODE")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON list of {unit, unit_name, place, post, "
                              "post_label, person_id, full_name, phone, channels, connected, "
                              "held_since, vacant_since}, units in the tree's order, each "
                              "unit's posts in the catalogue's")
    listing.set_defaults(handler=handle_list)
    posts = sub.add_parser("posts", help="the catalogue of posts",
                           description="Show the posts, the role each gives and the unit "
                                       "levels it exists on.")
    posts.set_defaults(handler=handle_posts)
    assign = sub.add_parser(
        "assign", help="hand a post over to a person",
        description="Make PERSON the holder of POST on UNIT. The previous holder's access "
                    "ends at once and their open conversation closes; the unit's directives "
                    "not yet done pass to the new holder. The history is kept.")
    assign.add_argument("--unit", required=True, metavar="CODE")
    assign.add_argument("--post", required=True, metavar="POST", help="a post's key or label")
    assign.add_argument("--person", required=True, type=int, metavar="ID",
                        help="a person's id (from `coso people list --json`)")
    assign.set_defaults(handler=handle_assign)


def handle_import(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database, rows: list[RosterRow]) -> tuple[ImportResult, str]:
        async with db.transaction() as session:
            result = await apply_rows(session, rows)
            path = await units.full_path(session, result.ward) if result.ward else ""
            return result, path

    result, path = import_file(ctx, args.file, read_csv,
                               lambda rows: with_db(ctx, lambda db: work(db, rows)))
    if result.ward is None:
        raise CliError(ctx.t("{file} has no rows", file=str(args.file)))
    ctx.out(ctx.t.plural("Imported {n} post for {ward} ({people} new people, {handovers} "
                         "handovers).",
                         "Imported {n} posts for {ward} ({people} new people, {handovers} "
                         "handovers).", result.posts, ward=path,
                         people=ctx.t.number(result.people_created),
                         handovers=ctx.t.number(result.handovers)))
    return 0


def handle_list(ctx: Context, args: argparse.Namespace) -> int:
    entries = with_db(ctx, lambda db: _entries(db, args.unit))
    if entries is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    if args.json:
        ctx.json([_as_json(entry) for entry in entries])
        return 0
    if not entries:
        ctx.out(ctx.t("No posts yet: import the ward's roster with `coso people import "
                      "FILE.csv`."))
        return 0
    t = ctx.t
    ctx.table([t("Unit"), t("Post"), t("Holder")],
              [[entry.place, entry.seat.unit_post.post.label_vi, _holder(t, entry)]
               for entry in entries])
    return 0


def _holder(t: Translator, entry: roster.Listed) -> str:
    """'#4 Võ Thị Hoa (telegram) since 2/12/2026', or 'vacant 5 days (since 28/11/2026)'."""
    holding, unit_post = entry.seat.holding, entry.seat.unit_post
    if holding is None:
        since = unit_post.vacant_since or unit_post.created_at
        days = max(0, (utcnow() - since).days)
        if not days:
            return t("vacant less than a day (since {day})", day=t.date(since))
        return t.plural("vacant {n} day (since {day})", "vacant {n} days (since {day})", days,
                        day=t.date(since))
    channels = ", ".join(entry.channels) or t("not connected")
    return t("#{id} {name} ({channels}) since {day}", id=holding.person.id,
             name=holding.person.full_name, channels=channels,
             day=t.date(holding.started_at))


async def _entries(db: Database, code: str) -> list[roster.Listed] | None:
    async with db.read() as session:
        unit = await units.by_code(session, code)
        if unit is None:
            return None
        return await roster.listing(session, unit)


def _as_json(entry: roster.Listed) -> dict[str, Any]:
    unit_post, holding = entry.seat.unit_post, entry.seat.holding
    holder = holding.person if holding else None
    vacant = unit_post.vacant_since
    return {"unit": unit_post.unit.code, "unit_name": unit_post.unit.name,
            "place": entry.place, "post": unit_post.post_key,
            "post_label": unit_post.post.label_vi,
            "person_id": holder.id if holder else None,
            "full_name": holder.full_name if holder else None,
            "phone": holder.phone if holder else None,
            "channels": entry.channels, "connected": bool(entry.channels),
            "held_since": holding.started_at.isoformat() if holding else None,
            "vacant_since": vacant.isoformat() if holder is None and vacant else None}


def handle_posts(ctx: Context, args: argparse.Namespace) -> int:
    """The key (what --post and the roster file take), then the label, the role and the
    levels as people name them."""
    t = ctx.t

    async def work(db: Database) -> list[list[str]]:
        async with db.read() as session:
            return [[p.key, p.label_vi if t.locale == "vi" else p.label_en,
                     t(ROLE_NAMES[Role(p.role)]),
                     ", ".join(t(units.LEVEL_NAMES[level]) if level in units.LEVEL_NAMES
                               else level for level in p.levels or []) or t("every level")]
                    for p in await roster.all_posts(session)]

    ctx.table([t("Key"), t("Post"), t("Role"), t("Levels")], with_db(ctx, work))
    return 0


async def find_seat(session: AsyncSession, ctx: Context, unit_code: str, post_name: str
                    ) -> tuple[Unit, roster.UnitPost]:
    """The post on the unit (declared now if the unit's level has it), or a CliError."""
    unit = await units.by_code(session, unit_code)
    if unit is None:
        raise CliError(ctx.t("unknown unit {code}", code=unit_code))
    post = await roster.post_named(session, post_name)
    if post is None:
        raise CliError(ctx.t("unknown post {post}; see `coso people posts`", post=post_name))
    try:
        unit_post = await roster.seat(session, unit, post, create=True)
    except RosterError as exc:
        raise CliError(ctx.t(exc.msgid, **exc.values)) from None
    assert unit_post is not None
    return unit, unit_post


def handle_assign(ctx: Context, args: argparse.Namespace) -> int:
    async def work(db: Database) -> tuple[str, str | None, int]:
        async with db.transaction() as session:
            _, unit_post = await find_seat(session, ctx, args.unit, args.post)
            person = await roster.person_by_id(session, args.person)
            if person is None:
                raise CliError(ctx.t("no active person with id {id}", id=args.person))
            done = await roster.assign(session, unit_post, person)
            previous = done.previous.full_name if done.previous else None
            return unit_post.post.label_vi, previous, done.directives_moved

    label, previous, moved = with_db(ctx, work)
    if previous is None:
        ctx.out(ctx.t("Person {id} now holds {post} of {unit}.", id=args.person, post=label,
                      unit=args.unit))
    else:
        ctx.out(ctx.t("Person {id} now holds {post} of {unit}, handed over from {previous} "
                      "({moved} open directives passed on).", id=args.person, post=label,
                      unit=args.unit, previous=previous, moved=ctx.t.number(moved)))
    return 0
