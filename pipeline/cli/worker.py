"""Commands of the mailbox worker: poll (one pass), run (the scheduler), health (for monitoring)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.cli.app import ConfigOpt, DataDirOpt, app, console, err_console, load, opened
from pipeline.cli.clean import shown
from pipeline.context import open_context
from pipeline.health import gather
from pipeline.inbound.imap import PollSummary, poll_once
from pipeline.worker import run_worker
from storage.imapstate import fetch_failures


@app.command("poll")
def poll_command(config: ConfigOpt = Path("config.toml"), data_dir: DataDirOpt = None) -> None:
    """收取一次邮箱（只读，不改变已读状态），显示每个文件夹的新邮件、重复、失败与超大邮件数。"""
    with opened(config, data_dir) as ctx:
        summary = poll_once(ctx)
        with ctx.db.connect() as conn:
            failures = fetch_failures(conn)
    _print_summary(summary)
    if failures:
        table = Table(
            title="未能收取的邮件（已记录，下次收取时重试；超大邮件需人工处理）", header_style="bold"
        )
        for header in ("文件夹", "UIDVALIDITY", "UID", "大小（字节）", "尝试次数", "原因"):
            table.add_column(header, overflow="fold")
        for f in failures:
            size = f"{f.size:,}" if f.size is not None else "—"
            table.add_row(shown(f.folder), str(f.uidvalidity or "—"), str(f.uid), size, str(f.attempts), shown(f.reason))
        console.print(table)
    if not summary.ok:
        raise typer.Exit(1)


def _print_summary(summary: PollSummary) -> None:
    table = Table(title="邮箱收取结果", header_style="bold")
    for header in ("文件夹", "UIDVALIDITY", "新邮件", "重复", "失败", "超大", "已补收", "最后 UID", "备注"):
        table.add_column(header, overflow="fold", no_wrap=header != "备注")
    for f in summary.folders:
        note = f.error or ("首次同步 / 重新扫描" if f.rescanned else "")
        if not f.done and not f.error:
            note = "未完成（已中断，下次从断点继续）"
        table.add_row(shown(f.folder), str(f.uidvalidity or "—"), str(f.new), str(f.duplicates), str(f.failed),
                      str(f.oversize), str(f.recovered), str(f.last_uid), shown(note))  # fmt: skip
    console.print(table)
    if summary.reconnects:
        console.print(f"期间重新连接 {summary.reconnects} 次。")


@app.command("run")
def run_command(config: ConfigOpt = Path("config.toml"), data_dir: DataDirOpt = None) -> None:
    """长期运行的 worker：按 [schedule] 定时收取邮件、生成每日报表、发送提醒。SIGTERM / Ctrl-C 安全退出。"""
    cfg = load(config, data_dir)
    root = logging.getLogger()
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)  # a service's log is its record: always at least INFO
    run_worker(lambda: open_context(cfg), cfg)


@app.command("health")
def health_command(
    max_age: Annotated[
        float | None,
        typer.Option("--max-age", help="允许距上次成功收取的最长分钟数，默认 3 × poll_minutes。"),
    ] = None,
    config: ConfigOpt = Path("config.toml"),
    data_dir: DataDirOpt = None,
) -> None:
    """检查运行状况（收取邮件、每日报表、发信、磁盘空间、节假日表），每项一行 OK/警告/错误；有错误则退出码 1（供监控使用）。"""
    with opened(config, data_dir) as ctx:
        limit = max_age if max_age is not None else 3 * ctx.config.schedule.poll_minutes
        report = gather(ctx, max_age_minutes=limit)
    for check in report.checks:
        console.print(escape(check.line), highlight=False, soft_wrap=True)  # one line each, for monitors
    if not report.ok:
        errors = sum(c.level == "错误" for c in report.checks)
        err_console.print(f"[red]异常：[/red]{errors} 项错误")
        raise typer.Exit(1)
