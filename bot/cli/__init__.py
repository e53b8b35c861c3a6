"""`coso`: the admin's command line (database, unit tree, invites, people, demo, the bot)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC

from bot.cli import (
    backup,
    catalog,
    db,
    demo,
    digest,
    directive,
    doctor,
    drill,
    export,
    households,
    invites,
    localized_help,
    people,
    purge,
    reports,
    run,
    schedule,
    support,
    units,
    users,
    web,
)
from bot.cli.common import CliError, Context
from bot.i18n import Translator
from bot.settings import SUPPORTED_LOCALES, SettingsError, load_settings

PRIVATE_UMASK = 0o077
Handler = Callable[[Context, argparse.Namespace], int]
# The order `coso --help` lists them in.
GROUPS = (db, units, households, people, invites, users, reports, support, schedule, digest, export,
          directive, drill, catalog, web, purge, demo, run, backup, doctor)


def build_parser(locale: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; its help texts translated when a locale is given."""
    parser = argparse.ArgumentParser(
        prog="coso",
        description="Coso: the chatbot neighbourhood cadres report on. Settings come from "
                    "environment variables or .env (see .env.example).",
    )
    parser.add_argument("--lang", choices=SUPPORTED_LOCALES,
                        help="the language of the help and of what the command prints "
                             "(default: COSO_DEFAULT_LOCALE)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands)
    if locale is not None:
        localized_help.localize(parser, Translator(locale, UTC))
    return parser


def parse(argv: list[str], locale: str) -> argparse.Namespace:
    """Parse in `locale`: the help, the usage and argparse's errors in that language."""
    with localized_help.argparse_speaking(Translator(locale, UTC)):
        return build_parser(locale).parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # What a command writes (files, charts, SQLite's journals) is the bot user's alone,
    # whatever umask it was started with; the writers that know their files set 0600 too.
    previous = os.umask(PRIVATE_UMASK)
    try:
        return _main(argv)
    finally:
        os.umask(previous)


def _main(argv: list[str] | None) -> int:
    lang, argv = localized_help.take_lang(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(argv, lang or localized_help.default_locale())
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = load_settings()
        ctx = Context(settings, Translator(lang or settings.default_locale, settings.tz))
    except SettingsError as exc:  # one line naming the variable, in the person's language
        t = Translator(lang or localized_help.default_locale(), UTC)
        print(f"coso: {exc.say(t)}", file=sys.stderr)
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
