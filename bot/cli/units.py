"""`coso units import | import-official | list`: the unit tree."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.cli.common import CliError, Context, import_file, with_db
from storage import units
from storage.db import Database
from storage.models import Unit
from storage.official_units import UnknownProvince, province_rows
from storage.unit_import import ImportResult, UnitImportError, UnitRow, apply_rows, read_csv

# Short files finish before anyone wonders; longer ones report as they go.
PROGRESS_FROM = 100


def register(commands: Any) -> None:
    group = commands.add_parser("units", help="the unit tree (provinces, wards, quarters...)",
                                description="Import and list administrative units.")
    sub = group.add_subparsers(title="units commands", metavar="COMMAND", required=True)
    imp = sub.add_parser(
        "import", help="create or update units from a CSV file",
        description="Read a UTF-8 CSV file with the header code,name,level,parent_code. "
                    "A parent may come later in the file or already be in the database. "
                    "The whole file is imported, or nothing when a row is bad.")
    imp.add_argument("file", metavar="FILE.csv", type=Path)
    _move_option(imp)
    imp.set_defaults(handler=handle_import)
    official = sub.add_parser(
        "import-official", help="import a province and its wards/communes (official list)",
        description="Create or update a province (2-digit official code, e.g. 79) and all "
                    "its wards, communes and special zones (5-digit codes). Safe to repeat.")
    official.add_argument("--province", required=True, metavar="CODE",
                          help="official province code, e.g. 79 for Ho Chi Minh City")
    _move_option(official)
    official.set_defaults(handler=handle_import_official)
    listing = sub.add_parser("list", help="show the unit tree",
                             description="Show units in tree order, indented by depth.")
    listing.add_argument("--under", metavar="CODE", help="only this unit and its subtree")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON list of {code,name,level,parent_code,depth}")
    listing.set_defaults(handler=handle_list)


def _move_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--move", action="store_true",
                        help="let existing units take a new parent: each moves with its "
                             "subtree, households and people, and what moves is printed "
                             "(without it such a row is refused and nothing is written)")


# --- import ----------------------------------------------------------------------------------

def handle_import(ctx: Context, args: argparse.Namespace) -> int:
    _report(ctx, import_file(ctx, args.file, read_csv,
                             lambda rows: _write(ctx, rows, move=args.move)))
    return 0


def handle_import_official(ctx: Context, args: argparse.Namespace) -> int:
    try:
        rows = province_rows(args.province)
    except UnknownProvince as exc:
        raise CliError(ctx.t("unknown province code {code}: official codes are two digits, "
                             "e.g. 79 for Ho Chi Minh City", code=exc.code)) from None
    ctx.err(ctx.t("{name}: {count} units in the official list",
                  name=rows[0].name, count=ctx.t.number(len(rows))))
    try:
        result = _write(ctx, rows, always_progress=True, move=args.move)
    except UnitImportError as exc:
        raise CliError(ctx.t(exc.msgid, **exc.values)) from None
    _report(ctx, result)
    return 0


def _write(ctx: Context, rows: list[UnitRow], always_progress: bool = False,
           move: bool = False) -> ImportResult:
    def progress(done: int, total: int) -> None:
        if always_progress or total >= PROGRESS_FROM:
            ctx.err(ctx.t("{done} of {total} units written",
                          done=ctx.t.number(done), total=ctx.t.number(total)))

    async def work(db: Database) -> ImportResult:
        async with db.transaction() as session:
            return await apply_rows(session, rows, progress, move=move)

    return with_db(ctx, work)


def _report(ctx: Context, result: ImportResult) -> None:
    for move in result.moves:
        ctx.out(ctx.t("Moved {code} from under {old} to under {new}: units: {units}, "
                      "households: {households}, people: {people} change scope.",
                      code=move.code, old=move.old_parent or "-", new=move.new_parent or "-",
                      units=ctx.t.number(move.units),
                      households=ctx.t.number(move.households),
                      people=ctx.t.number(move.people)))
    ctx.out(ctx.t.plural("Imported {n} unit ({created} new, {updated} updated).",
                         "Imported {n} units ({created} new, {updated} updated).",
                         result.total, created=ctx.t.number(result.created),
                         updated=ctx.t.number(result.updated)))


# --- list ------------------------------------------------------------------------------------

def handle_list(ctx: Context, args: argparse.Namespace) -> int:
    entries = with_db(ctx, lambda db: _tree(db, args.under))
    if entries is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.under))
    if args.json:
        ctx.json(entries)
    elif not entries:
        ctx.out(ctx.t("No units yet: add some with `coso units import FILE.csv` or "
                      "`coso units import-official --province 79`."))
    else:
        top = entries[0]["depth"]
        for entry in entries:
            indent = "  " * (entry["depth"] - top)
            level = units.LEVEL_NAMES.get(entry["level"])
            ctx.out(f"{indent}{entry['name']} [{entry['code']}] "
                    f"{ctx.t(level) if level else entry['level']}")
    return 0


async def _tree(db: Database, under: str | None) -> list[dict[str, Any]] | None:
    async with db.read() as session:
        everything = await units.all_units(session)
        root = await units.by_code(session, under) if under else None
    if under and root is None:
        return None
    return tree_entries(everything, root)


def tree_entries(everything: Sequence[Unit], root: Unit | None) -> list[dict[str, Any]]:
    """Depth-first, siblings in natural code order ('KP2' before 'KP10')."""
    by_id = {unit.id: unit for unit in everything}
    children: dict[int | None, list[Unit]] = {}
    for unit in everything:
        children.setdefault(unit.parent_id, []).append(unit)
    entries: list[dict[str, Any]] = []
    stack = [root] if root is not None else sorted(children.get(None, []), key=_natural,
                                                   reverse=True)
    while stack:
        unit = stack.pop()
        parent = by_id.get(unit.parent_id) if unit.parent_id else None
        entries.append({"code": unit.code, "name": unit.name, "level": unit.level,
                        "parent_code": parent.code if parent else None,
                        "depth": unit.path.strip("/").count("/")})
        stack.extend(sorted(children.get(unit.id, []), key=_natural, reverse=True))
    return entries


def _natural(unit: Unit) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", unit.code) if part]
