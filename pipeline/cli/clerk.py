"""The clerks' commands: review, assign, reprocess, exempt, export-reports, audit.

Each command parses its options, calls one library function and prints the
result in Chinese.  Errors become a clean message and exit code 2 (here, not
only in `main`, so the commands behave the same when called from tests); a
database that stays busy while the worker writes is reported, not a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import (
    ConfigOpt,
    DataDirOpt,
    ExcelOpt,
    FormatOpt,
    OutputFormat,
    app,
    console,
    emit,
    emit_excel,
    err_console,
    escape,
    iso,
    local,
    opened,
)
from pipeline.errors import IntakeError

if TYPE_CHECKING:
    from pipeline.clerk.reprocess import Verdict

REVIEW_COLUMNS = ("item", "message_id", "received_at", "sender", "subject", "reason", "suggestion")
ByOpt = Annotated[str | None, typer.Option("--by", help="操作人姓名，记入操作记录。默认取当前系统用户名。")]


def json_text(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


@contextmanager
def _clerk_errors() -> Iterator[None]:
    """While a clerk's command runs, say so when the database is busy and the command is retrying."""
    import logging  # here, not at import: `intake --help` never logs

    class _BusyNotice(logging.Handler):
        """Turns storage.db's "database busy, retrying" log line into a message the clerk can read."""

        def emit(self, record: logging.LogRecord) -> None:
            if "busy" in record.getMessage():
                err_console.print("[yellow]数据库忙（后台程序正在写入），正在重试…[/yellow]")

    handler = _BusyNotice(level=logging.WARNING)
    db_log = logging.getLogger("storage.db")
    db_log.addHandler(handler)
    try:
        yield
    finally:
        db_log.removeHandler(handler)


