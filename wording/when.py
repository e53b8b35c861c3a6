"""Dates and times as people type them, in Vietnamese and English: one reader for every step.

    moment("17h 5/12", now, tz)      -> 5 Dec at 17:00 (a deadline: the next such moment)
    day("hôm qua", today, past=True) -> yesterday (a delivery: the latest such day)
    clock("7h30")                    -> 07:30 (a schedule: a time of day only)

It lives in wording/ because it is text → value and nothing else, like fold(): no platform,
no database, no locale object; storage/ (schedules typed in a CSV or on the command line)
uses it as well as bot/flows/, and storage must import nothing of bot/.

What it reads, in any order, with or without diacritics ("thứ 6" = "thu 6"), with filler
words between (ngày, lúc, vào, trước, hạn, at, on, by, before):
  times   17h · 17h30 · 17g30 · 17 giờ 30 · 5 giờ rưỡi · 17:00 · 17.30 · 5pm · 5:30 pm ·
          5h chiều (chiều, tối: after noon; trưa: 1h trưa = 13:00; sáng: before noon);
          a part of the day alone is its end as a deadline: sáng 11:00, trưa 13:00,
          chiều 17:00, tối 21:00
  dates   5/12 · 5-12 · 5/12/2026 · 5.12.2026 · 2026-12-05 · 5 tháng 12 (năm 2026) ·
          5 Dec · Dec 5, 2026
  words   hôm nay / nay / today / tonight · mai / ngày mai / tomorrow · mốt / ngày kia ·
          hôm qua / yesterday · hôm kia
  weekday thứ 2 … thứ 7 / thứ hai … thứ bảy / t2 … t7 · cn / chủ nhật · mon … sun;
          "tuần sau" / "tuần tới" after it: that day of next week

Decisions where people's typing is ambiguous:
- A date without a year is the nearest one in the direction asked: for a deadline the next
  one not in the past ("5/12" typed on 6/12 is 5/12 of next year, and the confirmation reads
  the full year back), for a delivery the latest one not in the future.
- A weekday is the nearest such day in that direction, today included ("thứ 6" on a Friday
  morning with "17h" is today).
- A time without a day, as a deadline, is today's if still ahead, else tomorrow's.
- A bare number ("17") is no time and no date, except where only a time of day is asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from wording import N_, fold

# Messages a caller shows when a text is refused (translated there, for one person).
NO_SUCH_DAY = N_("There is no day {day}/{month}{year}; check the day and the month.")
NO_SUCH_TIME = N_("{typed} is not a time of day: a time goes from 0:00 to 23:59.")
NOT_A_DAY = N_("A time of day is needed here, not a date.")


class WhenError(ValueError):
    """A text that is no date or time; msgid is None when it is simply unreadable (the caller
    then explains with its own example), else why (no such day, no such time)."""

    def __init__(self, msgid: str | None = None, **values: Any) -> None:
        super().__init__(msgid or "unreadable")
        self.msgid, self.values = msgid, values


@dataclass(frozen=True)
class Said:
    """What a text says, before it is pinned to a calendar."""

    clock: time | None = None
    part: str | None = None  # sang / trua / chieu / toi without an hour
    year: int | None = None
    month: int | None = None
    day: int | None = None
    offset: int | None = None  # days from today
    weekday: int | None = None  # 0 = Monday
    next_week: bool = False

    @property
    def has_day(self) -> bool:
        return self.month is not None or self.offset is not None or self.weekday is not None


# --- reading ---------------------------------------------------------------------------------

_MONTHS = {name: number for number, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sept", "sep"),
    ("october", "oct"), ("november", "nov"), ("december", "dec")), start=1) for name in names}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_VI_WEEKDAYS = {"hai": 0, "ba": 1, "tu": 2, "nam": 3, "sau": 4, "bay": 5}
_EN_WEEKDAYS = {"monday": 0, "mon": 0, "tuesday": 1, "tues": 1, "tue": 1, "wednesday": 2,
                "wed": 2, "thursday": 3, "thurs": 3, "thur": 3, "thu": 3, "friday": 4,
                "fri": 4, "saturday": 5, "sat": 5, "sunday": 6, "sun": 6}
_OFFSETS = {"hom nay": 0, "bua nay": 0, "today": 0, "tonight": 0, "nay": 0,
            "ngay mai": 1, "mai": 1, "tomorrow": 1, "tmrw": 1, "tmr": 1,
            "ngay mot": 2, "ngay kia": 2, "mot": 2,
            "hom qua": -1, "yesterday": -1, "hom kia": -2}
# A part of the day: how it shifts a typed hour, and the hour it means alone (a deadline).
_PARTS = {"sang": (False, time(11)), "trua": (True, time(13)), "chieu": (True, time(17)),
          "toi": (True, time(21)), "am": (False, time(11)), "pm": (True, time(17)),
          "tonight": (True, time(21))}
_FILLER = {"ngay", "luc", "vao", "truoc", "han", "chot", "at", "on", "by", "before",
           "the", "of", "next", "this", "until", "due", "deadline", "trong", "-"}
_NEXT_WEEK = r"(?:\s+(tuan sau|tuan toi|tuan nay|nay|toi|next week|this week))?"


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w/.:-]){pattern}(?![\w/:-])")


Reader = Callable[[re.Match[str], Said], Said]


def _full_date(m: re.Match[str], said: Said) -> Said:
    year = int(m.group(3))
    return _dated(said, int(m.group(1)), int(m.group(2)), year + 2000 if year < 100 else year)


def _iso_date(m: re.Match[str], said: Said) -> Said:
    return _dated(said, int(m.group(3)), int(m.group(2)), int(m.group(1)))


def _day_month(m: re.Match[str], said: Said) -> Said:
    year = m.group(3) if m.lastindex and m.lastindex >= 3 else None
    return _dated(said, int(m.group(1)), int(m.group(2)), int(year) if year else None)


def _day_month_name(m: re.Match[str], said: Said) -> Said:
    year = m.group(3)
    return _dated(said, int(m.group(1)), _MONTHS[m.group(2)], int(year) if year else None)


def _month_name_day(m: re.Match[str], said: Said) -> Said:
    year = m.group(3)
    return _dated(said, int(m.group(2)), _MONTHS[m.group(1)], int(year) if year else None)


def _dated(said: Said, day: int, month: int, year: int | None) -> Said:
    if said.has_day:
        raise WhenError()
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise WhenError(NO_SUCH_DAY, day=day, month=month, year=f"/{year}" if year else "")
    if year is not None:
        try:
            date(year, month, day)
        except ValueError:
            raise WhenError(NO_SUCH_DAY, day=day, month=month, year=f"/{year}") from None
    return replace(said, day=day, month=month, year=year)


def _offset(m: re.Match[str], said: Said) -> Said:
    if said.has_day:
        raise WhenError()
    word = m.group(1)
    part = "tonight" if word == "tonight" else said.part
    return replace(said, offset=_OFFSETS[word], part=part)


def _weekday(number: int, modifier: str | None, said: Said) -> Said:
    if said.has_day:
        raise WhenError()
    return replace(said, weekday=number,
                   next_week=modifier in ("tuan sau", "tuan toi", "next week"))


def _vi_weekday_number(m: re.Match[str], said: Said) -> Said:
    return _weekday(int(m.group(1)) - 2, m.group(2), said)


def _vi_weekday_word(m: re.Match[str], said: Said) -> Said:
    return _weekday(_VI_WEEKDAYS[m.group(1)], m.group(2), said)


def _sunday(m: re.Match[str], said: Said) -> Said:
    return _weekday(6, m.group(1), said)


def _en_weekday(m: re.Match[str], said: Said) -> Said:
    return _weekday(_EN_WEEKDAYS[m.group(1)], m.group(2), said)


def _clock(hours: int, minutes: int, typed: str, said: Said) -> Said:
    if said.clock is not None:
        raise WhenError()
    if hours > 23 or minutes > 59:
        raise WhenError(NO_SUCH_TIME, typed=typed.strip())
    return replace(said, clock=time(hours, minutes))


def _vi_clock(m: re.Match[str], said: Said) -> Said:
    minutes = 30 if m.group(3) else int(m.group(2) or 0)
    return _clock(int(m.group(1)), minutes, m.group(0), said)


def _colon_clock(m: re.Match[str], said: Said) -> Said:
    return _clock(int(m.group(1)), int(m.group(2)), m.group(0), said)


def _en_clock(m: re.Match[str], said: Said) -> Said:
    hours, minutes = int(m.group(1)), int(m.group(2) or 0)
    if not 1 <= hours <= 12:
        raise WhenError(NO_SUCH_TIME, typed=m.group(0))
    hours = hours % 12 + (12 if m.group(3).startswith("p") else 0)
    return _clock(hours, minutes, m.group(0), said)


def _part(m: re.Match[str], said: Said) -> Said:
    if said.part is not None and said.part != "tonight":
        raise WhenError()
    return replace(said, part=m.group(1))


_D, _M = r"(\d{1,2})", r"(\d{1,2})"
_SEP = r"[/.-]"
# In order: the longer forms first, each match blanked before the next reader looks.
READERS: tuple[tuple[re.Pattern[str], Reader], ...] = (
    (_words(r"(\d{4})-(\d{1,2})-(\d{1,2})"), _iso_date),
    (_words(rf"{_D}{_SEP}{_M}{_SEP}(\d{{4}}|\d{{2}})"), _full_date),
    (_words(rf"(?:mung\s+)?{_D}\s+thang\s+{_M}(?:\s+nam\s+(\d{{4}}))?"), _day_month),
    (_words(rf"{_D}(?:st|nd|rd|th)?\s+{_MONTH}(?:,?\s+(\d{{4}}))?"), _day_month_name),
    (_words(rf"{_MONTH}\s+{_D}(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?"), _month_name_day),
    (_words(rf"{_D}[/-]{_M}"), _day_month),
    (_words(r"(\d{1,2})\s*(?::(\d{2}))?\s*([ap])\.?m\.?"), _en_clock),
    (_words(r"(\d{1,2})\s*(?:h|g|gio)\s*(?:(\d{1,2})\s*(?:p|ph|phut)?|(ruoi))?"), _vi_clock),
    (_words(r"(\d{1,2})[:.](\d{2})"), _colon_clock),
    (_words(rf"(?:thu|t)\s*([2-7]){_NEXT_WEEK}"), _vi_weekday_number),
    (_words(rf"thu\s+(hai|ba|tu|nam|sau|bay){_NEXT_WEEK}"), _vi_weekday_word),
    (_words(rf"(?:chu\s*nhat|cn){_NEXT_WEEK}"), _sunday),
    (_words("(" + "|".join(sorted(_OFFSETS, key=len, reverse=True)) + ")"), _offset),
    (_words("(" + "|".join(sorted(_EN_WEEKDAYS, key=len, reverse=True)) + r")\.?"
            + _NEXT_WEEK), _en_weekday),
    (_words("(sang|trua|chieu|toi|am|pm)"), _part),
)
_ISO_T = re.compile(r"(\d)t(\d)")
_PUNCTUATION = re.compile(r"[,;!?()]")
_BARE_HOUR = re.compile(r"^\s*(\d{1,2})\s*$")


def read(text: str) -> Said:
    """What the text says; WhenError when something in it is neither a date, a time nor a
    filler word, or when it gives two dates or two times."""
    rest = " " + _PUNCTUATION.sub(" ", _ISO_T.sub(r"\1 \2", fold(text))) + " "
    said = Said()
    for pattern, reader in READERS:
        while (match := pattern.search(rest)) is not None:
            said = reader(match, said)
            rest = rest[:match.start()] + " " + rest[match.end():]
    leftover = [word for word in rest.split() if word.strip(".") not in _FILLER | {""}]
    if leftover or (said.clock is None and said.part is None and not said.has_day):
        raise WhenError()
    return _with_part(said)


def _with_part(said: Said) -> Said:
    """'5h chiều' is 17:00, '1h trưa' 13:00; a part alone stays for the deadline's hour."""
    if said.part is None or said.clock is None:
        return said
    after_noon, _ = _PARTS[said.part]
    hours = said.clock.hour
    if after_noon and hours < 12 and not (said.part == "trua" and hours >= 11):
        hours += 12
    elif not after_noon and hours == 12:
        hours = 0
    return replace(said, clock=said.clock.replace(hour=hours), part=None)


