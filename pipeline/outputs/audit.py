"""The audit trail as the clerks read it: one Chinese line per entry, as records or as the 操作记录 sheet."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import TYPE_CHECKING

from pipeline.context import Context
from pipeline.labels_zh import label
from pipeline.outputs.sheets import excel_time
from pipeline.vocab import Action, Status
from storage.audit import SYSTEM_ACTOR, AuditRow, fetch_audit

if TYPE_CHECKING:
    import pandas as pd

AUDIT_COLUMNS = ("at", "actor", "action", "target", "institution", "description", "reason")
AUDIT_HEADERS = ("时间", "操作人", "操作", "对象", "机构", "内容", "原因/备注")


def describe(row: AuditRow) -> str:
    """One line of Chinese saying what the entry did."""
    d = row.details
    if row.action == Action.STATUS_CHANGE:
        return f"{_status(d.get('from', ''))} → {_status(d.get('to', ''))}"
    if row.action == Action.NOTE:
        return f"条目 {row.target} 的备注"
    if row.action in (Action.USER_ADD, Action.USER_ROLE):
        return f"账号 {row.target}（角色 {d.get('role', '')}）"
    if row.action in (Action.USER_DISABLE, Action.USER_ENABLE, Action.USER_PASSWORD):
        return f"账号 {row.target}"
    if row.action == Action.SEND_REMINDERS:
        return f"催报 {d.get('mails', 0)} 封" + ("（预览模式，未发送）" if d.get("dry_run") else "") + (
            f"：{d['why_none']}" if d.get("why_none") else "")  # fmt: skip
    if row.action == Action.ASSIGN:
        return f"归属 {row.institution}（原：{d.get('before', '') or '无'}）"
    if row.action == Action.MARK_UNRELATED:
        return f"标为非报告（原：{d.get('before', '') or '无'}）"
    if row.action == Action.UNDO:
        return f"撤销「{d.get('undone', '')}」，恢复自动判断（现：{d.get('after', '') or '无'}）"
    if row.action == Action.LEARN_CONTACT:
        return f"记住 {d.get('address', '')} 为 {row.institution} 的发件地址"
    if row.action == Action.EXEMPT:
        return "设为免报"
    if row.action == Action.UNEXEMPT:
        return f"取消免报（原因曾为：{d.get('previous_reason', '')}）"
    if row.action == Action.REPROCESS:
        return (f"重新处理 {d.get('processed', 0)} 封（{d.get('selection', '')}），"
                f"归属变化 {d.get('attribution_changes', 0)} 处，状态变化 {d.get('status_changes', 0)} 处")  # fmt: skip
    if row.action == Action.EXPORT_REPORTS:
        return f"导出 {d.get('files', 0)} 个文件到 {d.get('to', '')}"
    return json.dumps(d, ensure_ascii=False)


def _status(code: str) -> str:
    return label(code, Status) if code else "无记录"


def actor_label(actor: str) -> str:
    return "系统（自动）" if actor == SYSTEM_ACTOR else actor


def fetch_trail(ctx: Context, *, institutions: list[str] | None = None) -> list[AuditRow]:
    """Audit entries, oldest first, optionally only those about some institutions."""
    with ctx.db.connect() as conn:
        return list(fetch_audit(conn, institutions=institutions))


def audit_records(rows: list[AuditRow]) -> list[dict]:
    """Audit entries as plain dicts (times stay aware datetimes; the caller formats them)."""
    return [
        {
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "institution": row.institution,
            "description": describe(row),
            "reason": row.reason,
            "details": row.details,
        }
        for row in rows
    ]


def audit_frame(rows: list[AuditRow], tz: tzinfo) -> pd.DataFrame:
    """The 操作记录 sheet: one row per audit entry, times as local Excel dates, labels in Chinese."""
    import pandas as pd  # only the callers that want a DataFrame pay for pandas

    records = [
        {
            "时间": excel_time(r["at"], tz),
            "操作人": actor_label(r["actor"]),
            "操作": label(r["action"], Action),
            "对象": r["target"],
            "机构": r["institution"],
            "内容": r["description"],
            "原因/备注": r["reason"],
        }
        for r in audit_records(rows)
    ]
    return pd.DataFrame(records, columns=list(AUDIT_HEADERS))
