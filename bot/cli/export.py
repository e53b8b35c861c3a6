"""`coso export`: a unit's records over a period as an Excel workbook or CSV files."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from bot.cli.common import CliError, Context, with_db
from bot.export import FORMATS, file_stem, write_csv, write_xlsx
from bot.files import prepare_data_dir
from storage import export, units
from storage.db import Database


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "export", help="a unit's records over a period, as .xlsx or CSV",
        description="Households, reports, daily check-ins and support deliveries of a unit "
                    "and its subtree, one sheet (or CSV file) per kind, headers in "
                    "COSO_DEFAULT_LOCALE and dates as real dates. Files are written 0600 "
                    "(personal data); the path written is printed.")
    parser.add_argument("--unit", required=True, metavar="CODE")
    parser.add_argument("--from", dest="start", required=True, type=_day, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, type=_day, metavar="YYYY-MM-DD")
    parser.add_argument("--format", choices=FORMATS, default="xlsx")
    parser.add_argument("--out", type=Path, metavar="PATH",
                        help="the .xlsx file, or the folder for the CSV files (a name such as "
                             "x.csv is refused: CSV is one file per sheet; default: "
                             "COSO_DATA_DIR/exports/coso-CODE-FROM-TO[.xlsx], removed after "
                             "two days like the exports sent in chat)")
    parser.add_argument("--json", action="store_true",
                        help="print {files: [...], rows: {sheet: count}}")
    parser.set_defaults(handler=handle_export)


def _default_out(ctx: Context, stem: str, form: str) -> Path:
    """Under COSO_DATA_DIR/exports (0700), not the current folder, where a file of household
    records would sit untracked in whatever checkout or home the admin happened to be in."""
    folder = prepare_data_dir(ctx.settings).resolve() / "exports"
    return folder / (f"{stem}.xlsx" if form == "xlsx" else stem)


def _names_a_file(path: Path) -> bool:
    """'x.csv', 'x.xlsx', 'x.txt': a name with an extension that is no existing folder."""
    return bool(path.suffix) and not path.is_dir()


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (YYYY-MM-DD)") from None


def handle_export(ctx: Context, args: argparse.Namespace) -> int:
    if args.end < args.start:
        raise CliError(ctx.t("--to comes before --from"))
    if (args.end - args.start).days >= export.MAX_DAYS:
        raise CliError(ctx.t("a period of at most {days} days, please", days=export.MAX_DAYS))
    if args.format == "csv" and args.out is not None and _names_a_file(args.out):
        # Found by a new-user trial: "--out x.csv" made a folder named x.csv.
        raise CliError(ctx.t("--out {path} names a file, but CSV is one file per sheet: "
                             "--out names the folder for them (e.g. --out {folder}). For one "
                             "file, use --format xlsx.", path=str(args.out),
                             folder=str(args.out.with_suffix(""))))
    period = export.Period(args.start, args.end, ctx.settings.tz)

    async def work(db: Database) -> list[export.Sheet] | None:
        async with db.read() as session:
            unit = await units.by_code(session, args.unit)
            if unit is None:
                return None
            return await export.sheets(session, unit, period, ctx.t.locale)

    sheets = with_db(ctx, work)
    if sheets is None:
        raise CliError(ctx.t("unknown unit {code}", code=args.unit))
    out = args.out or _default_out(ctx, file_stem(args.unit, args.start, args.end), args.format)
    try:
        files = ([write_xlsx(sheets, ctx.t, out)] if args.format == "xlsx"
                 else write_csv(sheets, ctx.t, out))
    except OSError as exc:  # a folder that is a file, or one the admin may not write in
        raise CliError(ctx.t("cannot write {path}: {error}", path=str(out),
                             error=exc.strerror or type(exc).__name__)) from None
    if args.json:
        ctx.json({"files": [str(path) for path in files],
                  "rows": {sheet.name: len(sheet.rows) for sheet in sheets}})
    else:
        for path in files:
            ctx.out(str(path))
    return 0