# --- pinned to the calendar ------------------------------------------------------------------

def _candidates(said: Said, today: date, step: int) -> list[date]:
    """The day meant, nearest first in the direction `step` (+1 ahead, -1 back)."""
    if said.offset is not None:
        return [today + timedelta(days=said.offset)]
    if said.weekday is not None:
        if said.next_week:
            monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
            return [monday + timedelta(days=said.weekday)]
        first = today + timedelta(days=((said.weekday - today.weekday()) * step) % 7 * step)
        return [first, first + timedelta(days=7 * step)]
    assert said.month is not None and said.day is not None
    if said.year is not None:
        return [date(said.year, said.month, said.day)]
    found = []
    for year in range(today.year - 4 * (step < 0), today.year + 4 * (step > 0) + 1):
        try:
            found.append(date(year, said.month, said.day))
        except ValueError:  # 29/2 outside a leap year
            continue
    if not found:
        raise WhenError(NO_SUCH_DAY, day=said.day, month=said.month, year="")
    return sorted(found, reverse=step < 0)


def moment(text: str, now: datetime, tz: tzinfo, *, default: time = time(17)) -> datetime:
    """A deadline: the local moment meant, the next one not in the past when the text leaves
    it open; `default` the time of a day given alone (end of the office day). Aware, in tz."""
    said = read(text)
    local = now.astimezone(tz)
    clock = said.clock or (_PARTS[said.part][1] if said.part else default)
    if not said.has_day:
        said = replace(said, offset=0)
        if datetime.combine(local.date(), clock, tz) <= local:
            said = replace(said, offset=1)
    choices = [datetime.combine(day, clock, tz) for day in _candidates(said, local.date(), 1)]
    ahead = [choice for choice in choices if choice > local]
    return ahead[0] if ahead and said.year is None else choices[0]


def day(text: str, today: date, *, past: bool) -> date:
    """A day (a time typed with it is ignored): the latest such day not after today when
    `past`, else the next one not before today. A given year is kept as typed."""
    said = read(text)
    if not said.has_day:
        raise WhenError()
    step = -1 if past else 1
    choices = _candidates(said, today, step)
    fitting = [d for d in choices if (d <= today if past else d >= today)]
    return fitting[0] if fitting else choices[0]


def clock(text: str) -> time:
    """A time of day only: '7h30', '19:30', '7pm', 'tối' (21:00), or a bare hour ('16')."""
    bare = _BARE_HOUR.match(text or "")
    if bare:
        return _clock(int(bare.group(1)), 0, text, Said()).clock or time()
    said = read(text)
    if said.has_day:
        raise WhenError(NOT_A_DAY)
    if said.clock is None:
        assert said.part is not None
        return _PARTS[said.part][1]
    return said.clock