@app.command()
def review(
    fmt: FormatOpt = OutputFormat.table,
    excel: ExcelOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """待人工核对的条目：认不出机构、证据冲突、附件无法读取、陌生发件人等，附原因、证据和建议。"""
    from pipeline.outputs.snapshot import build_snapshot
    with _clerk_errors(), opened(config, data_dir, read_only=True) as ctx:
        cfg = ctx.config
        queue = build_snapshot(ctx, datetime.now(cfg.campaign.timezone)).review_items
    table = fmt is OutputFormat.table
    rows = [
        {
            "item": q.item,
            "message_id": q.message_id,
            "received_at": local(q.received_at, cfg) if table else iso(q.received_at, cfg),
            "sender": q.sender,
            "subject": (q.subject + (f"\n附件：{q.filename}" if q.filename else "")) if table else q.subject,
            "reason": q.reason + ("（已计入报送）" if q.counted and table else ""),
            "suggestion": q.suggestion,
            "filename": q.filename,
            "evidence": _evidence_text(q.evidence) if table else list(q.evidence),
            "counted": q.counted,
        }
        for q in queue
    ]
    if excel:
        for row, q in zip(rows, queue, strict=True):
            row.update(received_at=local(q.received_at, cfg), subject=q.subject, counted="是" if q.counted else "否",
                       reason=q.reason)  # fmt: skip
        emit_excel(rows, (*REVIEW_COLUMNS, "filename", "counted"),
                   ("条目", "邮件编号", "收到时间", "发件人", "主题", "原因", "建议机构", "附件", "已计入报送"))  # fmt: skip
        return
    if fmt is OutputFormat.csv:
        emit(rows, REVIEW_COLUMNS, fmt)
        return
    if fmt is OutputFormat.json:
        emit(rows, (*REVIEW_COLUMNS, "filename", "evidence", "counted"), fmt)
        return
    emit(rows, ("item", "received_at", "sender", "subject", "reason", "suggestion", "evidence"), fmt,
         title=f"待人工核对（{len(rows)} 条）",
         headers=("编号", "收到时间", "发件人", "主题/附件", "原因", "建议机构", "证据"))  # fmt: skip
    if rows:
        console.print("处理方法：intake assign 编号 机构（名称、别名或序号）；不是报告：intake assign 编号 --unrelated；"
                      "查看原信：intake show 邮件编号")  # fmt: skip
    else:
        console.print("没有待核对的条目。")


def _evidence_text(evidence: tuple[dict, ...]) -> str:
    ranked = sorted(
        (e for e in evidence if isinstance(e, dict)), key=lambda e: -float(e.get("weight", 0) or 0)
    )
    return "；".join(f"{e.get('signal', '')}→{e.get('institution', '')}" for e in ranked[:4])


@app.command()
def assign(
    item: Annotated[str, typer.Argument(help="条目编号（intake review 第一列），如 12 或 12:2/1。")],
    institution: Annotated[str | None, typer.Argument(help="机构：名单上的名称、别名或序号。")] = None,
    note: Annotated[str, typer.Option("--note", help="说明（记入操作记录）。")] = "",
    by: ByOpt = None,
    unrelated: Annotated[bool, typer.Option("--unrelated", help="标为无关（不是本次自查报告）。")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="撤销对该条目的人工判断，恢复自动判断。")] = False,
    learn: Annotated[bool, typer.Option("--learn/--no-learn", hidden=True, help="已停用：记住地址请用 intake confirm。")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """人工归属一个条目到机构；或 --unrelated 标为无关；或 --undo 撤销。人工判断优先于自动判断，重新处理后仍保留。"""
    from pipeline.clerk.assign import assign as assign_item
    from pipeline.vocab import Action
    if (unrelated or undo) and institution:
        err_console.print("[red]错误：[/red]使用 --unrelated 或 --undo 时不要再写机构。")
        raise typer.Exit(2)
    with _clerk_errors(), opened(config, data_dir) as ctx:
        result = assign_item(ctx, item, institution or "", by=by, note=note, unrelated=unrelated, undo=undo)
    if result.action == Action.UNDO:
        console.print(f"已撤销条目 {result.item} 的人工判断。现在：{escape(result.after or '无判断')}")
    elif result.action == Action.MARK_UNRELATED:
        console.print(f"已将条目 {result.item} 标为无关（原：{escape(result.before or '无判断')}）。")
    else:
        console.print(
            f"已将条目 {result.item} 归属到 {escape(result.institution)}（原：{escape(result.before or '无判断')}）。"
        )
    if learn or result.action == Action.ASSIGN:
        console.print(f"归属不会记住发件地址；确认发件人并记住地址：intake confirm {result.message_id}")
    if result.status_changes:
        console.print(f"操作记录新增状态变化 {result.status_changes} 条（见 intake audit）。")


@app.command()
def reprocess(
    ids: Annotated[list[str] | None, typer.Argument(help="条目或邮件编号（可多个）。")] = None,
    all_: Annotated[bool, typer.Option("--all", help="重新处理全部邮件。")] = False,
    needs_review: Annotated[bool, typer.Option("--needs-review", help="重新处理待核对的邮件。")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="重新处理此时刻以后收到的邮件，ISO 8601。")
    ] = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """用当前的程序、名单和配置重新解析、识别、归属，列出归属和状态的变化。人工判断保留。"""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pipeline.clerk.reprocess import Selection, select_messages
    from pipeline.clerk.reprocess import reprocess as reprocess_messages
    with _clerk_errors(), opened(config, data_dir) as ctx:
        cfg = ctx.config
        selection = Selection(
            tuple(ids or ()), all_, needs_review, _parse_since(since, cfg.campaign.timezone)
        )
        total = len(select_messages(ctx, selection))
        with Progress(TextColumn("重新处理"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console.real, transient=True) as progress:  # fmt: skip
            task = progress.add_task("reprocess", total=total)
            summary = reprocess_messages(ctx, selection, by=by,
                                         on_progress=lambda done, _total: progress.update(task, completed=done))  # fmt: skip
    console.print(f"重新处理 {summary.processed}/{summary.selected} 封邮件。")
    for message_id, reason in summary.failed:
        console.print(f"[yellow]失败[/yellow] 邮件 {message_id}：{escape(reason)}")
    if summary.attribution_changes:
        lines = _diff_lines(summary.attribution_changes)
        console.print(f"[bold]归属变化（{len(lines)} 封邮件）[/bold]")
        for line in lines:
            console.print("  " + escape(line))
    else:
        console.print("归属没有变化。")
    if summary.status_changes:
        console.print(f"[bold]状态变化（{len(summary.status_changes)} 家）[/bold]")
        for s in summary.status_changes:
            console.print(f"  {s.row:02d} {escape(s.institution)}：{_status(s.before)} → {_status(s.after)}")
    else:
        console.print("状态没有变化。")
    for item in summary.orphaned_manual:
        console.print(f"[yellow]注意[/yellow] 人工判断 {escape(str(item))} 所指的附件在重新解析后已不存在，请重新核对。")


def _parse_since(value: str | None, tz) -> datetime | None:  # noqa: ANN001
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise IntakeError(
            f"--since 时间格式不对：{value!r}（例：2024-07-10 或 2024-07-10T08:00:00+08:00）"
        ) from err
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)




def _diff_lines(changes: list) -> list[str]:
    """One line per message: "18：正文 报告 X → 整封 无关" (items that had or have a decision)."""
    by_message: dict[int, list] = {}
    for change in changes:
        by_message.setdefault(change.message_id, []).append(change)
    lines = []
    for message_id, group in by_message.items():
        before = "；".join(
            f"{_item_label(c.item_path)} {_decision_label(c.before)}" for c in group if c.before
        )
        after = "；".join(f"{_item_label(c.item_path)} {_decision_label(c.after)}" for c in group if c.after)
        lines.append(f"{message_id}：{before or '（无判断）'} → {after or '（无判断）'}")
    return lines


def _item_label(path: str) -> str:
    from pipeline.labels_zh import label
    from pipeline.vocab import ItemPath
    return label(path, ItemPath) if path in tuple(ItemPath) else f"附件{path}"


def _decision_label(verdicts: tuple[Verdict, ...]) -> str:
    """(Verdict(REPORT, "X", manual=True), Verdict(NEEDS_REVIEW)) -> "人工 自查报告 X；待人工核对"."""
    from pipeline.labels_zh import label
    if not verdicts:
        return "（无）"
    return "；".join(
        ("人工 " if v.manual else "") + label(v.kind) + (f" {v.institution}" if v.institution else "") for v in verdicts
    )


def _status(code: str) -> str:
    from pipeline.labels_zh import label
    from pipeline.vocab import Status
    return label(code, Status) if code else "（无）"


@app.command()
def exempt(
    institution: Annotated[str, typer.Argument(help="机构：名单上的名称、别名或序号。")],
    reason: Annotated[str, typer.Option("--reason", help="免报原因（必填，撤销时可写撤销原因）。")] = "",
    undo: Annotated[bool, typer.Option("--undo", help="取消免报。")] = False,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """设某机构为免报（写明原因），或 --undo 取消。免报机构在状态、报表和提醒中都显示为免报。"""
    from pipeline.clerk.assign import exempt as exempt_institution
    with _clerk_errors(), opened(config, data_dir) as ctx:
        result = exempt_institution(ctx, institution, reason, by=by, undo=undo)
    if undo:
        console.print(
            f"已取消 {escape(result.institution)} 的免报（原原因：{escape(result.previous_reason)}）。"
        )
    else:
        console.print(f"已将 {escape(result.institution)} 设为免报：{escape(reason.strip())}")


@app.command("export-reports")
def export_reports_command(
    to: Annotated[
        Path | None, typer.Option("--to", help="导出到此文件夹。默认在数据目录 reports/ 下按时间新建。")
    ] = None,
    institution: Annotated[
        str | None, typer.Option("--institution", help="只导出这家机构（名称、别名或序号）。")
    ] = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """把各机构当前版本的报告文件复制到一个文件夹，文件名为「序号_机构_收到日期」，另附清单 Excel。"""
    from pipeline.outputs.export import export_reports
    with _clerk_errors(), opened(config, data_dir) as ctx:
        tz = ctx.config.campaign.timezone
        folder = to or ctx.data_dir / "reports" / f"报告文件_{datetime.now(tz):%Y%m%d_%H%M%S}"
        summary = export_reports(ctx, folder, institution, by=by)
    console.print(f"已导出 {len(summary.files)} 个报告文件到 {escape(str(summary.folder))}")
    console.print(f"清单：{escape(str(summary.index))}")
    if summary.without_report:
        console.print(f"没有报告可导出的机构 {len(summary.without_report)} 家（见清单）。")
    for problem in summary.problems:
        console.print(f"[yellow]注意[/yellow] {escape(problem)}")


@app.command()
def audit(
    institution: Annotated[
        str | None, typer.Option("--institution", help="只看这家机构（名称、别名或序号）。")
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """操作记录：每次人工操作（谁、何时、做了什么、为什么）和每次状态自动变化。"""
    from pipeline.domain.roster import load_roster, resolve_institution
    from pipeline.labels_zh import label
    from pipeline.outputs.audit import AUDIT_COLUMNS, AUDIT_HEADERS, actor_label, audit_records, fetch_trail
    from pipeline.vocab import Action
    with _clerk_errors(), opened(config, data_dir, read_only=True) as ctx:
        cfg = ctx.config
        roster = load_roster(cfg.campaign)
        names = list(roster.group(resolve_institution(roster, institution))) if institution else None
        records = audit_records(fetch_trail(ctx, institutions=names))
    table = fmt is OutputFormat.table
    rows = [
        {
            **r,
            "at": local(r["at"], cfg) if table else iso(r["at"], cfg),
            "actor": actor_label(r["actor"]) if table else r["actor"],
            "action": label(r["action"], Action) if table else r["action"],
            "details": json_text(r["details"])
            if fmt is OutputFormat.csv
            else r["details"],
        }
        for r in records
    ]
    columns = AUDIT_COLUMNS if table else (*AUDIT_COLUMNS, "details")
    emit(rows, columns, fmt, title=f"操作记录（{len(rows)} 条）", headers=AUDIT_HEADERS if table else None)
