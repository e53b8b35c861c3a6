"""`coso`: the admin's command line (database, unit tree, invites, people, demo, the bot)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from bot.cli import (
    backup,
    db,
    demo,
    digest,
    directive,
    doctor,
    drill,
    export,
    households,
    invites,
    purge,
    reports,
    run,
    schedule,
    support,
    units,
    users,
)
from bot.cli.common import CliError, Context
from bot.settings import SettingsError, load_settings

Handler = Callable[[Context, argparse.Namespace], int]
# The order `coso --help` lists them in.
GROUPS = (db, units, households, invites, users, reports, support, schedule, digest, export,
          directive, drill, purge, demo, run, backup, doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coso",
        description="Coso: the chatbot neighbourhood cadres report on. Settings come from "
                    "environment variables or .env (see .env.example).",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        ctx = Context.from_settings(load_settings())
    except SettingsError as exc:
        print(f"coso: {exc}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return handler(ctx, args)
    except CliError as exc:
        print(exc.message if exc.bare else f"coso: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `coso units list | head`: the reader has gone, and that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
