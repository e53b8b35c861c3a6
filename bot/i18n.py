"""Catalog look-up and Babel formatting in the person's locale.

Flows are declared as data at import time, before anyone's locale is known, so their texts are
marked with `N_` and translated when they are rendered for one person.
"""

from __future__ import annotations

import datetime as dt
import io
from datetime import tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations

from bot.settings import SUPPORTED_LOCALES
from wording import N_ as N_  # offered beside the catalogs it marks texts for

DOMAIN = "coso"
# The source tree keeps the catalogs at the top (locales/, where `make i18n-extract` writes);
# a built wheel carries them inside the package (bot/locales/, put there by setup.py).
_PACKAGED = Path(__file__).resolve().parent / "locales"
LOCALES_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parent.parent / "locales"


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

    def percent(self, ratio: float) -> str:
        """A whole percent, a half rounded up as people do (1 of 8 is 13%, not Babel's
        banker's 12%, beside 3 of 8 at 38%)."""
        # repr: the shortest decimal of the float (0.145, not 0.14499…), then exact.
        whole = (Decimal(repr(ratio)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return format_percent(whole / 100, locale=self._babel)

    # Dates people cannot misread: the full year always, or a word (today, yesterday).
    DATE_PATTERNS = {"vi": "d/M/y"}  # 5/12/2026; other locales: Babel's medium (Dec 5, 2026)

    def date(self, value: dt.date | dt.datetime) -> str:
        """'5/12/2026', 'Dec 5, 2026': the local date with its full year."""
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        return format_date(value, format=self.DATE_PATTERNS.get(self.locale, "medium"),
                           locale=self._babel)

    LONG_PATTERNS = {"vi": "'ngày' d 'tháng' M 'năm' y"}  # ngày 5 tháng 12 năm 2026

    def long_date(self, value: dt.date | dt.datetime) -> str:
        """'thứ Sáu ngày 5 tháng 12 năm 2026', 'Friday, December 5, 2026': a date read back
        in words, weekday and full year, so that a wrong guess of what was typed shows."""
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        weekday = self._weekday(value)
        written = format_date(value, format=self.LONG_PATTERNS.get(self.locale, "long"),
                              locale=self._babel)
        return self(N_("{weekday}, {date}"), weekday=weekday, date=written)

    def long_day(self, value: dt.date | dt.datetime, today: dt.date | None = None) -> str:
        """'hôm qua (thứ Tư ngày 2 tháng 12 năm 2026)', or the long date alone when it is
        neither today, yesterday nor tomorrow."""
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        today = today or self.today()
        word = {0: N_("today"), -1: N_("yesterday"), 1: N_("tomorrow")}.get(
            (value - today).days)
        if word is None:
            return self.long_date(value)
        return self(N_("{day} ({date})"), day=self(word), date=self.long_date(value))

    SHORT_SKELETONS = {"vi": "dM"}  # 5/12; other locales: Babel's month and day (Dec 5)

    def short_date(self, value: dt.date) -> str:
        """'5/12', 'Dec 5': a chart's axis, where the year is in the caption; the day as the
        dates around it write it (5/12/2026), with no leading zero."""
        return format_skeleton(self.SHORT_SKELETONS.get(self.locale, "MMMd"), value,
                               locale=self._babel)

    def today(self) -> dt.date:
        """The local date now."""
        return dt.datetime.now(self.tz).date()

    def _weekday(self, value: dt.date) -> str:
        """Mid-sentence: "thứ Sáu" as written, and "chủ nhật" (Babel's "Chủ Nhật")."""
        weekday = format_date(value, format="EEEE", locale=self._babel)
        if self.locale == "vi":
            if weekday.startswith("Chủ"):
                return weekday.lower()
            weekday = weekday[:1].lower() + weekday[1:]
        return weekday

    def day(self, value: dt.date | dt.datetime, today: dt.date | None = None) -> str:
        """'hôm nay', 'hôm qua', 'ngày mai', else the weekday and the date: 'thứ Sáu
        5/12/2026' (English: 'Friday, Dec 5, 2026'). `today` defaults to the local date now."""
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        today = today or self.today()
        word = {0: N_("today"), -1: N_("yesterday"), 1: N_("tomorrow")}.get(
            (value - today).days)
        if word is not None:
            return self(word)
        weekday = self._weekday(value)
        return self(N_("{weekday}, {date}"), weekday=weekday, date=self.date(value))

    def datetime(self, value: dt.datetime, now: dt.datetime | None = None) -> str:
        """'hôm nay lúc 17:05', 'thứ Sáu 5/12/2026 lúc 17:05'."""
        today = (now or dt.datetime.now(self.tz)).astimezone(self.tz).date()
        return self(N_("{day} at {time}"), day=self.day(value, today), time=self.time(value))

    def full_datetime(self, value: dt.datetime) -> str:
        """'7/12/2026 lúc 03:48', 'Dec 7, 2026 at 3:48 AM': the local date with its full year
        and the time, whatever the day (datetime() would say 'today')."""
        return self(N_("{day} at {time}"), day=self.date(value), time=self.time(value))

    def long_datetime(self, value: dt.datetime, now: dt.datetime | None = None) -> str:
        """'17:00 ngày mai (thứ Sáu ngày 4 tháng 12 năm 2026)', '17:00 thứ Sáu ngày 4 tháng
        12 năm 2026': a moment to confirm, its day in words with the full year."""
        today = (now or dt.datetime.now(self.tz)).astimezone(self.tz).date()
        return self(N_("{time} {day}"), time=self.time(value), day=self.long_day(value, today))

    def duration(self, value: dt.timedelta) -> str:
        """"45 giây", "2 phút" (not "132 giây"), "95 phút", "4 giờ": seconds only under a
        minute, then the largest unit that still reads exactly enough, rounded to it."""
        if abs(value.total_seconds()) < 60:
            return format_timedelta(value, threshold=3, locale=self._babel)
        return format_timedelta(value, threshold=3, granularity="minute", locale=self._babel)

    def time(self, value: dt.datetime) -> str:
        return format_time(value, format="short", tzinfo=self.tz, locale=self._babel)
