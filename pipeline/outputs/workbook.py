"""The clerks' daily workbook, read from ONE `CampaignSnapshot` and written with xlsxwriter (no pandas).

Sheets: 汇总 (facts, 上报率 and 及时率 overall / by district / by channel, a chart of arrivals
against the deadline; one printed page), 未报送名单 (overdue and pending units with who to phone),
报送情况 (one row per roster row, with reminders sent), 来信明细 (every relevant message),
待人工核对 (the review queue), 操作记录 (the audit trail).  Every sheet prints landscape A4, one
page wide, header row repeated, campaign name and page numbers in header and footer
(`pipeline.outputs.sheets`).  Text from mail is written as text, never as a formula.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.context import Context
from pipeline.domain.status import InstitutionStatus
from pipeline.labels_zh import label
from pipeline.outputs.audit import AUDIT_HEADERS, actor_label, audit_records
from pipeline.outputs.outstanding import outstanding_table
from pipeline.outputs.review import ReviewItem
from pipeline.outputs.senders import UnconfirmedSender, unconfirmed_senders
from pipeline.outputs.sheets import (
    STATUS_COLOURS,
    Formats,
    Table,
    excel_time,
    looks_like_formula,
    safe_text,
    write_table,
)
from pipeline.outputs.snapshot import CampaignSnapshot, build_snapshot
from pipeline.outputs.summary import write_summary
from pipeline.outputs.views import MessageView
from pipeline.vocab import (
    OPEN_DELIVERY_STATES,
    Action,
    Channel,
    DeliveryState,
    Kind,
    MailKind,
    MessageKind,
    SenderTrust,
    Status,
)
from storage.private import create_private

__all__ = ["STATUS_COLOURS", "WorkbookExtras", "build_workbook", "looks_like_formula", "safe_text", "write_sheet"]


@dataclass
class WorkbookExtras:
    """Columns and sheets that later stages add (reminders, audit), keyed by roster name.

    A sheet is a `Table` or a pandas DataFrame (converted without importing pandas here).
    """

    status_columns: dict[str, dict[str, object]] = field(default_factory=dict)  # column -> {institution: value}
    sheets: dict[str, Any] = field(default_factory=dict)


def standard_extras(snapshot: CampaignSnapshot, tz: tzinfo) -> WorkbookExtras:
    """The reminder columns of 报送情况 and the 操作记录 (audit) sheet."""
    return WorkbookExtras(status_columns=reminder_columns(snapshot, tz), sheets={"操作记录": audit_table(snapshot, tz)})


def audit_table(snapshot: CampaignSnapshot, tz: tzinfo) -> Table:
    rows = [
        [excel_time(r["at"], tz), actor_label(r["actor"]), label(r["action"], Action), r["target"], r["institution"],
         r["description"], r["reason"]]
        for r in audit_records(list(snapshot.audit))
    ]  # fmt: skip
    return Table("操作记录", list(AUDIT_HEADERS), rows, widths={"内容": 48, "原因/备注": 30})


def reminder_columns(snapshot: CampaignSnapshot, tz: tzinfo) -> dict[str, dict[str, object]]:
    """Columns for the 报送情况 sheet, keyed by roster name: reminders sent, last one, mail problems."""
    counts: dict[str, int] = defaultdict(int)
    last: dict[str, datetime] = {}
    problems: dict[str, list[str]] = defaultdict(list)
    for row in snapshot.ledger:
        kind = label(row.kind, MailKind)
        for name in row.institutions:
            if row.kind == MailKind.REMINDER and row.status == DeliveryState.SENT and row.sent_at is not None:
                counts[name] += 1
                moment = row.sent_at.astimezone(tz).replace(tzinfo=None, microsecond=0)
                last[name] = max(last.get(name, moment), moment)
            if row.status == DeliveryState.FAILED:
                problems[name].append(f"{kind}发送失败：{row.last_error[:80]}")
            elif row.status in OPEN_DELIVERY_STATES and row.attempts:
                problems[name].append(f"{kind}待重发：{row.last_error[:80]}")
            problems[name].extend(line for line in row.note.split("\n") if line.startswith("退信"))
    names = [inst.name for inst in snapshot.roster]
    return {
        "已发催报次数": {n: counts.get(n, 0) for n in names},
        "最近催报时间": {n: last[n] for n in names if n in last},
        "邮件发送问题": {n: "；".join(dict.fromkeys(problems[n])) for n in names if problems.get(n)},
    }


def default_report_path(ctx: Context, as_of: datetime) -> Path:
    local = as_of.astimezone(ctx.config.campaign.timezone)
    return ctx.data_dir / "reports" / f"自查报告报送情况_{local:%Y%m%d_%H%M}.xlsx"


def build_workbook(ctx: Context, as_of: datetime, out: Path | None = None, extras: WorkbookExtras | None = None,
                   *, snapshot: CampaignSnapshot | None = None) -> Path:  # fmt: skip
    """Write the workbook of the campaign as of `as_of` and return its path.

    Every sheet is drawn from one snapshot (built here when not given); the config gives only the
    campaign's name, time zone and template label.
    """
    snapshot = snapshot or build_snapshot(ctx, as_of)
    out = out or default_report_path(ctx, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_private(out.with_name(out.name + ".tmp"))  # 0600 whatever the umask: mail-derived data
    write_workbook(tmp, snapshot, ctx.config, extras)
    tmp.replace(out)
    return out


def write_workbook(path: Path, snapshot: CampaignSnapshot, config: Config, extras: WorkbookExtras | None = None,
                   *, generated_at: datetime | None = None) -> None:  # fmt: skip
    """Write every sheet of `snapshot` to `path` (xlsx)."""
    import xlsxwriter  # the spreadsheet stack only for the commands that write one

    tz = config.campaign.timezone
    campaign = config.campaign.name
    extras = extras or standard_extras(snapshot, tz)
    rows = list(snapshot.statuses)
    queue = list(snapshot.review_items)
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                           "strings_to_numbers": False})  # fmt: skip
    try:
        formats = Formats(book)
        write_chart_data = write_summary(book, snapshot, formats, campaign=campaign, tz=tz, review_count=len(queue),
                                         generated_at=generated_at or datetime.now(tz))  # fmt: skip
        tables = [
            outstanding_table(snapshot, tz, extras.status_columns.get("已发催报次数", {})),
            status_table(rows, tz, config.campaign.rules.complete_label, extras),
            messages_table(list(snapshot.messages), tz, snapshot.as_of),
            review_table(queue, tz),
            unconfirmed_table(unconfirmed_senders(snapshot), tz),
            *(t if isinstance(t, Table) else Table.from_frame(name, t) for name, t in extras.sheets.items()),
        ]
        for table in tables:
            write_table(book, table, formats, campaign=campaign)
        write_chart_data()
        book.worksheets()[0].activate()
    finally:
        book.close()


def write_sheet(writer: Any, name: str, frame: Any, *, campaign: str = "") -> None:
    """Write a pandas DataFrame as a printable sheet into a pandas ExcelWriter (xlsxwriter engine)."""
    write_table(writer.book, Table.from_frame(name, frame), Formats(writer.book), campaign=campaign)


def status_table(rows: list[InstitutionStatus], tz: tzinfo, complete: str, extras: WorkbookExtras) -> Table:
    """报送情况: one row per roster row, in roster order."""
    columns = ["序号", "机构", "区", "报送渠道", "状态", "首次收到", "最近收到", "报送次数", "发件人", "发件人核实", "附件", complete,
               "经哪个区卫健局", "需人工核对", "核对原因", *extras.status_columns]  # fmt: skip
    table = Table("报送情况", columns, widths={"发件人": 30, "附件": 36, "核对原因": 36, "邮件发送问题": 30})
    for r in rows:
        inst = r.institution
        sections = r.last.sections if r.last else {}
        table.rows.append([
            inst.row, inst.name, inst.district, label(inst.channel, Channel), label(r.status, Status),
            excel_time(r.first_received_at, tz), excel_time(r.last_received_at, tz), len(r.submissions),
            "；".join(dict.fromkeys(s.sender for s in r.submissions)),
            label(r.sender_trust, SenderTrust) if r.sender_trust else "",
            "；".join(dict.fromkeys(name for s in r.submissions for name in s.filenames)),
            ("是" if sections and all(sections.values()) else "否") if r.last else "",
            "；".join(dict.fromkeys(s.via_bureau for s in r.submissions if s.via_bureau)),
            "是" if r.needs_review else "",
            "；".join(r.review_reasons) or r.exempt_reason,
            *(values.get(inst.name, "") for values in extras.status_columns.values()),
        ])  # fmt: skip
    return table


def messages_table(views: list[MessageView], tz: tzinfo, as_of: datetime) -> Table:
    """来信明细: every message except the unrelated ones, in receipt order."""
    table = Table("来信明细", ["编号", "收到时间", "发件人", "主题", "类型", "归属机构", "说明"],
                  widths={"发件人": 34, "主题": 44, "归属机构": 30, "说明": 40})  # fmt: skip
    for v in views:
        m = v.message
        if v.kind == Kind.UNRELATED or (m.received_at and m.received_at > as_of):
            continue
        reasons = "；".join(dict.fromkeys(d.reason for d in v.decisions if d.reason))
        table.rows.append([
            m.id, excel_time(m.received_at, tz),
            f"{m.sender_name} <{m.sender_address}>" if m.sender_name else m.sender_address,
            m.subject, label(v.kind, MessageKind), "；".join(v.institutions), reasons or m.parse_error,
        ])  # fmt: skip
    return table


def unconfirmed_table(found: list[UnconfirmedSender], tz: tzinfo) -> Table:
    """发件人待确认: counted reports from senders no clerk has confirmed (their own list, not the review queue)."""
    table = Table("发件人待确认", ["邮件编号", "收到时间", "发件地址", "计入机构", "文件", "是否当前版本", "处理方法"],
                  widths={"发件地址": 30, "计入机构": 30, "文件": 30, "处理方法": 50})  # fmt: skip
    for u in found:
        table.rows.append([u.item, excel_time(u.received_at, tz), u.sender, "；".join(u.institutions), "；".join(u.filenames),
                           "是" if u.current else "否",
                           f"确认：intake confirm {u.item}；不是该机构发的：intake confirm {u.item} --reject"])  # fmt: skip
    return table


def review_table(queue: list[ReviewItem], tz: tzinfo) -> Table:
    """待人工核对: the review queue."""
    table = Table("待人工核对", ["条目", "收到时间", "发件人", "主题", "附件", "原因", "建议机构", "已计入报送"],
                  widths={"发件人": 30, "主题": 40, "附件": 30, "原因": 40})  # fmt: skip
    for q in queue:
        table.rows.append([q.item, excel_time(q.received_at, tz), q.sender, q.subject, q.filename, q.reason,
                           q.suggestion, "是" if q.counted else "否"])  # fmt: skip
    return table
