"""What every command shares: settings, the translator, the database, errors, output."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator
from bot.settings import Settings
from storage.csv_import import CsvImportError
from storage.db import Database

T = TypeVar("T")

# SQLite says "no such table: units"; PostgreSQL 'relation "units" does not exist'.
_MISSING_TABLE = re.compile(r"no such table|relation .* does not exist|undefinedtable", re.I)


class CliError(Exception):
    """A failure shown to the admin as one line; `bare` drops the `coso: ` prefix."""

    def __init__(self, message: str, code: int = 1, *, bare: bool = False) -> None:
        super().__init__(message)
        self.message, self.code, self.bare = message, code, bare


@dataclass
class Context:
    settings: Settings
    t: Translator

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        return cls(settings, Translator(settings.default_locale, settings.tz))

    def out(self, text: str = "") -> None:
        print(text, file=sys.stdout, flush=True)

    def err(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def json(self, value: Any) -> None:
        self.out(json.dumps(value, ensure_ascii=False, indent=2))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """Columns padded to their widest cell, two spaces apart, the header first: what a
        person reads (`--json` is what a script reads, with the keys)."""
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.out("  ".join(cell.ljust(width)
                               for cell, width in zip(row, widths, strict=True)).rstrip())


def with_db(ctx: Context, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on a fresh Database in its own event loop; database trouble -> CliError."""

    async def run() -> T:
        db = Database(ctx.settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except DBAPIError as exc:
        raise CliError(database_problem(ctx.t, exc)) from None
    except OSError as exc:
        error = _first_line(exc)
        raise CliError(ctx.t("cannot reach the database: {error}", error=error)) from None


def show_record(ctx: Context, as_json: bool, load: Callable[[AsyncSession], Awaitable[T | None]],
                missing: str, render: Callable[[Translator, T], str],
                to_json: Callable[[T], Any]) -> int:
    """Read one record (a directive's status, a drill's results) and print it as text or
    JSON; `missing` (already translated) when there is none."""
    async def work(db: Database) -> T | None:
        async with db.read() as session:
            return await load(session)

    found = with_db(ctx, work)
    if found is None:
        raise CliError(missing)
    if as_json:
        ctx.json(to_json(found))
    else:
        ctx.out(render(ctx.t, found))
    return 0


def database_problem(t: Translator, exc: DBAPIError) -> str:
    """One line for the admin; never the statement or its parameters (they may hold names)."""
    detail = _first_line(exc.orig) if exc.orig is not None else type(exc).__name__
    if _MISSING_TABLE.search(f"{type(exc.orig).__name__} {detail}"):
        return t("database not initialised: run `coso db upgrade`")
    return t("database error: {error}", error=detail)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


R = TypeVar("R")


def import_file(ctx: Context, path: Path, read: Callable[[Path], R],
                write: Callable[[R], T]) -> T:
    """Read a CSV file whole, then write it; a bad row stops both as FILE:LINE: reason."""
    try:
        rows = read(path)
    except OSError as exc:
        raise CliError(ctx.t("cannot read {file}: {error}", file=str(path),
                             error=exc.strerror or str(exc))) from None
    except CsvImportError as exc:
        raise _located(ctx, path, exc) from None
    try:
        return write(rows)
    except CsvImportError as exc:
        raise _located(ctx, path, exc) from None


def _located(ctx: Context, path: Path, exc: CsvImportError) -> CliError:
    return CliError(f"{path}:{exc.line}: {ctx.t(exc.msgid, **exc.values)}", bare=True)
