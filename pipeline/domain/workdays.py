"""Chinese working days (with 调休 make-up days) and quiet hours, for the reminder schedule.

Pure: the clerk-maintained holiday table is passed in (loading it is
`pipeline.holidays`).  A `WorkCalendar` answers from two sources:

1. the holiday table (data/holidays.csv): a listed date is 休 (off) or 班
   (working) whatever the library says;
2. otherwise `chinese_calendar`, which knows the State Council's arrangements
   for the years it was released with (2004–2026 in 1.11.0);
3. for a year only the table knows, every unlisted day is Monday–Friday (the
   loader insists such a year is listed in full).

A day in a year neither knows raises `CalendarGapError`: nothing falls back
to Monday–Friday silently, because a reminder on New Year's Day or during
Spring Festival is worse than a reminder held until a clerk adds the year.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import MappingProxyType

import chinese_calendar
from chinese_calendar import constants as _library

from pipeline.errors import IntakeError

DAY_OFF = "休"
WORKING_DAY = "班"
LIBRARY_YEARS: frozenset[int] = frozenset(d.year for d in _library.holidays) | frozenset(
    d.year for d in _library.workdays
)
MAX_SEARCH_DAYS = 400  # a walk over working days that finds none in this many days has met a gap or bad data


class CalendarGapError(IntakeError):
    """Raised when a day falls in a year that neither the holiday table nor chinese_calendar covers."""

    def __init__(self, day: date, source: str) -> None:
        self.day = day
        self.year = day.year
        super().__init__(
            f"{day.year} 年的节假日安排未知：{source or '节假日表'}和 chinesecalendar 库都没有 {day.year} 年的数据，"
            f"无法判断 {day.isoformat()} 是否工作日。请按国务院办公厅公布的安排在节假日表中补充 {day.year} 年"
        )


@dataclass(frozen=True, slots=True)
class HolidayEntry:
    """One line of the holiday table: `kind` is 休 (day off) or 班 (working weekend day)."""

    day: date
    kind: str
    name: str
    line: int = 0


@dataclass(frozen=True)
class WorkCalendar:
    """Working-day answers from a holiday table (which wins for the years it names) and chinese_calendar."""

    entries: Mapping[date, HolidayEntry] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""  # the table's file, for messages

    @property
    def table_years(self) -> frozenset[int]:
        return frozenset(d.year for d in self.entries)

    def covers(self, day: date) -> bool:
        """Whether `day`'s year is known (from the table or the library)."""
        return day.year in self.table_years or day.year in LIBRARY_YEARS

    def is_workday(self, day: date) -> bool:
        """True on a working day.  Raises CalendarGapError for a year nobody covers."""
        entry = self.entries.get(day)
        if entry is not None:
            return entry.kind == WORKING_DAY
        if day.year in LIBRARY_YEARS:
            return bool(chinese_calendar.is_workday(day))
        if day.year in self.table_years:
            return day.weekday() < 5
        raise CalendarGapError(day, self.source)

    def gaps(self, start: date, days: int) -> list[int]:
        """Years not covered among the `days` days from `start` on (empty when all are covered)."""
        years = {(start + timedelta(days=n)).year for n in range(max(days, 0) + 1)}
        return sorted(y for y in years if not self.covers(date(y, 1, 1)))


LIBRARY_ONLY = WorkCalendar()


def from_entries(entries: list[HolidayEntry], source: str = "") -> WorkCalendar:
    """A calendar over already-validated entries (one per date)."""
    return WorkCalendar(MappingProxyType({e.day: e for e in entries}), source)


def is_workday(day: date, calendar: WorkCalendar) -> bool:
    """True on a Chinese working day: Monday-Friday except holidays, plus make-up Saturdays/Sundays."""
    return calendar.is_workday(day)


def add_workdays(day: date, count: int, calendar: WorkCalendar) -> date:
    """The `count`-th working day after `day` (negative: before it).  `count` 0 returns `day`."""
    step = 1 if count >= 0 else -1
    remaining = abs(count)
    current = day
    walked = 0
    while remaining:
        current += timedelta(days=step)
        walked += 1
        if calendar.is_workday(current):
            remaining -= 1
        elif walked > MAX_SEARCH_DAYS * max(1, abs(count)):
            raise IntakeError(f"从 {day} 起 {walked} 天内找不到足够的工作日，请检查节假日表")
    return current


def workday_on_or_before(day: date, calendar: WorkCalendar) -> date:
    """`day` itself if it is a working day, else the last working day before it."""
    start = day
    while not calendar.is_workday(day):
        day -= timedelta(days=1)
        if (start - day).days > MAX_SEARCH_DAYS:
            raise IntakeError(f"{start} 之前 {MAX_SEARCH_DAYS} 天内没有工作日，请检查节假日表")
    return day


def workdays_between(start: date, end: date, calendar: WorkCalendar) -> int:
    """How many working days lie in (start, end]."""
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        count += calendar.is_workday(current)
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
