"""The 汇总 sheet: key facts and rates, counts by district and by channel, and a chart — on one printed page.

Rates, for the units that must report (roster rows minus exempt ones):
上报率 = units whose report has arrived (on time or late) / units that must report;
及时率 = units whose first report arrived by the deadline / units that must report.
A group with no unit that must report shows the rates blank, not 0%.

The chart is a native Excel scatter chart (xlsxwriter) of the cumulative number of units
whose first report has arrived, over time, with the deadline drawn as a vertical line.  Its
data lives on a hidden sheet 图表数据 so the printed page shows only the chart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from pipeline import labels_zh
from pipeline.domain.roster import DISTRICTS
from pipeline.domain.status import InstitutionStatus
from pipeline.labels_zh import label
from pipeline.outputs.sheets import Formats, excel_time, page_setup, wall_time, write_cell
from pipeline.outputs.snapshot import CampaignSnapshot
from pipeline.vocab import Channel, Status

CHART_DATA_SHEET = "图表数据"
_STATUSES = tuple(Status)


@dataclass(frozen=True)
class Rates:
    """Counts and rates of one group of roster rows."""

    counts: dict[Status, int]
    total: int
    must_report: int
    reported: int
    on_time: int

    @property
    def report_rate(self) -> float | None:
        return self.reported / self.must_report if self.must_report else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.must_report if self.must_report else None


def rates(rows: Iterable[InstitutionStatus]) -> Rates:
    counts = dict.fromkeys(_STATUSES, 0)
    for r in rows:
        counts[Status(r.status)] += 1
    total = sum(counts.values())
    return Rates(counts=counts, total=total, must_report=total - counts[Status.EXEMPT],
                 reported=counts[Status.ON_TIME] + counts[Status.LATE], on_time=counts[Status.ON_TIME])  # fmt: skip


def by_group(rows: Iterable[InstitutionStatus], key: Callable[[InstitutionStatus], str],
             order: Iterable[str]) -> list[tuple[str, Rates]]:  # fmt: skip
    """Rates per group, groups in `order` first, then any other group by name."""
    groups: dict[str, list[InstitutionStatus]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    rank = {name: n for n, name in enumerate(order)}
    return [(g, rates(members)) for g, members in sorted(groups.items(), key=lambda kv: (rank.get(kv[0], 99), kv[0]))]


def arrivals(snapshot: CampaignSnapshot, tz: tzinfo) -> list[tuple[datetime, int]]:
    """(moment, cumulative units reported) for each unit's first report, in time order, from 0 to as-of."""
    firsts = sorted(wall_time(s.first_received_at, tz) for s in snapshot.statuses
                    if s.first_received_at is not None and s.status != Status.EXEMPT)  # fmt: skip
    as_of = wall_time(snapshot.as_of, tz)
    start = min([*firsts, wall_time(snapshot.deadline, tz) - timedelta(days=3), as_of])
    points = [(start.replace(hour=0, minute=0, second=0), 0)]
    points += [(moment, n) for n, moment in enumerate(firsts, start=1)]
    points.append((max(as_of, points[-1][0]), len(firsts)))
    return points


