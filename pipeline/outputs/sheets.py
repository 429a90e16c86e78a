"""Write one table as a worksheet that prints: xlsxwriter directly, no pandas.

Every sheet a clerk prints is landscape A4, one page wide (as many pages tall as it needs),
with the header row repeated on every page, the campaign name and sheet name in the header
and `第 N 页 / 共 M 页` in the footer.  Dates are real Excel datetimes shown as
`yyyy-mm-dd hh:mm` (written cell by cell with that format, so nothing overrides it), never
with seconds or microseconds.  Text from mail is written as text, never as a formula.
An autofilter is set only when every header cell has a name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

DATE_FORMAT = "yyyy-mm-dd hh:mm"
A4 = 9  # xlsxwriter / Excel paper size code
STATUS_COLOURS = {
    "按时报送": "#C6EFCE",
    "逾期报送": "#FFEB9C",
    "逾期未报": "#FFC7CE",
    "未报（未到期）": "#DDEBF7",
    "免报": "#EDEDED",
}
# What may start a formula or DDE call, half- and full-width (Excel and WPS take ＝ as =), and the
# invisible or blank characters a spreadsheet may skip before it.
_FORMULA_CHARS = frozenset("=+-@＝＋－＠﹦﹢﹣﹫")
_LINE_STARTS = ("\t", "\r", "\n")
MAX_WIDTH = 48


def wall_time(moment: datetime, tz: tzinfo) -> datetime:
    """Excel has no time zones: the campaign's local wall-clock time as a real date, to the second."""
    return moment.astimezone(tz).replace(tzinfo=None, microsecond=0)


def excel_time(moment: datetime | None, tz: tzinfo) -> datetime | None:
    """`wall_time`, or None (an empty cell) when there is no moment."""
    return wall_time(moment, tz) if moment else None


def safe_text(value: object) -> object:
    """Text a spreadsheet will never evaluate (formula / DDE injection)."""
    if isinstance(value, str):
        value = value.replace("\x00", "")
        if looks_like_formula(value):
            return "'" + value
    return value


def looks_like_formula(value: str) -> bool:
    """Whether a spreadsheet could read `value` as a formula: its first visible character starts one."""
    if value.startswith(_LINE_STARTS):
        return True
    for ch in value:
        if ch.isspace() or unicodedata.category(ch) == "Cf":
            continue
        return ch in _FORMULA_CHARS
    return False


@dataclass
class Table:
    """A sheet's content: one header row, then rows of plain values (str, int, float, datetime, None)."""

    name: str
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    widths: dict[str, int] = field(default_factory=dict)  # column -> width, overriding the measured one

    @classmethod
    def from_frame(cls, name: str, frame: Any) -> Table:
        """A table from a pandas DataFrame (duck-typed, so this module never imports pandas)."""
        columns = [str(c) for c in frame.columns]
        rows = [[_plain(v) for v in record] for record in frame.itertuples(index=False, name=None)]
        return cls(name, columns, rows)


def _plain(value: object) -> object:
    # pandas hands back NaT / NaN for missing cells and Timestamps for dates.
    if value is None:
        return None
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def page_setup(sheet: Any, *, campaign: str, one_page: bool = False, repeat_header: bool = True) -> None:
    """Landscape A4, one page wide, header row repeated, campaign + sheet name on top, page numbers below."""
    sheet.set_landscape()
    sheet.set_paper(A4)
    sheet.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    sheet.fit_to_pages(1, 1 if one_page else 0)
    if repeat_header:
        sheet.repeat_rows(0)
    # '&&' is a literal ampersand in Excel header codes.
    title = campaign.replace("&", "&&")
    sheet.set_header(f"&L&9{title}&R&9&A", {"margin": 0.3})
    sheet.set_footer("&C&9第 &P 页 / 共 &N 页", {"margin": 0.3})


class Formats:
    """The workbook's shared cell formats, created once per workbook."""

    def __init__(self, book: Any) -> None:
        self.header = book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True,
                                       "valign": "vcenter"})  # fmt: skip
        self.date = book.add_format({"num_format": DATE_FORMAT})
        self.percent = book.add_format({"num_format": "0.0%"})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.bold = book.add_format({"bold": True})
        self.status = {text: book.add_format({"bg_color": colour}) for text, colour in STATUS_COLOURS.items()}


def write_cell(sheet: Any, row: int, col: int, value: object, formats: Formats, fmt: Any = None) -> None:
    """One cell: datetimes as dates with the sheet's date format, numbers as numbers, the rest as text."""
    if value is None or value == "":
        sheet.write_blank(row, col, None, fmt)
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, value.replace(microsecond=0, tzinfo=None), fmt or formats.date)
    elif isinstance(value, date):
        sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), fmt or formats.date)
    elif isinstance(value, bool):
        sheet.write_string(row, col, "是" if value else "否", fmt)
    elif isinstance(value, int | float):
        sheet.write_number(row, col, value, fmt)
    else:
        sheet.write_string(row, col, str(safe_text(str(value))), fmt)


def write_table(book: Any, table: Table, formats: Formats, *, campaign: str) -> Any:
    """Write `table` as a sheet that prints (see the module docstring); returns the worksheet."""
    sheet = book.add_worksheet(table.name)
    page_setup(sheet, campaign=campaign)
    status_col = table.columns.index("状态") if "状态" in table.columns else None
    for col, column in enumerate(table.columns):
        sheet.write_string(0, col, column, formats.header)
    for r, values in enumerate(table.rows, start=1):
        for col, value in enumerate(values):
            fmt = formats.status.get(str(value)) if col == status_col else None
            write_cell(sheet, r, col, value, formats, fmt)
    for col, column in enumerate(table.columns):
        sheet.set_column(col, col, table.widths.get(column) or measure(column, [v[col] for v in table.rows]))
    sheet.freeze_panes(1, 0)
    if table.columns and all(c.strip() for c in table.columns):
        sheet.autofilter(0, 0, max(len(table.rows), 1), len(table.columns) - 1)
    return sheet


def measure(header: str, values: Sequence[object]) -> int:
    """A column width for the longest of the first 500 values (CJK characters count double)."""
    if any(isinstance(v, datetime) for v in values[:50]):
        return 17
    longest = max([display_width(str(v)) for v in values[:500] if v is not None] + [display_width(header)],
                  default=8)  # fmt: skip
    return max(6, min(MAX_WIDTH, longest + 2))


def display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
