"""`intake health`: one Chinese line per check (OK / 警告 / 错误), exit 1 only for an 错误.

The checks are pure functions tested at fixed clocks; `gather` and the command run against a
real data dir, a real SMTP server that refuses mail, and real files in the reports folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.workdays import LIBRARY_ONLY
from pipeline.health import Level, check_disk, check_holidays, check_poll, check_report, check_smtp, gather
from pipeline.inbound.imap import STATE_LAST_ERROR, STATE_LAST_SUCCESS
from pipeline.outbound.reminders import run_reminders
from storage.imapstate import save_state
from storage.ledger import LedgerRow, fetch_ledger
from tests.conftest import ROOT, write_config
from tests.smtp import SmtpServer, smtp_config

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 7, 8, 10, 0, tzinfo=TZ)


def _row(status: str, attempts: int, created: datetime, error: str = "550 rejected") -> LedgerRow:
    return LedgerRow(1, "reminder:某医院:2024-07-08", "reminder", ["某医院"], ["a@b.cn"], "s", "<m@x>", "", status,
                     attempts, error, created, None, created, "")  # fmt: skip


def test_pure_checks_at_a_fixed_clock() -> None:
    assert check_poll(None, "connection refused", NOW, 15, TZ).level is Level.ERROR
    old = check_poll(NOW - timedelta(minutes=40), "", NOW, 15, TZ)
    assert old.level is Level.ERROR and "40 分钟前" in old.message
    fresh = check_poll(NOW - timedelta(minutes=3), "", NOW, 15, TZ)
    assert fresh.level is Level.OK and fresh.line.startswith("OK  收取邮件：正常")

    assert check_report(None, NOW, 26, TZ).level is Level.WARN
    assert check_report(NOW - timedelta(hours=30), NOW, 26, TZ).level is Level.ERROR
    assert check_report(NOW - timedelta(hours=2), NOW, 26, TZ).level is Level.OK

    assert check_smtp([], NOW).level is Level.OK
    assert check_smtp([_row("failed", 1, NOW - timedelta(days=30))], NOW).level is Level.OK  # old news
    warned = check_smtp([_row("failed", 1, NOW - timedelta(hours=1))], NOW)
    assert warned.level is Level.WARN and "1 封发送失败" in warned.message
    assert check_smtp([_row("retry", 1, NOW, "Connection refused")], NOW).level is Level.WARN
    stuck = check_smtp([_row("retry", 3, NOW, "Connection refused")], NOW)
    assert stuck.level is Level.ERROR and "SMTP 服务器可能不可用" in stuck.message

    assert check_disk(500 * 1_048_576, 1024, Path("/d")).level is Level.ERROR
    assert check_disk(1500 * 1_048_576, 1024, Path("/d")).level is Level.WARN
    assert check_disk(5000 * 1_048_576, 1024, Path("/d")).level is Level.OK


def test_holiday_coverage_for_the_next_30_days() -> None:
    """GIVEN chinesecalendar up to 2026 WHEN the 30 days ahead reach 2027 THEN 警告; in 2027 itself THEN 错误."""
    def level(today: date) -> Level:
        return check_holidays(LIBRARY_ONLY.gaps(today, 30), today, 30, table="data/holidays.csv").level

    assert level(date(2026, 11, 30)) is Level.OK
    assert level(date(2026, 12, 2)) is Level.WARN  # 12-02 + 30 days = 2027-01-01
    assert level(date(2027, 1, 4)) is Level.ERROR
    broken = check_holidays([], date(2026, 1, 5), 30, table="h.csv", load_error="h.csv:3: 日期重复")
    assert broken.level is Level.ERROR and "h.csv:3" in broken.message


def test_gather_reads_the_data_dir(tmp_path: Path, smtp_reject: SmtpServer) -> None:
    """GIVEN a recent poll, a refused reminder and no workbook WHEN gathering THEN poll OK, SMTP 警告, report 警告;
    WHEN a 30-hour-old workbook is the newest THEN report 错误 and the result is unhealthy."""
    ctx = open_context(load_config(write_config(tmp_path, smtp_config(smtp_reject))))
    with ctx.db.begin() as conn:
        save_state(conn, STATE_LAST_SUCCESS, (NOW - timedelta(minutes=2)).isoformat())
        save_state(conn, STATE_LAST_ERROR, "")
    run_reminders(ctx, NOW - timedelta(minutes=50))
    with ctx.db.connect() as conn:
        assert any(r.status == "failed" for r in fetch_ledger(conn))
    report = gather(ctx, max_age_minutes=15, now=NOW)
    levels = {c.name: c.level for c in report.checks}
    assert levels == {"收取邮件": Level.OK, "每日报表": Level.WARN, "发送邮件": Level.WARN,
                      "磁盘空间": levels["磁盘空间"], "数据文件": Level.OK, "节假日表": Level.OK}  # fmt: skip
    assert report.ok

    workbook = ctx.data_dir / "reports" / "自查报告报送情况_20240707_0830.xlsx"
    workbook.write_bytes(b"PK")
    stamp = (NOW - timedelta(hours=30)).timestamp()
    os.utime(workbook, (stamp, stamp))
    report = gather(ctx, max_age_minutes=15, now=NOW)
    assert {c.name: c.level for c in report.checks}["每日报表"] is Level.ERROR and not report.ok
    ctx.close()


def _synthetic_year(year: int) -> str:
    """27 made-up days off (valid for any year: 休 may fall on any day)."""
    spans = ((1, 1, 3), (2, 10, 9), (4, 4, 3), (5, 1, 5), (10, 1, 7))
    days = [date(year, m, d) + timedelta(days=n) for m, d, length in spans for n in range(length)]
    return "".join(f"{day.isoformat()},休,假日\n" for day in days)


def _health(cfg: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("INTAKE_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "pipeline", "health", "-c", str(cfg)], cwd=cfg.parent, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("case", ["disk", "holidays"])
def test_command_prints_one_line_per_check_and_exits_1_on_an_error(tmp_path: Path, case: str) -> None:
    """GIVEN a recent poll and either a free-space threshold no disk meets or a broken holiday table
    WHEN `intake health` runs THEN every check prints one OK/警告/错误 line and the exit code is 1."""
    cfg = write_config(tmp_path, {"health": {"min_free_mb": 10**12 if case == "disk" else 1}})
    table = "date,kind,name\n2026-01-05,班,补班\n"  # a Monday cannot be a make-up day
    if case == "disk":  # a valid table for this year and the next, so the check does not depend on the date
        table = "date,kind,name\n" + "".join(_synthetic_year(date.today().year + n) for n in (0, 1))
    (tmp_path / "data" / "holidays.csv").write_text(table, encoding="utf-8")
    ctx = open_context(load_config(cfg))
    with ctx.db.begin() as conn:
        save_state(conn, STATE_LAST_SUCCESS, datetime.now(TZ).isoformat())
    ctx.close()
    done = _health(cfg)
    lines = done.stdout.strip().splitlines()
    assert [line.split("  ", 1)[1].split("：", 1)[0] for line in lines] == [
        "收取邮件", "每日报表", "发送邮件", "磁盘空间", "数据文件", "节假日表"]  # fmt: skip
    assert all(line.split("  ", 1)[0] in ("OK", "警告", "错误") for line in lines)
    assert done.returncode == 1 and "1 项错误" in done.stderr
    broken = next(line for line in lines if line.startswith("错误"))
    if case == "disk":
        assert "磁盘空间" in broken and "空间不足" in broken
    else:
        assert "节假日表" in broken and "holidays.csv 第 2 行" in broken and "星期一" in broken

    if case == "disk":  # the same data dir with an ordinary threshold is healthy (exit 0, warnings allowed)
        cfg.write_text(cfg.read_text(encoding="utf-8").replace(f"min_free_mb = {10**12}", "min_free_mb = 1"),
                       encoding="utf-8")  # fmt: skip
        assert _health(cfg).returncode == 0
