"""`intake health`: what an operator must know, one Chinese line per check with OK / 警告 / 错误.

The checks are pure functions over plain inputs (easy to test at any clock);
`gather(ctx)` reads those inputs from the data dir and runs them.  Any 错误
makes the whole result unhealthy (the CLI exits 1); 警告 asks for attention
but keeps exit 0, so monitoring pages only for what stops the work.

Checks: the last successful poll (exists, recent enough), the newest daily
workbook (age), outgoing mail the SMTP server refused or that waits for a
retry, free space in the data dir, and whether the holiday table knows every
day of the coming weeks (plus a reminder hold recorded by the last run).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path

from pipeline.context import Context
from pipeline.errors import ConfigError
from pipeline.holidays import load_calendar
from pipeline.inbound.imap import STATE_LAST_ERROR, STATE_LAST_SUCCESS
from pipeline.outbound.reminders import STATE_REMINDER_HOLD
from pipeline.vocab import DeliveryState
from storage.imapstate import fetch_state
from storage.ledger import LedgerRow, fetch_ledger

RECENT_FAILURES = timedelta(days=7)
SMTP_DOWN_ATTEMPTS = 3  # a mail still waiting after this many attempts: the server is not taking mail


class Level(StrEnum):
    OK = "OK"
    WARN = "警告"
    ERROR = "错误"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: Level
    message: str

    @property
    def line(self) -> str:
        return f"{self.level.value}  {self.name}：{self.message}"


@dataclass(frozen=True)
class HealthReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.level is not Level.ERROR for c in self.checks)


def _when(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- pure checks


def check_poll(last_success: datetime | None, last_error: str, now: datetime, max_age_minutes: float,
               tz: tzinfo) -> Check:  # fmt: skip
    """The last successful poll must exist and be at most `max_age_minutes` old."""
    error = f"；最近一次错误：{last_error}" if last_error else ""
    if last_success is None:
        return Check("收取邮件", Level.ERROR, f"还没有成功收取过邮件{error}")
    age = (now - last_success).total_seconds() / 60
    if age > max_age_minutes:
        return Check("收取邮件", Level.ERROR, f"上次成功收取邮件在 {_when(last_success, tz)}（{age:.0f} 分钟前），"
                                              f"超过 {max_age_minutes:g} 分钟{error}")  # fmt: skip
    return Check("收取邮件", Level.OK, f"正常：上次成功收取邮件在 {_when(last_success, tz)}（{age:.1f} 分钟前）")


def check_report(last_report: datetime | None, now: datetime, max_age_hours: float, tz: tzinfo) -> Check:
    """The newest daily workbook should be younger than `max_age_hours` (the worker writes one a day)."""
    if last_report is None:
        return Check("每日报表", Level.WARN, "还没有生成过每日报表（worker 每天按 [schedule] report_at 生成）")
    age = (now - last_report).total_seconds() / 3600
    if age > max_age_hours:
        return Check("每日报表", Level.ERROR, f"最新报表生成于 {_when(last_report, tz)}（{age:.0f} 小时前），"
                                              f"超过 {max_age_hours:g} 小时：每日报表任务可能失败")  # fmt: skip
    return Check("每日报表", Level.OK, f"最新报表生成于 {_when(last_report, tz)}（{age:.1f} 小时前）")


def check_smtp(rows: list[LedgerRow], now: datetime) -> Check:
    """Mail the SMTP server refused lately (警告) or that keeps waiting for a retry (错误 after several tries)."""
    failed = [r for r in rows if r.status == DeliveryState.FAILED and now - r.created_at <= RECENT_FAILURES]
    waiting = [r for r in rows if r.status == DeliveryState.RETRY and r.attempts > 0]
    stuck = [r for r in waiting if r.attempts >= SMTP_DOWN_ATTEMPTS]
    if not failed and not waiting:
        return Check("发送邮件", Level.OK, "近 7 天没有发送失败的邮件")
    parts = []
    if waiting:
        parts.append(f"{len(waiting)} 封等待重发（最近错误：{waiting[-1].last_error[:80]}）")
    if failed:
        parts.append(f"近 7 天 {len(failed)} 封发送失败（最近：{failed[-1].occasion}：{failed[-1].last_error[:80]}）")
    hint = "；用 intake outbox 查看" + ("，SMTP 服务器可能不可用" if stuck else "")
    return Check("发送邮件", Level.ERROR if stuck else Level.WARN, "；".join(parts) + hint)


def check_disk(free_bytes: int, min_free_mb: int, data_dir: Path) -> Check:
    """Free space in the data dir: 错误 below the threshold, 警告 below twice it."""
    free_mb = free_bytes / 1_048_576
    text = f"数据目录 {data_dir} 所在磁盘剩余 {free_mb:,.0f} MB（下限 {min_free_mb:,} MB）"
    if free_mb < min_free_mb:
        return Check("磁盘空间", Level.ERROR, text + "：空间不足，收到的邮件可能无法保存")
    if free_mb < 2 * min_free_mb:
        return Check("磁盘空间", Level.WARN, text + "：即将不足")
    return Check("磁盘空间", Level.OK, text)


def check_holidays(gaps: list[int], today: date, lookahead_days: int, *, table: str, hold: str = "",
                   load_error: str = "") -> Check:  # fmt: skip
    """The working-day calendar must know today (错误) and the next `lookahead_days` days (警告)."""
    if load_error:
        return Check("节假日表", Level.ERROR, f"节假日表有错误，催报和日报暂停：{load_error}")
    if today.year in gaps:
        return Check("节假日表", Level.ERROR, f"节假日表和 chinesecalendar 都没有 {today.year} 年的安排，催报已暂停；"
                                              f"请在 {table} 中补充国务院办公厅公布的 {today.year} 年放假安排"
                                              + (f"（{hold}）" if hold else ""))  # fmt: skip
    if gaps:
        years = "、".join(str(y) for y in gaps)
        return Check("节假日表", Level.WARN, f"未来 {lookahead_days} 天内将用到 {years} 年，但节假日表没有该年安排；"
                                             f"到时催报会暂停，请及时在 {table} 中补充")  # fmt: skip
    if hold:
        return Check("节假日表", Level.WARN, f"上次催报被暂停：{hold}")
    return Check("节假日表", Level.OK, f"已覆盖未来 {lookahead_days} 天")


def check_data_files(ctx: Context) -> Check:
    """contacts.csv lines and mail templates: a bad one never stops intake, but reminders and receipts refuse."""
    from pipeline.campaign_data import load_campaign_data
    from pipeline.outbound.compose import check_templates

    try:
        problems = [*load_campaign_data(ctx).problems, *check_templates(ctx.config)]
    except ConfigError as err:  # the roster itself: nothing can be attributed
        return Check("数据文件", Level.ERROR, str(err))
    if problems:
        return Check("数据文件", Level.ERROR, f"{len(problems)} 处错误（收件不受影响，催报和回执暂停）：" + "；".join(problems))
    return Check("数据文件", Level.OK, "名单、联系人和邮件模板无误")


# ---------------------------------------------------------------- gathering


def newest_report(reports: Path) -> datetime | None:
    """Modification time (UTC) of the newest workbook in the reports folder."""
    times = [p.stat().st_mtime for p in reports.glob("*.xlsx") if p.is_file()]
    return datetime.fromtimestamp(max(times)).astimezone() if times else None


def gather(ctx: Context, *, max_age_minutes: float, now: datetime | None = None) -> HealthReport:
    """Run every check against the data dir of `ctx`."""
    cfg = ctx.config
    tz = cfg.campaign.timezone
    now = now or datetime.now(tz)
    with ctx.db.connect() as conn:
        success = fetch_state(conn, STATE_LAST_SUCCESS)
        error = fetch_state(conn, STATE_LAST_ERROR)
        hold = fetch_state(conn, STATE_REMINDER_HOLD)
        ledger = list(fetch_ledger(conn, statuses=(DeliveryState.FAILED, DeliveryState.RETRY)))
    last_success = datetime.fromisoformat(success.value) if success and success.value else None
    checks = [
        check_poll(last_success, error.value if error else "", now, max_age_minutes, tz),
        check_report(newest_report(ctx.data_dir / "reports"), now, cfg.health.report_max_age_hours, tz),
        check_smtp(ledger, now),
        check_disk(shutil.disk_usage(ctx.data_dir).free, cfg.health.min_free_mb, ctx.data_dir),
    ]
    checks.append(check_data_files(ctx))
    today = now.astimezone(tz).date()
    lookahead = cfg.health.holiday_lookahead_days
    table = str(cfg.campaign.holidays or "节假日表")
    hold_text = hold.value.partition(" ")[2] if hold and hold.value else ""
    try:
        gaps = load_calendar(cfg.campaign.holidays).gaps(today, lookahead)
    except ConfigError as err:
        checks.append(check_holidays([], today, lookahead, table=table, load_error=str(err)))
    else:
        checks.append(check_holidays(gaps, today, lookahead, table=table, hold=hold_text))
    return HealthReport(checks)
