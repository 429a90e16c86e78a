"""Chinese working days (with 调休 make-up days) and quiet hours, for the reminder schedule.

`chinese_calendar` knows the State Council's holiday arrangements year by
year, including the weekend days that become working days (调休).  For a year
it does not know yet, it raises; we then fall back to Monday-Friday and say so
in the log, rather than stopping the reminders.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

import chinese_calendar

log = logging.getLogger(__name__)
_warned_years: set[int] = set()


def is_workday(day: date) -> bool:
    """True on a Chinese working day: Monday-Friday except holidays, plus make-up Saturdays/Sundays."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning("chinese_calendar has no data for %s; assuming Monday-Friday", day.year)
        return day.weekday() < 5


def add_workdays(day: date, count: int) -> date:
    """The `count`-th working day after `day` (negative: before it).  `count` 0 returns `day`."""
    step = 1 if count >= 0 else -1
    remaining = abs(count)
    current = day
    while remaining:
        current += timedelta(days=step)
        if is_workday(current):
            remaining -= 1
    return current


def workday_on_or_before(day: date) -> date:
    """`day` itself if it is a working day, else the last working day before it."""
    while not is_workday(day):
        day -= timedelta(days=1)
    return day


def workdays_between(start: date, end: date) -> int:
    """How many working days lie in (start, end]."""
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        count += is_workday(current)
    return count


def in_quiet_hours(moment: datetime, quiet: tuple[time, time] | None) -> bool:
    """Whether `moment` (already in local time) falls in the quiet window [start, end).

    A window whose start is after its end wraps midnight: ("20:00", "08:00") is
    quiet from 20:00 until 08:00 next morning.
    """
    if quiet is None:
        return False
    start, end = quiet
    now = moment.timetz().replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end
