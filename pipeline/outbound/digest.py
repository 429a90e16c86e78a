"""The clerks' daily digest: the day's workbook attached and a short Chinese summary.

One per working day (occasion "digest:<date>"), to [digest] to.  The summary
counts institutions by status, names those whose reports arrived since the
previous digest and those newly overdue, gives the review queue's size, and
lists mail that could not be delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pipeline.context import Context
from pipeline.domain.status import count_by_status
from pipeline.domain.workdays import CalendarGapError, is_workday
from pipeline.errors import ConfigError
from pipeline.holidays import load_calendar
from pipeline.outbound.compose import Attachment, OutgoingMail, Recipient, clean_address, local_time, render
from pipeline.outbound.mailer import Delivery, Outbox, dry_run_default
from pipeline.outbound.reminders import STATE_REMINDER_HOLD
from pipeline.outputs.snapshot import build_snapshot
from pipeline.vocab import OPEN_DELIVERY_STATES, DeliveryState, MailKind, Status
from storage.imapstate import fetch_state
from storage.ledger import LedgerRow, fetch_ledger, fetch_occasion

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class DigestSummary:
    as_of: datetime
    dry_run: bool
    occasion: str
    delivery: Delivery | None = None
    skipped: str = ""
    counts: dict[Status, int] = field(default_factory=dict)
    arrived: list[str] = field(default_factory=list)
    newly_overdue: list[str] = field(default_factory=list)
    review: int = 0


def digest_occasion(ctx: Context, as_of: datetime) -> str:
    return f"digest:{as_of.astimezone(ctx.config.campaign.timezone).date().isoformat()}"


def digest_done(ctx: Context, as_of: datetime) -> bool:
    """True when today's digest is already recorded and closed (callers can skip building the workbook)."""
    with ctx.db.connect() as conn:
        row = fetch_occasion(conn, digest_occasion(ctx, as_of))
    return row is not None and row.status not in (*OPEN_DELIVERY_STATES, DeliveryState.DRY_RUN)


def send_digest(ctx: Context, as_of: datetime, workbook_path: Path, *, dry_run: bool | None = None,
                force: bool = False) -> DigestSummary:  # fmt: skip
    """Send today's digest once.  Skipped on non-working days unless `force`."""
    cfg = ctx.config
    dry = dry_run_default(cfg, dry_run)
    summary = DigestSummary(as_of, dry, digest_occasion(ctx, as_of))
    local = as_of.astimezone(cfg.campaign.timezone)
    recipients = [clean_address(a) for a in cfg.digest_to]
    if not recipients:
        summary.skipped = "未配置 [digest] to，不发日报"
        return summary
    if not all(recipients):
        raise ConfigError(f"{cfg.path}: [digest] to 中有无效的邮件地址")
    calendar_notes = calendar_warnings(ctx, as_of)
    try:
        workday = is_workday(local.date(), load_calendar(cfg.campaign.holidays))
    except (CalendarGapError, ConfigError):
        workday = True  # unknown day or a broken holiday table: send, so the clerks learn why reminders stop
    if not force and not workday:
        summary.skipped = f"{local:%Y-%m-%d} 不是工作日，不发日报"
        return summary

    with ctx.db.connect() as conn:
        ledger = list(fetch_ledger(conn))
    previous = _previous_digest(ledger, summary.occasion, as_of)
    snapshot = build_snapshot(ctx, as_of)
    rows = snapshot.statuses
    summary.counts = count_by_status(rows)
    since = previous.as_of if previous is not None and previous.as_of is not None else None
    summary.arrived = [r.institution.name for r in rows
                       if any(since is None or s.received_at > since for s in r.submissions)]  # fmt: skip
    before = {}
    if since is not None:
        before = {r.institution.name: r.status for r in build_snapshot(ctx, since, roster=snapshot.roster).statuses}
    summary.newly_overdue = [
        r.institution.name
        for r in rows
        if r.status == Status.OVERDUE and before.get(r.institution.name) != Status.OVERDUE
    ]
    summary.review = len(snapshot.review_items)
    cutoff = previous.created_at if previous is not None else None
    problems = [f"{row.occasion}：{row.last_error[:100]}" for row in ledger
                if row.status == DeliveryState.FAILED and (cutoff is None or row.created_at > cutoff)]  # fmt: skip
    problems += [
        f"{row.occasion}：{line}"
        for row in ledger
        for line in row.note.split("\n")
        if line.startswith("退信")
    ]
    problems = calendar_notes + problems  # the template has one list of problems; holds go first

    subject, body = render(
        cfg, "digest.txt.j2", as_of=local_time(as_of, cfg), today=f"{local.year}年{local.month}月{local.day}日",
        workbook=workbook_path.name, total=len(rows), counts=summary.counts, arrived=summary.arrived,
        newly_overdue=summary.newly_overdue, review=summary.review, problems=problems,
        since=f"自上次日报（{local_time(since, cfg)}）以来" if since is not None else "截至目前",
    )  # fmt: skip
    mail = OutgoingMail(summary.occasion, MailKind.DIGEST, subject, body, tuple(Recipient(a) for a in recipients),
                        attachments=(Attachment(workbook_path.name, workbook_path.read_bytes(), XLSX),),
                        auto_submitted="auto-generated", as_of=as_of)  # fmt: skip
    with Outbox(ctx, dry_run=dry, clock=as_of) as outbox:
        for row in outbox.open_rows((MailKind.DIGEST,)):
            if row.occasion != summary.occasion:
                outbox.cancel(row, "已有新的日报，旧日报不再重发")
        summary.delivery = outbox.deliver(mail)
    return summary


def calendar_warnings(ctx: Context, as_of: datetime) -> list[str]:
    """Lines for the digest: a reminder hold and holiday-table gaps ahead (empty when all is known)."""
    lines: list[str] = []
    with ctx.db.connect() as conn:
        hold = fetch_state(conn, STATE_REMINDER_HOLD)
    if hold is not None and hold.value:
        lines.append(hold.value.partition(" ")[2])
    local = as_of.astimezone(ctx.config.campaign.timezone).date()
    ahead = ctx.config.health.holiday_lookahead_days
    try:
        gaps = load_calendar(ctx.config.campaign.holidays).gaps(local, ahead)
    except ConfigError as err:  # the holiday table has a bad line: reminders refuse, the digest says why
        return [*lines, f"节假日表有错误，催报暂停：{err}"]
    table = ctx.config.campaign.holidays or "节假日表"
    for year in gaps:
        lines.append(
            f"节假日表未覆盖 {year} 年（{ahead} 天内用到）：该年的催报将暂停，"
            f"请在 {table} 中补充国务院办公厅公布的 {year} 年放假安排"
        )
    return lines


def _previous_digest(ledger: list[LedgerRow], occasion: str, as_of: datetime) -> LedgerRow | None:
    earlier = [r for r in ledger if r.kind == MailKind.DIGEST and r.occasion != occasion and r.status in (DeliveryState.SENT, DeliveryState.DRY_RUN)
               and r.as_of is not None and r.as_of < as_of]  # fmt: skip
    return max(earlier, key=lambda r: r.as_of or as_of) if earlier else None
