"""The clerks' workbook: the sheets they act on, with real dates and counts that add up."""

from __future__ import annotations

from datetime import datetime

import openpyxl

from pipeline.config import load_config
from pipeline.demo.run import run_demo
from pipeline.domain.roster import load_roster
from pipeline.outputs.workbook import build_workbook

from .conftest import write_config


def test_workbook_from_the_demo_mailbox(tmp_path):
    """GIVEN the demo mailbox ingested WHEN the workbook is built THEN it has the six sheets (and the hidden chart data), one status row
    per roster row in roster order with real Excel dates, and summary blocks whose totals match the roster."""
    run = run_demo(load_config(write_config(tmp_path)), seed=7)
    try:
        path = build_workbook(run.ctx, run.corpus.as_of, tmp_path / "out.xlsx")
        roster = [inst.name for inst in load_roster(run.ctx.config.campaign)]
    finally:
        run.ctx.close()
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["汇总", "未报送名单", "报送情况", "来信明细", "待人工核对", "发件人待确认", "操作记录", "图表数据"]
    status = book["报送情况"]
    header = [c.value for c in status[1]]
    names = [row[header.index("机构")] for row in status.iter_rows(min_row=2, values_only=True)]
    assert names == roster
    first = [row[header.index("首次收到")] for row in status.iter_rows(min_row=2, values_only=True)]
    assert all(value is None or isinstance(value, datetime) for value in first) and any(first)
    assert status.freeze_panes == "A2" and status.auto_filter.ref
    summary = list(book["汇总"].iter_rows(values_only=True))
    for block in ("按区统计", "按报送渠道统计"):
        header_at = next(i for i, row in enumerate(summary) if row[0] == block) + 1
        total = summary[header_at].index("合计")
        rows = []
        for row in summary[header_at + 1 :]:
            if row[0] is None:
                break
            rows.append(row)
        assert sum(row[total] for row in rows) == len(roster), block
