"""wording.when: dates and times as leaders type them, read against a fixed "now".

NOW is Wednesday 2 December 2026, 10:00 in Ho Chi Minh City (03:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from wording.when import NO_SUCH_DAY, NO_SUCH_TIME, NOT_A_DAY, WhenError, clock, day, moment

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
TODAY = date(2026, 12, 2)


def local(month: int, day_: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day_, hour, minute, tzinfo=TZ)


MOMENTS = [
    ("17h", local(12, 2, 17)),
    ("17h30", local(12, 2, 17, 30)),
    ("17H30", local(12, 2, 17, 30)),
    ("17g30", local(12, 2, 17, 30)),
    ("17 giờ 30", local(12, 2, 17, 30)),
    ("17 gio 30 phut", local(12, 2, 17, 30)),
    ("5 giờ rưỡi chiều", local(12, 2, 17, 30)),
    ("8h", local(12, 3, 8)),  # 08:00 today has passed: tomorrow's
    ("17:00 5/12", local(12, 5, 17)),
    ("5/12 17:00", local(12, 5, 17)),
    ("17h ngày 5/12", local(12, 5, 17)),
    ("trước 17h ngày 5/12/2026", local(12, 5, 17)),
    ("5/12", local(12, 5, 17)),  # a day alone: the end of the office day
    ("05-12", local(12, 5, 17)),
    ("1/12", local(12, 1, 17, year=2027)),  # yesterday: the next 1/12 is next year's
    ("5.12.2026 9h", local(12, 5, 9)),
    ("2026-12-31 17:00", local(12, 31, 17)),
    ("2026-12-31T17:00", local(12, 31, 17)),
    ("5 tháng 12", local(12, 5, 17)),
    ("ngày 5 tháng 1 năm 2027 lúc 8h", local(1, 5, 8, year=2027)),
    ("mai 17h", local(12, 3, 17)),
    ("17h mai", local(12, 3, 17)),
    ("ngày mai", local(12, 3, 17)),
    ("ngay mai 9h sang", local(12, 3, 9)),
    ("chiều mai", local(12, 3, 17)),
    ("5 giờ chiều mai", local(12, 3, 17)),
    ("hôm nay", local(12, 2, 17)),
    ("tối nay", local(12, 2, 21)),
    ("ngày mốt", local(12, 4, 17)),
    ("thứ 6", local(12, 4, 17)),
    ("thu 6", local(12, 4, 17)),
    ("T6 16h", local(12, 4, 16)),
    ("thứ sáu", local(12, 4, 17)),
    ("thứ 4 9h", local(12, 9, 9)),  # today is a Wednesday and 9:00 has passed: next week's
    ("thứ 4 17h", local(12, 2, 17)),  # ... but 17:00 today is still ahead
    ("thứ 6 tuần sau", local(12, 11, 17)),
    ("cn", local(12, 6, 17)),
    ("chủ nhật 9h sáng", local(12, 6, 9)),
    ("1h trưa thứ 2", local(12, 7, 13)),
    ("12h trưa", local(12, 2, 12)),
    ("tomorrow 5pm", local(12, 3, 17)),
    ("5:30 pm tomorrow", local(12, 3, 17, 30)),
    ("by Friday", local(12, 4, 17)),
    ("next friday 9am", local(12, 4, 9)),
    ("Dec 5, 5pm", local(12, 5, 17)),
    ("5 Dec 2026", local(12, 5, 17)),
    ("tonight", local(12, 2, 21)),
    ("29/2", local(2, 29, 17, year=2028)),  # the next 29 February
    ("hạn chót 17h thứ 6", local(12, 4, 17)),
    ("vào lúc 9h30 sáng thứ hai tuần tới", local(12, 7, 9, 30)),
]


@pytest.mark.parametrize(("typed", "meant"), MOMENTS)
def test_a_deadline_as_typed(typed: str, meant: datetime) -> None:
    assert moment(typed, NOW, TZ) == meant


DAYS_BACK = [
    ("hôm nay", TODAY),
    ("hom qua", date(2026, 12, 1)),
    ("yesterday", date(2026, 12, 1)),
    ("hôm kia", date(2026, 11, 30)),
    ("5/12", date(2025, 12, 5)),  # a delivery: the latest 5/12 not in the future
    ("1/12", date(2026, 12, 1)),
    ("30/11/2026", date(2026, 11, 30)),
    ("03/11/2026", date(2026, 11, 3)),
    ("thứ 6", date(2026, 11, 27)),
    ("thu 4", TODAY),
    ("mon", date(2026, 11, 30)),
]


@pytest.mark.parametrize(("typed", "meant"), DAYS_BACK)
def test_a_day_already_past(typed: str, meant: date) -> None:
    assert day(typed, TODAY, past=True) == meant


CLOCKS = [("16", time(16)), ("7h30", time(7, 30)), ("19:30", time(19, 30)),
          ("16.30", time(16, 30)), ("7pm", time(19)), ("20h", time(20)),
          ("7 giờ tối", time(19)), ("tối", time(21))]


@pytest.mark.parametrize(("typed", "meant"), CLOCKS)
def test_a_time_of_day(typed: str, meant: time) -> None:
    assert clock(typed) == meant


REFUSED = [
    ("chào", None), ("17", None), ("", None), ("5/12 6/12", None), ("17h 18h", None),
    ("mai thứ 6", None), ("17h hôm nay xyz", None),
    ("31/2", NO_SUCH_DAY), ("31/2/2027", NO_SUCH_DAY), ("32/12", NO_SUCH_DAY),
    ("5/13", NO_SUCH_DAY), ("25h", NO_SUCH_TIME), ("17:75", NO_SUCH_TIME),
    ("13pm", NO_SUCH_TIME),
]


@pytest.mark.parametrize(("typed", "why"), REFUSED)
def test_what_is_refused_and_why(typed: str, why: str | None) -> None:
    with pytest.raises(WhenError) as refused:
        moment(typed, NOW, TZ)
    assert refused.value.msgid == why


def test_a_time_step_refuses_a_date_and_a_day_step_a_lone_time() -> None:
    with pytest.raises(WhenError) as refused:
        clock("mai 7h")
    assert refused.value.msgid == NOT_A_DAY
    with pytest.raises(WhenError):
        day("17h", TODAY, past=True)


def test_now_in_another_zone_is_read_in_the_zone_given() -> None:
    # 23:30 UTC on 1 Dec is 06:30 on 2 Dec in Ho Chi Minh City: "17h" is that day's.
    assert moment("17h", datetime(2026, 12, 1, 23, 30, tzinfo=UTC), TZ) == local(12, 2, 17)