def write_summary(book: Any, snapshot: CampaignSnapshot, formats: Formats, *, campaign: str, tz: tzinfo,
                  review_count: int, generated_at: datetime) -> Callable[[], None]:  # fmt: skip
    """The 汇总 sheet (one landscape page); returns the function that writes its hidden chart-data sheet.

    Call that function after the other sheets, so the data sheet comes last in the workbook.
    """
    sheet = book.add_worksheet("汇总")
    page_setup(sheet, campaign=campaign, one_page=True, repeat_header=False)
    statuses = list(snapshot.statuses)
    overall = rates(statuses)
    sheet.write_string(0, 0, f"{campaign} 报送情况汇总", formats.title)
    facts: list[tuple[str, object, Any]] = [
        ("截止时间", excel_time(snapshot.deadline, tz), None),
        ("统计时点", excel_time(snapshot.as_of, tz), None),
        ("生成时间", excel_time(generated_at, tz), None),
        ("名单机构数", overall.total, None),
        ("应报送（不含免报）", overall.must_report, None),
        ("已报送", overall.reported, None),
        ("上报率", overall.report_rate, formats.percent),
        ("按时报送", overall.on_time, None),
        ("及时率", overall.on_time_rate, formats.percent),
        *((f"状态：{label(s, Status)}", n, None) for s, n in overall.counts.items()),
        ("待人工核对条目", review_count, None),
    ]
    row = 2
    for name, value, fmt in facts:
        sheet.write_string(row, 0, name, formats.bold)
        write_cell(sheet, row, 1, value, formats, fmt)
        row += 1
    status_labels = [label(s, Status) for s in _STATUSES]
    headers = [*status_labels, "合计", "上报率", "及时率"]
    blocks = (
        ("区", by_group(statuses, lambda r: r.institution.district or "（无区）", DISTRICTS)),
        ("报送渠道", by_group(statuses, lambda r: label(r.institution.channel, Channel), labels_zh.CHANNEL.values())),
    )
    for title, groups in blocks:
        row += 1
        sheet.write_string(row, 0, f"按{title}统计", formats.bold)
        row += 1
        for col, header in enumerate((title, *headers)):
            sheet.write_string(row, col, header, formats.header)
        for group, r in groups:
            row += 1
            sheet.write_string(row, 0, group)
            for col, s in enumerate(_STATUSES, start=1):
                sheet.write_number(row, col, r.counts[s])
            write_cell(sheet, row, len(_STATUSES) + 1, r.total, formats)
            write_cell(sheet, row, len(_STATUSES) + 2, r.report_rate, formats, formats.percent)
            write_cell(sheet, row, len(_STATUSES) + 3, r.on_time_rate, formats, formats.percent)
        row += 1
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, len(headers), 11)
    sheet.set_column(1, 1, 17)
    points = arrivals(snapshot, tz)
    _add_chart(book, sheet, len(points), anchor_row=2, anchor_col=len(headers) + 2, must_report=overall.must_report)

    def write_data() -> None:
        data = book.add_worksheet(CHART_DATA_SHEET)
        data.hide()
        data.write_row(0, 0, ["时间", "累计已报送单位", "截止时间", "应报送"])
        for n, (moment, count) in enumerate(points, start=1):
            data.write_datetime(n, 0, moment, formats.date)
            data.write_number(n, 1, count)
        deadline = excel_time(snapshot.deadline, tz)
        for n, y in enumerate((0, max(overall.must_report, points[-1][1])), start=1):
            data.write_datetime(n, 2, deadline, formats.date)
            data.write_number(n, 3, y)
        data.set_column(0, 3, 17)

    return write_data


def _add_chart(book: Any, sheet: Any, last: int, *, anchor_row: int, anchor_col: int, must_report: int) -> None:
    chart = book.add_chart({"type": "scatter", "subtype": "straight"})
    chart.add_series({"name": "累计已报送单位", "categories": [CHART_DATA_SHEET, 1, 0, last, 0],
                      "values": [CHART_DATA_SHEET, 1, 1, last, 1], "line": {"color": "#2F5597", "width": 2}})  # fmt: skip
    chart.add_series({"name": "截止时间", "categories": [CHART_DATA_SHEET, 1, 2, 2, 2],
                      "values": [CHART_DATA_SHEET, 1, 3, 2, 3],
                      "line": {"color": "#C00000", "width": 1.5, "dash_type": "dash"}})  # fmt: skip
    chart.set_title({"name": "累计报送单位数与截止时间", "name_font": {"size": 11}})
    chart.set_x_axis({"date_axis": False, "num_format": "mm-dd", "name": "收到时间"})
    chart.set_y_axis({"name": "单位数", "min": 0, "max": max(must_report, 1)})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 620, "height": 380})
    sheet.insert_chart(anchor_row, anchor_col, chart)
