"""Catalog look-up and Babel formatting in the person's locale.

Flows are declared as data at import time, before anyone's locale is known, so their texts are
marked with `N_` and translated when they are rendered for one person.
"""

from __future__ import annotations

import datetime as dt
import io
from datetime import tzinfo
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

from bot.settings import SUPPORTED_LOCALES

DOMAIN = "coso"
# The source tree keeps the catalogs at the top (locales/, where `make i18n-extract` writes);
# a built wheel carries them inside the package (bot/locales/, put there by setup.py).
_PACKAGED = Path(__file__).resolve().parent / "locales"
LOCALES_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parent.parent / "locales"


def N_(msgid: str) -> str:  # noqa: N802 - the conventional gettext_noop name, known to pybabel
    """Mark a text for extraction; it is translated later, for one person."""
    return msgid


@cache
def _catalog(locale: str) -> NullTranslations:
    """The compiled .mo when there is one; else the .po itself, compiled in memory (a tree
    where `make i18n-compile` never ran, or an install that skipped it), so a person never
    gets English prompts with Vietnamese names mixed in."""
    folder = LOCALES_DIR / locale / "LC_MESSAGES"
    if (folder / f"{DOMAIN}.mo").is_file() or not (folder / f"{DOMAIN}.po").is_file():
        return Translations.load(str(LOCALES_DIR), [locale], domain=DOMAIN)
    with open(folder / f"{DOMAIN}.po", "rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def pick_locale(*candidates: str | None, default: str = "vi") -> str:
    """The first candidate we support ('en-US' counts as 'en'), else the default."""
    for candidate in candidates:
        if candidate:
            short = candidate.replace("_", "-").split("-")[0].lower()
            if short in SUPPORTED_LOCALES:
                return short
    return default


class Translator:
    """Everything one person reads: texts from the catalog, numbers, money and dates."""

    def __init__(self, locale: str, tz: tzinfo) -> None:
        self.locale = locale
        self.tz = tz
        self._babel = Locale.parse(locale)
        self._catalog = _catalog(locale)

    def __call__(self, msgid: str, **values: Any) -> str:
        text = self._catalog.gettext(msgid)
        return text.format(**values) if values else text

    def plural(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = self._catalog.ngettext(singular, plural, n)
        return text.format(n=self.number(n), **values)

    def number(self, value: int | float | Decimal) -> str:
        return format_decimal(value, locale=self._babel)

    def money(self, amount: int | Decimal) -> str:
        return format_currency(amount, "VND", locale=self._babel)

    def date(self, value: dt.date | dt.datetime) -> str:
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        return format_date(value, format="short" if self.locale == "vi" else "medium",
                           locale=self._babel)

    def datetime(self, value: dt.datetime) -> str:
        return format_datetime(value, format="short", tzinfo=self.tz, locale=self._babel)

    def duration(self, value: dt.timedelta) -> str:
        """"12 phút", "95 phút", "4 giờ": the largest unit that still reads exactly enough."""
        return format_timedelta(value, threshold=3, locale=self._babel)

    def time(self, value: dt.datetime) -> str:
        return format_time(value, format="short", tzinfo=self.tz, locale=self._babel)
