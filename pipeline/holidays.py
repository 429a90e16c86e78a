"""Load the clerk-maintained holiday table (`[campaign] holidays`, e.g. data/holidays.csv).

Format (UTF-8, with or without BOM; lines starting with `#` are comments)::

    date,kind,name
    2027-01-01,休,元旦
    2027-02-07,班,春节

`kind` is 休 (a day off, weekends inside a holiday period included) or 班 (a
Saturday or Sunday that is a working day, 调休).  An entry overrides
chinese_calendar for its date; a year the library does not know is taken from
the table, so such a year must be listed in full (at least MIN_DAYS_OFF 休
lines — the State Council's yearly arrangement has 25–33).

Every problem is a `DataFileError` in Chinese naming the file and the line.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date
from pathlib import Path

from pipeline.domain.workdays import (
    DAY_OFF,
    LIBRARY_ONLY,
    LIBRARY_YEARS,
    WORKING_DAY,
    HolidayEntry,
    WorkCalendar,
    from_entries,
)
from pipeline.errors import DataFileError

HEADER = ("date", "kind", "name")
MIN_DAYS_OFF = 20
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WEEKDAYS = "一二三四五六日"


def load_calendar(path: Path | None) -> WorkCalendar:
    """The working-day calendar for `path` (None: chinese_calendar alone)."""
    if path is None:
        return LIBRARY_ONLY
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as err:
        raise DataFileError(path, None, "节假日表文件不存在（见 config.toml 的 [campaign] holidays）") from err
    except UnicodeDecodeError as err:
        raise DataFileError(path, None, "节假日表不是 UTF-8 编码，请用 UTF-8 保存") from err
    except OSError as err:
        raise DataFileError(path, None, f"无法读取节假日表：{err.strerror or err}") from err
    return from_entries(parse_holidays(text, path), str(path))


def parse_holidays(text: str, path: Path | str) -> list[HolidayEntry]:
    """Validate the table's text; returns one entry per date."""
    entries: list[HolidayEntry] = []
    seen: dict[date, int] = {}
    header_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([line]))]
        if not header_seen:
            if tuple(c.lower() for c in cells) != HEADER:
                raise DataFileError(path, number, f"第一行应为表头 date,kind,name，实际是 {line.strip()!r}")
            header_seen = True
            continue
        if len(cells) != 3:
            raise DataFileError(path, number, f"应有 3 列（日期,类型,名称），实际 {len(cells)} 列：{line.strip()!r}")
        raw_day, kind, name = cells
        if not _ISO_DAY.match(raw_day):
            raise DataFileError(path, number, f"日期 {raw_day!r} 格式不对，应写成 2027-01-01")
        try:
            day = date.fromisoformat(raw_day)
        except ValueError as err:
            raise DataFileError(path, number, f"日期 {raw_day!r} 不存在") from err
        if kind not in (DAY_OFF, WORKING_DAY):
            raise DataFileError(path, number, f"类型 {kind!r} 不对，只能是“休”（放假）或“班”（调休上班）")
        if not name:
            raise DataFileError(path, number, "缺少名称（如 春节、国庆节）")
        if kind == WORKING_DAY and day.weekday() < 5:
            raise DataFileError(
                path, number, f"{raw_day} 是星期{_WEEKDAYS[day.weekday()]}，本来就是工作日；“班”只用于调休上班的周六、周日"
            )
        if day in seen:
            raise DataFileError(path, number, f"日期 {raw_day} 重复（第 {seen[day]} 行已有）")
        seen[day] = number
        entries.append(HolidayEntry(day, kind, name, number))
    if not header_seen:
        raise DataFileError(path, None, "节假日表是空的：至少需要表头 date,kind,name")
    days_off = Counter(e.day.year for e in entries if e.kind == DAY_OFF)
    for year in sorted({e.day.year for e in entries} - LIBRARY_YEARS):
        if days_off[year] < MIN_DAYS_OFF:
            first = min(e.line for e in entries if e.day.year == year)
            raise DataFileError(
                path, first,
                f"{year} 年只有 {days_off[year]} 天“休”：chinesecalendar 库没有该年数据，须按国务院办公厅公布的"
                f"安排列出全年全部放假日（含假期中的周末，通常 25–33 天）和调休上班日",
            )  # fmt: skip
    return entries
