"""The clerks' daily workbook, built with pandas and written with xlsxwriter.

Sheets: 汇总 (counts), 报送情况 (one row per roster row), 来信明细 (every relevant
message), 待人工核对 (the review queue).  Text from mail is written as text,
never as a formula: xlsxwriter's strings_to_formulas is off, and cells that
would start a formula are prefixed with an apostrophe-like guard.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

import pandas as pd

from pipeline import labels_zh
from pipeline.context import Context
from pipeline.domain.roster import DISTRICTS
from pipeline.domain.status import InstitutionStatus, count_by_status
from pipeline.labels_zh import label
from pipeline.outputs.audit import audit_frame
from pipeline.outputs.review import ReviewItem
from pipeline.outputs.senders import UnconfirmedSender, unconfirmed_senders
from pipeline.outputs.snapshot import CampaignSnapshot, build_snapshot
from pipeline.outputs.views import MessageView
from pipeline.vocab import (
    OPEN_DELIVERY_STATES,
    Channel,
    DeliveryState,
    Kind,
    MailKind,
    MessageKind,
    SenderTrust,
    Status,
)
from storage.private import create_private

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


@dataclass
class WorkbookExtras:
    """Columns and sheets that later stages add (reminders, audit), keyed by roster name."""

    status_columns: dict[str, dict[str, object]] = field(default_factory=dict)  # column -> {institution: value}
    sheets: dict[str, pd.DataFrame] = field(default_factory=dict)


def standard_extras(snapshot: CampaignSnapshot, tz: tzinfo) -> WorkbookExtras:
    """The reminder columns of 报送情况 and the 操作记录 (audit) sheet."""
    return WorkbookExtras(status_columns=reminder_columns(snapshot, tz),
                          sheets={"操作记录": audit_frame(list(snapshot.audit), tz)})  # fmt: skip


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
                moment = row.sent_at.astimezone(tz).replace(tzinfo=None)
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


def default_report_path(ctx: Context, as_of: datetime) -> Path:
    local = as_of.astimezone(ctx.config.campaign.timezone)
    return ctx.data_dir / "reports" / f"自查报告报送情况_{local:%Y%m%d_%H%M}.xlsx"


def build_workbook(ctx: Context, as_of: datetime, out: Path | None = None, extras: WorkbookExtras | None = None,
                   *, snapshot: CampaignSnapshot | None = None) -> Path:  # fmt: skip
    """Write the workbook of the campaign as of `as_of` (every sheet from one snapshot) and return its path."""
    snapshot = snapshot or build_snapshot(ctx, as_of)
    tz = ctx.config.campaign.timezone
    extras = extras or standard_extras(snapshot, tz)
    rows = list(snapshot.statuses)
    queue = list(snapshot.review_items)
    out = out or default_report_path(ctx, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = {
        "汇总": summary_frame(ctx, rows, queue, as_of),
        "报送情况": status_frame(ctx, rows, extras),
        "来信明细": messages_frame(list(snapshot.messages), tz, as_of),
        "待人工核对": review_frame(queue, tz),
        "发件人待确认": unconfirmed_frame(unconfirmed_senders(snapshot), tz),
        **extras.sheets,
    }
    tmp = create_private(out.with_name(out.name + ".tmp"))  # 0600 whatever the umask: mail-derived data
    with pd.ExcelWriter(tmp, engine="xlsxwriter",
                        engine_kwargs={"options": {"strings_to_formulas": False, "strings_to_urls": False}}) as writer:  # fmt: skip
        for name, frame in frames.items():
            write_sheet(writer, name, frame)
    tmp.replace(out)
    return out


def _local(moment: datetime | None, tz) -> datetime | None:  # noqa: ANN001
    # Excel has no time zones: write the campaign's local wall-clock time as a real date.
    return moment.astimezone(tz).replace(tzinfo=None) if moment else None


_GROUP_ORDER = {name: n for n, name in enumerate((*DISTRICTS, *labels_zh.CHANNEL.values()))}


def summary_frame(ctx: Context, rows: list[InstitutionStatus], queue: list[ReviewItem], as_of: datetime) -> pd.DataFrame:
    """Key facts, then counts by status per district and per channel, each block with its own header row."""
    tz = ctx.config.campaign.timezone
    counts = count_by_status(rows)
    statuses = list(labels_zh.STATUS.values())
    table: list[list[object]] = [
        ["专项", ctx.config.campaign.name],
        ["截止时间", _local(ctx.config.campaign.deadline, tz)],
        ["统计时点", _local(as_of, tz)],
        ["生成时间", _local(datetime.now(tz), tz)],
        ["名单机构数", len(rows)],
        *([f"状态：{label(s, Status)}", n] for s, n in counts.items()),
        ["待人工核对条目", len(queue)],
    ]
    for title, key in (("区", lambda r: r.institution.district or "（无区）"),
                       ("报送渠道", lambda r: label(r.institution.channel, Channel))):  # fmt: skip
        per_group: dict[str, dict[str, int]] = {}
        for r in rows:
            per_group.setdefault(key(r), dict.fromkeys(statuses, 0))[label(r.status, Status)] += 1
        table += [[], [f"按{title}统计"], [title, *statuses, "合计"]]
        ordered = sorted(per_group.items(), key=lambda kv: _GROUP_ORDER.get(kv[0], len(_GROUP_ORDER)))
        table += [[group, *counts_.values(), sum(counts_.values())] for group, counts_ in ordered]
    width = max(len(line) for line in table)
    columns = ["项目", "数值", *(" " * n for n in range(1, width - 1))]
    return pd.DataFrame([line + [""] * (width - len(line)) for line in table], columns=columns)


def status_frame(ctx: Context, rows: list[InstitutionStatus], extras: WorkbookExtras) -> pd.DataFrame:
    tz = ctx.config.campaign.timezone
    complete = ctx.config.campaign.rules.complete_label  # the template's sections, from [campaign] sections
    records = []
    for r in rows:
        inst = r.institution
        latest_sections = r.last.sections if r.last else {}
        records.append(
            {
                "序号": inst.row,
                "机构": inst.name,
                "区": inst.district,
                "报送渠道": label(inst.channel, Channel),
                "状态": label(r.status, Status),
                "首次收到": _local(r.first_received_at, tz),
                "最近收到": _local(r.last_received_at, tz),
                "报送次数": len(r.submissions),
                "发件人": "；".join(dict.fromkeys(s.sender for s in r.submissions)),
                "发件人核实": label(r.sender_trust, SenderTrust) if r.sender_trust else "",
                "附件": "；".join(dict.fromkeys(name for s in r.submissions for name in s.filenames)),
                complete: ("是" if latest_sections and all(latest_sections.values()) else "否") if r.last else "",
                "经哪个区卫健局": "；".join(dict.fromkeys(s.via_bureau for s in r.submissions if s.via_bureau)),
                "需人工核对": "是" if r.needs_review else "",
                "核对原因": "；".join(r.review_reasons) or r.exempt_reason,
            }
        )
    frame = pd.DataFrame(records)
    for column, values in extras.status_columns.items():
        frame[column] = pd.Series([values.get(r.institution.name, "") for r in rows], index=frame.index, dtype=object)
    return frame


def messages_frame(views: list[MessageView], tz, as_of: datetime) -> pd.DataFrame:  # noqa: ANN001
    records = []
    for v in views:
        m = v.message
        if v.kind == Kind.UNRELATED or (m.received_at and m.received_at > as_of):
            continue
        reasons = "；".join(dict.fromkeys(d.reason for d in v.decisions if d.reason))
        records.append(
            {
                "编号": m.id,
                "收到时间": _local(m.received_at, tz),
                "发件人": f"{m.sender_name} <{m.sender_address}>" if m.sender_name else m.sender_address,
                "主题": m.subject,
                "类型": label(v.kind, MessageKind),
                "归属机构": "；".join(v.institutions),
                "说明": reasons or m.parse_error,
            }
        )
    return pd.DataFrame(records, columns=["编号", "收到时间", "发件人", "主题", "类型", "归属机构", "说明"])


def unconfirmed_frame(found: list[UnconfirmedSender], tz) -> pd.DataFrame:  # noqa: ANN001
    """发件人待确认: counted reports from senders no clerk has confirmed (their own list)."""
    columns = ["邮件编号", "收到时间", "发件地址", "计入机构", "文件", "是否当前版本", "处理方法"]
    records = [
        [u.item, _local(u.received_at, tz), u.sender, "；".join(u.institutions), "；".join(u.filenames),
         "是" if u.current else "否", f"确认：intake confirm {u.item}；不是该机构发的：intake confirm {u.item} --reject"]
        for u in found
    ]  # fmt: skip
    return pd.DataFrame(records, columns=columns)


def review_frame(queue: list[ReviewItem], tz) -> pd.DataFrame:  # noqa: ANN001
    records = [
        {
            "条目": q.item,
            "收到时间": _local(q.received_at, tz),
            "发件人": q.sender,
            "主题": q.subject,
            "附件": q.filename,
            "原因": q.reason,
            "建议机构": q.suggestion,
            "已计入报送": "是" if q.counted else "否",
        }
        for q in queue
    ]
    return pd.DataFrame(records, columns=["条目", "收到时间", "发件人", "主题", "附件", "原因", "建议机构", "已计入报送"])


def write_sheet(writer: pd.ExcelWriter, name: str, frame: pd.DataFrame) -> None:
    frame = frame.map(safe_text) if not frame.empty else frame
    frame.to_excel(writer, sheet_name=name, index=False)
    book = writer.book
    sheet = writer.sheets[name]
    date_format = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    header_format = book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True})
    for col, column in enumerate(frame.columns):
        sheet.write(0, col, str(column), header_format)
        series = frame[column]
        is_date = pd.api.types.is_datetime64_any_dtype(series)
        width = 18 if is_date else _width(series, str(column))
        sheet.set_column(col, col, width, date_format if is_date else None)
    sheet.freeze_panes(1, 0)
    if len(frame.columns):
        sheet.autofilter(0, 0, max(len(frame), 1), len(frame.columns) - 1)
    if "状态" in frame.columns and len(frame):
        status_col = list(frame.columns).index("状态")
        for label, colour in STATUS_COLOURS.items():
            fmt = book.add_format({"bg_color": colour})
            sheet.conditional_format(1, status_col, len(frame), status_col,
                                     {"type": "cell", "criteria": "==", "value": f'"{label}"', "format": fmt})  # fmt: skip


def _width(series: pd.Series, header: str) -> int:
    def display(text: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)

    longest = max([display(str(v)) for v in series.head(500)] + [display(header)], default=8)
    return max(8, min(60, longest + 2))

