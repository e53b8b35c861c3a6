"""`coso --help` in the person's language: COSO_DEFAULT_LOCALE, or `--lang en|vi`.

The help texts stay plain English literals in each command's `register` (help=, description=,
title=), as argparse wants them; `extract` finds them for `make i18n-extract` (babel.cfg), and
`localize` swaps in the catalog's translation before the help is printed. argparse's own
words ("usage:", "options", "show this help message and exit") are in the catalog too.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
from collections.abc import Iterator
from typing import IO, Any

from bot.i18n import N_, Translator
from bot.settings import SUPPORTED_LOCALES

# The argparse texts a person sees, as argparse spells them (its own gettext calls).
ARGPARSE_WORDS = (N_("usage: "), N_("positional arguments"), N_("options"),
                  N_("show this help message and exit"), N_("%(prog)s: error: %(message)s\n"),
                  N_("the following arguments are required: %s"),
                  N_("invalid choice: %(value)r (choose from %(choices)s)"),
                  N_("unrecognized arguments: %s"), N_("expected one argument"),
                  N_("argument %(argument_name)s: %(message)s"),
                  N_("not allowed with argument %s"))
HELP_KEYWORDS = {"help", "description", "title"}


def take_lang(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the --lang X or --lang=X given anywhere on the line, the line without it)."""
    rest: list[str] = []
    wanted: str | None = None
    args = iter(argv)
    for arg in args:
        if arg == "--lang":
            wanted = next(args, None)
        elif arg.startswith("--lang="):
            wanted = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return (wanted if wanted in SUPPORTED_LOCALES else None), rest


def default_locale() -> str:
    """COSO_DEFAULT_LOCALE from the environment or .env; vi when the settings are unreadable
    (their error is then shown in Vietnamese, the project's first language)."""
    from bot.settings import SettingsError, load_settings

    try:
        return load_settings().default_locale
    except SettingsError:
        wanted = os.environ.get("COSO_DEFAULT_LOCALE", "vi")
        return wanted if wanted in SUPPORTED_LOCALES else "vi"


@contextlib.contextmanager
def argparse_speaking(t: Translator) -> Iterator[None]:
    """argparse's own words ("usage:", its errors) in t's language while parsing: argparse
    looks its module-level gettext `_` up at each use."""
    saved = argparse._  # type: ignore[attr-defined]
    argparse._ = t._catalog.gettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._ = saved  # type: ignore[attr-defined]


def localize(parser: argparse.ArgumentParser, t: Translator) -> None:
    """Translate every help text of `parser` and its subcommands, in place."""
    for each in _parsers(parser):
        each.description = _t(t, each.description)
        for action in each._actions:
            action.help = _t(t, action.help)
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    choice.help = _t(t, choice.help)
        for group in each._action_groups:
            group.title = _t(t, group.title)
            group.description = _t(t, group.description)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases: once
                yield from _parsers(sub)


def _t(t: Translator, text: str | None) -> str | None:
    # argparse's own "%(default)s" placeholders pass through the catalog untouched.
    return t._catalog.gettext(text) if text else text


def extract(fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
            ) -> Iterator[Any]:
    """A Babel extractor for the `coso` command modules: what the Python extractor finds
    (t(), N_()), and the string literals given as help=, description= or title= to any call
    (Babel runs one extractor per file, so this one does both)."""
    from babel.messages.extract import extract_python

    source = fileobj.read()
    fileobj.seek(0)
    yield from extract_python(fileobj, keywords, comment_tags, options)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            value = keyword.value
            if (keyword.arg in HELP_KEYWORDS and isinstance(value, ast.Constant)
                    and isinstance(value.value, str) and value.value):
                yield value.lineno, None, value.value, []
