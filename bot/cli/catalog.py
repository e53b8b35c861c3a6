"""`coso catalog export | import | list`: the city's catalogues as YAML files an admin edits.

KIND is situations (what /report offers), policies (/support), scenarios (/drill) or posts
(the roster's: label, the role holding one gives, the unit levels that have it). An
import is the whole catalogue of its scope: entries left out are retired, never deleted.
With --unit WARD the ward's own situations or scenarios, offered to its staff and leaders
beside the city's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import CliError, Context, with_db
from storage import catalog, schedules, units
from storage.catalog import CatalogError, Kind, Plan
from storage.db import Database
from storage.models import Unit, utcnow


def register(commands: Any) -> None:
    group = commands.add_parser(
        "catalog", help="situations, support policies, drill scenarios and posts as YAML files",
        description="Export a catalogue to YAML, edit it, import it back. KIND is one of "
                    f"{', '.join(catalog.KINDS)}.")
    sub = group.add_subparsers(title="catalog commands", metavar="COMMAND", required=True)
    out = sub.add_parser("export", help="write a catalogue as YAML (retired entries too)")
    _kind_and_unit(out)
    out.add_argument("--out", metavar="FILE", type=Path, help="write here, not to stdout")
    out.set_defaults(handler=handle_export)
    into = sub.add_parser("import", help="replace a catalogue with a YAML file, all or nothing",
                          description="Entries are added or changed; entries of the scope "
                                      "left out of the file are retired (never deleted). A "
                                      "file with any problem writes nothing.")
    _kind_and_unit(into)
    into.add_argument("file", type=Path, metavar="FILE")
    into.add_argument("--dry-run", action="store_true",
                      help="show what would be added, changed and retired; write nothing")
    into.add_argument("--json", action="store_true",
                      help="print {added, changed, retired, unchanged, written}")
    into.set_defaults(handler=handle_import)
    listing = sub.add_parser("list", help="a catalogue's entries")
    _kind_and_unit(listing)
    listing.add_argument("--json", action="store_true", help="print every entry's fields")
    listing.set_defaults(handler=handle_list)


def _kind_and_unit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=list(catalog.KINDS), metavar="KIND",
                        help=", ".join(catalog.KINDS))
    parser.add_argument("--unit", metavar="WARD",
                        help="the ward's own entries (situations, scenarios), not the city's")


async def _scope(ctx: Context, session: AsyncSession, kind: Kind, code: str | None
                 ) -> Unit | None:
    if code is None:
        return None
    ward = await units.by_code(session, code)
    if ward is None:
        raise CliError(ctx.t("unknown unit {code}", code=code))
    if ward.level not in schedules.WARD_LEVELS:
        raise CliError(ctx.t("A ward's own catalogue belongs to a ward, commune or special "
                             "zone."))
    if not kind.per_ward:
        raise CliError(ctx.t("A ward cannot keep its own {kind}; they are the city's.",
                             kind=kind.name))
    return ward


def handle_export(ctx: Context, args: argparse.Namespace) -> int:
    kind = catalog.KINDS[args.kind]

    async def work(db: Database) -> str:
        async with db.read() as session:
            ward = await _scope(ctx, session, kind, args.unit)
            return catalog.dump(kind, await catalog.rows(session, kind, ward))

    text = with_db(ctx, work)
    if args.out is None:
        ctx.out(text.rstrip("\n"))
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(ctx.t("cannot write {file}: {error}", file=str(args.out),
                             error=exc.strerror or str(exc))) from None
    ctx.err(ctx.t("Wrote {file}.", file=str(args.out)))
    return 0


def handle_import(ctx: Context, args: argparse.Namespace) -> int:
    kind = catalog.KINDS[args.kind]
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(ctx.t("cannot read {file}: {error}", file=str(args.file),
                             error=exc.strerror or str(exc))) from None
    today = utcnow().astimezone(ctx.settings.tz).date()

    async def work(db: Database) -> Plan:
        async with db.transaction() as session:
            ward = await _scope(ctx, session, kind, args.unit)
            entries = catalog.parse(kind, data)
            accepted = await catalog.plan(session, kind, entries, ward, today)
            if not args.dry_run:
                await catalog.write(session, kind, accepted)
            return accepted

    try:
        done = with_db(ctx, work)
    except CatalogError as exc:
        lines = [f"{args.file}:{p.line}: {p.where}: {ctx.t(p.msgid, **p.values)}"
                 for p in exc.problems]
        lines.append(ctx.t("Nothing was imported."))
        raise CliError("\n".join(lines), bare=True) from None
    if args.json:
        ctx.json({"added": done.added, "changed": done.changed, "retired": done.retired,
                  "unchanged": done.unchanged, "written": not args.dry_run})
        return 0
    for title, keys in ((ctx.t("added"), done.added), (ctx.t("changed"), done.changed),
                        (ctx.t("retired"), done.retired)):
        ctx.out(f"{title} ({ctx.t.number(len(keys))}): {', '.join(keys) or '—'}")
    ctx.out(ctx.t("unchanged: {n}", n=ctx.t.number(done.unchanged)))
    ctx.out(ctx.t("Dry run: nothing was written.") if args.dry_run
            else ctx.t("Imported {kind}.", kind=kind.name))
    return 0


def handle_list(ctx: Context, args: argparse.Namespace) -> int:
    kind = catalog.KINDS[args.kind]

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.read() as session:
            ward = await _scope(ctx, session, kind, args.unit)
            return [catalog.to_yaml(kind, row) for row in
                    await catalog.rows(session, kind, ward)]

    found = with_db(ctx, work)
    if args.json:
        ctx.json([{**entry, **{name: entry[name].isoformat() for name in
                               ("valid_from", "valid_to") if entry.get(name)}}
                  for entry in found])
        return 0
    for entry in found:
        label = entry["label_vi"] if ctx.t.locale == "vi" else entry["label_en"]
        state = "" if entry["active"] else f" ({ctx.t('retired')})"
        ctx.out(f"{entry['key']}: {label}{state}")
    return 0
