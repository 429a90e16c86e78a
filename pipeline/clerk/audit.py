"""The audit trail as the clerks see it: who did what and when, and how statuses moved.

Manual acts are recorded by the functions that perform them (assign, exempt,
reprocess, export) in the same transaction as the act.  Automatic status
changes are found by `record_status_changes`, which compares the statuses now
with the last ones it recorded (kept in worker_state) and logs each difference;
it runs after reprocess and every clerk's act, and the worker calls it after
each ingest/poll.
"""

from __future__ import annotations

import getpass
import json
from datetime import datetime

import pandas as pd

from pipeline.context import Context
from pipeline.domain.status import status_as_of
from pipeline.labels_zh import label
from pipeline.vocab import Action, Status
from storage.audit import SYSTEM_ACTOR, AuditRow, fetch_audit, fetch_state, save_audit, save_state

STATUS_SNAPSHOT_KEY = "audit.last_statuses"
BASELINE_STATUS = Status.PENDING  # before any mail has been seen, every row is pending

AUDIT_COLUMNS = ("at", "actor", "action", "target", "institution", "description", "reason")
AUDIT_HEADERS = ("时间", "操作人", "操作", "对象", "机构", "内容", "原因/备注")


def current_actor(by: str | None = None) -> str:
    """Who is acting: `--by`, else the OS user, else "unknown"."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in some containers and services
        return "unknown"


def record_status_changes(ctx: Context, as_of: datetime, *, cause: str = "") -> int:
    """Log every roster row whose status differs from the last recorded one; returns how many.

    Runs inside one write transaction, so two processes never log the same change twice.
    A call with an `as_of` earlier than the last recorded one does nothing (statuses are
    recorded moving forward in time only).
    """
    with ctx.db.begin() as conn:
        snapshot = json.loads(fetch_state(conn, STATUS_SNAPSHOT_KEY) or "{}")
        last_as_of = snapshot.get("as_of")
        if last_as_of and datetime.fromisoformat(last_as_of) > as_of:
            return 0
        previous: dict[str, str] = snapshot.get("statuses", {})
        # Read on a second connection: we hold the write lock, so it sees exactly what is committed.
        rows = status_as_of(ctx, as_of)
        current = {r.institution.name: r.status for r in rows}
        changed = 0
        for r in rows:
            name = r.institution.name
            before = previous.get(name, BASELINE_STATUS)
            if before == r.status:
                continue
            save_audit(
                conn,
                actor=SYSTEM_ACTOR,
                action=Action.STATUS_CHANGE,
                target=name,
                institution=name,
                details={
                    "from": before,
                    "to": r.status,
                    "as_of": as_of.isoformat(),
                    "cause": cause,
                    "submissions": len(r.submissions),
                    "first_received_at": r.first_received_at.isoformat() if r.first_received_at else "",
                },
                reason=cause,
            )
            changed += 1
        save_state(conn, STATUS_SNAPSHOT_KEY,
                   json.dumps({"as_of": as_of.isoformat(), "statuses": current}, ensure_ascii=False))  # fmt: skip
    return changed


def fetch_trail(ctx: Context, *, institutions: list[str] | None = None) -> list[AuditRow]:
    with ctx.db.connect() as conn:
        return list(fetch_audit(conn, institutions=institutions))


def describe(row: AuditRow) -> str:
    """One line of Chinese saying what the entry did."""
    d = row.details
    if row.action == Action.STATUS_CHANGE:
        return f"{_status(d.get('from', ''))} → {_status(d.get('to', ''))}"
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


def audit_records(ctx: Context, *, institutions: list[str] | None = None) -> list[dict]:
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
        for row in fetch_trail(ctx, institutions=institutions)
    ]


def audit_frame(ctx: Context, *, institutions: list[str] | None = None) -> pd.DataFrame:
    """The 操作记录 sheet: one row per audit entry, times as local Excel dates, labels in Chinese."""
    tz = ctx.config.campaign.timezone
    rows = [
        {
            "时间": r["at"].astimezone(tz).replace(tzinfo=None),
            "操作人": actor_label(r["actor"]),
            "操作": label(r["action"], Action),
            "对象": r["target"],
            "机构": r["institution"],
            "内容": r["description"],
            "原因/备注": r["reason"],
        }
        for r in audit_records(ctx, institutions=institutions)
    ]
    return pd.DataFrame(rows, columns=list(AUDIT_HEADERS))
