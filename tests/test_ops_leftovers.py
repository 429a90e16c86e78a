"""Issue 15's leftovers: Excel times without microseconds in the audit and export sheets, the contacts'
phone in `intake contacts`, and `intake remind` exiting non-zero when the reminders are held."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.outputs.audit import audit_frame
from pipeline.outputs.export import _index_row
from pipeline.vocab import Status
from storage.audit import AuditRow
from tests.conftest import write_config

TZ = ZoneInfo("Asia/Shanghai")
MOMENT = datetime(2024, 7, 9, 2, 3, 4, 567891, tzinfo=UTC)  # 10:03:04.567891 in Guangzhou
runner = CliRunner()


def test_audit_and_export_sheets_carry_wall_clock_times_without_microseconds() -> None:
    """GIVEN a moment with microseconds WHEN the 操作记录 frame and the export's 报告清单 row are built
    THEN both hold the campaign's wall-clock time as a naive datetime, to the second, no microseconds."""
    row = AuditRow(1, MOMENT, "李文", "exempt", "x", "广州市胸科医院", {}, "已撤并")
    frame = audit_frame([row], TZ)
    at = frame["时间"].iloc[0].to_pydatetime()
    assert at == datetime(2024, 7, 9, 10, 3, 4) and at.tzinfo is None
    status = SimpleNamespace(institution=SimpleNamespace(row=1, name="广州市胸科医院", district="越秀区"),
                             status=Status.LATE, first_received_at=MOMENT, exempt_reason="")  # fmt: skip
    index = _index_row(status, None, TZ)  # type: ignore[arg-type]
    assert index["首次收到"] == datetime(2024, 7, 9, 10, 3, 4)


def test_intake_contacts_shows_the_phone_column(tmp_path: Path) -> None:
    """GIVEN contacts.csv with the optional phone column WHEN `intake contacts` runs THEN the table shows 电话
    with the number, and CSV gains `phone` as its last column (the contract only grows at the end)."""
    config = write_config(tmp_path)
    (tmp_path / "data" / "contacts.csv").write_text(
        "institution,address,person,role,phone\n广州市胸科医院,xxk@xkyy.example,陈伟,信息科,020-83590000\n",
        encoding="utf-8",
    )
    open_context(load_config(config)).close()  # a data dir to read (contacts is a read-only command)
    table = runner.invoke(app, ["contacts", "--config", str(config)], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "电话" in table.output and "020-83590000" in table.output
    listed = runner.invoke(app, ["contacts", "--format", "csv", "--config", str(config)])
    rows = list(csv.reader(io.StringIO(listed.output)))
    assert rows[0][-1] == "phone" and rows[0][:4] == ["institution", "address", "person", "role"]
    assert [r for r in rows[1:] if r[1] == "xxk@xkyy.example"][0][-1] == "020-83590000"


def test_intake_remind_exits_1_with_the_reason_when_reminders_are_held(tmp_path: Path) -> None:
    """GIVEN a deadline in January 2027 and a holiday table that ends with 2026 WHEN `intake remind` runs on
    2027-01-04 THEN nothing goes out and it exits 1 with 未执行：催报暂停：… in Chinese; WHEN it runs on a
    Sunday of a known year THEN that is no hold: exit 0, 本次没有催报."""
    config = write_config(tmp_path, {"campaign": {"deadline": "2027-01-08T23:59:59+08:00"}})
    held = runner.invoke(app, ["remind", "--as-of", "2027-01-04T09:30:00+08:00", "--config", str(config)],
                         env={"COLUMNS": "400"})
    assert held.exit_code == 1, held.output
    assert "未执行：催报暂停：2027 年的节假日安排未知" in held.output
    assert "本次没有催报" not in held.output
    sunday = runner.invoke(app, ["remind", "--as-of", "2026-12-27T09:30:00+08:00", "--config", str(config)])
    assert sunday.exit_code == 0, sunday.output
    assert "本次没有催报：2026-12-27 不是工作日" in sunday.output
