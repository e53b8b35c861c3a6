"""`coso backup --to FILE` and `coso restore FILE`: SQLite's copy and its checked return.

PostgreSQL is the production database, and its own tools do this better: both commands
then print the pg_dump / pg_restore command to run instead, and exit 1.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.cli.common import CliError, Context
from storage import backup, migrate
from storage.backup import BackupError, Checked


def register(commands: Any) -> None:
    taker = commands.add_parser(
        "backup", help="copy the SQLite database while the bot runs",
        description="Copy the SQLite database of COSO_DATABASE_URL to FILE (0600) through "
                    "SQLite's online backup API: a consistent copy while the bot keeps "
                    "running. For PostgreSQL, prints the pg_dump command to use.")
    taker.add_argument("--to", required=True, type=Path, metavar="FILE",
                       help="where to write the copy (must not exist yet)")
    taker.add_argument("--json", action="store_true",
                       help="print {file, bytes, integrity, revisions}")
    taker.set_defaults(handler=handle_backup)
    restorer = commands.add_parser(
        "restore", help="put a backup in place of the SQLite database (bot stopped)",
        description="Check FILE (integrity_check, migration level) and put it in place of "
                    "the SQLite database of COSO_DATABASE_URL; the database it replaces is "
                    "kept beside it as <name>.before-restore-<UTC time>, a new file each "
                    "time (an earlier one is never overwritten). Refused while a bot runs on "
                    "the database. For PostgreSQL, prints the pg_restore command to use.")
    restorer.add_argument("file", type=Path, metavar="FILE", help="a file from coso backup")
    restorer.add_argument("--json", action="store_true",
                          help="print {file, database, kept, earlier_kept, integrity, "
                               "revisions}")
    restorer.set_defaults(handler=handle_restore)


def handle_backup(ctx: Context, args: argparse.Namespace) -> int:
    database = _sqlite_or_explain(ctx, "pg_dump", args.to)
    if args.to.exists():
        raise CliError(ctx.t("{file} exists already: choose a new name", file=str(args.to)))
    checked = _guarded(ctx, lambda: backup.backup(database, args.to))
    if args.json:
        ctx.json({"file": str(args.to), **_facts(checked)})
    else:
        ctx.out(ctx.t("Backup written to {file}: {size}, integrity {integrity}, revision "
                      "{revision}.", file=str(args.to), size=_size(ctx, checked.size),
                      integrity=checked.integrity, revision=_revision(checked)))
    return 0


def handle_restore(ctx: Context, args: argparse.Namespace) -> int:
    database = _sqlite_or_explain(ctx, "pg_restore", args.file)
    checked = _guarded(ctx, lambda: backup.check(args.file))
    if not checked.ok:
        raise CliError(ctx.t("{file} failed its integrity check: {problem}",
                             file=str(args.file), problem=checked.integrity))
    if not checked.revisions:
        raise CliError(ctx.t("{file} is not a Coso database (no migration level)",
                             file=str(args.file)))
    unknown = [r for r in checked.revisions if not migrate.known_revision(r)]
    if unknown:
        raise CliError(ctx.t("{file} is at revision {revision}, newer than this Coso: "
                             "upgrade Coso first", file=str(args.file),
                             revision=", ".join(unknown)))

    def put_back() -> Path | None:
        with backup.exclusive(database):
            return backup.restore(args.file, database)

    kept = _guarded(ctx, put_back)
    earlier = [path for path in backup.earlier_kept(database) if path != kept]
    behind = set(checked.revisions) != set(migrate.current_heads())
    if args.json:
        ctx.json({"file": str(args.file), "database": str(database),
                  "kept": str(kept) if kept else None,
                  "earlier_kept": [str(path) for path in earlier], "upgrade_needed": behind,
                  **_facts(checked)})
        return 0
    ctx.out(ctx.t("Restored {file} into {database} (integrity ok, revision {revision}).",
                  file=str(args.file), database=str(database), revision=_revision(checked)))
    if kept is not None:
        ctx.out(ctx.t("The database it replaced is kept as {kept}.", kept=str(kept)))
    if earlier:
        ctx.out(ctx.t.plural(
            "{n} database replaced by an earlier restore is kept too, beside it "
            "({names}): delete it once it is not needed.",
            "{n} databases replaced by earlier restores are kept too, beside it "
            "({names}): delete them once they are not needed.",
            len(earlier), names=", ".join(path.name for path in earlier)))
    if behind:
        ctx.out(ctx.t("Its schema is older than this Coso: run `coso db upgrade` (coso run "
                      "also does it at start)."))
    return 0


def _sqlite_or_explain(ctx: Context, tool: str, file: Path) -> Path:
    database = backup.sqlite_file(ctx.settings.database_url)
    if database is not None:
        return database
    # Never the password on screen (or in a shell history): PGPASSWORD or ~/.pgpass has it.
    url = make_url(ctx.settings.database_url)._replace(drivername="postgresql", password=None)
    dsn = shlex.quote(url.render_as_string(hide_password=False))
    command = (f"pg_dump --format=custom --file={shlex.quote(str(file))} {dsn}"
               if tool == "pg_dump" else
               f"pg_restore --clean --if-exists --no-owner --dbname={dsn} "
               f"{shlex.quote(str(file))}")
    ctx.out(command)
    raise CliError(ctx.t("COSO_DATABASE_URL is PostgreSQL: use {tool} (the command above; "
                         "the password goes in PGPASSWORD or ~/.pgpass)", tool=tool))


def _guarded(ctx: Context, work: Any) -> Any:
    try:
        return work()
    except BackupError as exc:
        raise CliError(ctx.t(exc.msgid, **exc.values)) from None
    except OSError as exc:
        raise CliError(ctx.t("cannot write the file: {error}",
                             error=exc.strerror or str(exc))) from None


def _facts(checked: Checked) -> dict[str, Any]:
    return {"bytes": checked.size, "integrity": checked.integrity,
            "revisions": list(checked.revisions)}


def _revision(checked: Checked) -> str:
    return ", ".join(checked.revisions) or "—"


def _size(ctx: Context, size: int) -> str:
    return f"{ctx.t.number(round(size / 1024 / 1024, 1))} MB"
