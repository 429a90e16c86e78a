"""The console's 催报与回执: the reminder preview, the outgoing-mail ledger, and sending now.

Everything goes through `pipeline.outbound.reminders` — the same planning and the same ledger
as the worker's scheduled pass — so an occasion is mailed once whoever triggers it.  The
preview plans from the console's cached snapshot (one per change of the data); sending
plans afresh inside `run_reminders`.
"""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from datetime import datetime
from email import policy

from pipeline.context import Context
from pipeline.outbound.compose import build_message
from pipeline.outbound.reminders import (
    ReminderPlan,
    ReminderSummary,
    compose_reminder,
    due_occasion,
    plan_reminders,
    run_reminders,
)
from pipeline.outputs.snapshot import CampaignSnapshot
from pipeline.vocab import Action, ReminderPhase
from pipeline.web.cache import campaign_data, snapshot
from storage.audit import save_audit
from storage.ledger import LedgerRow, fetch_failing_addresses

_PREVIEW_HIDDEN = ("Message-ID", "Content-Transfer-Encoding", "MIME-Version", "Content-Type")


@dataclass(frozen=True, slots=True)
class PlannedMail:
    plan: ReminderPlan
    subject: str
    text: str  # the exact message as it would go out (headers + decoded body)


@dataclass
class ReminderPreview:
    as_of: datetime
    occasion: str  # "2024-07-11（第 1 次逾期提醒）" or ""
    why_none: str
    plans: list[ReminderPlan] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    mails: list[PlannedMail] = field(default_factory=list)
    send_enabled: bool = False
    recorded: dict[str, LedgerRow] = field(default_factory=dict)  # occasion -> its ledger row, if any


def reminder_preview(ctx: Context, as_of: datetime, *, compose: bool = True, live: bool = False,
                     snap: CampaignSnapshot | None = None) -> ReminderPreview:  # fmt: skip
    """What a reminder run at `as_of` would do; nothing is written (the outbox is untouched).

    Plans from `snap` (or the cached snapshot as of `as_of`): no second read of the campaign.  A
    `live` page's snapshot may be up to a minute old: the preview is then as of its moment.
    """
    snap = snap or snapshot(ctx, as_of, live=live)
    as_of = snap.as_of
    occasion, why = due_occasion(ctx, as_of)
    preview = ReminderPreview(as_of, "", why, send_enabled=ctx.config.reminders.send)
    if occasion is None:
        return preview
    label = "截止前提醒" if occasion.phase == ReminderPhase.BEFORE else f"第 {occasion.round} 次逾期提醒"
    preview.occasion = f"{occasion.day:%Y-%m-%d}（{label}）"
    data = campaign_data(ctx)
    preview.plans, preview.held = plan_reminders(ctx, as_of, occasion, data=data, snapshot=snap)
    wanted = {p.occasion for p in preview.plans}
    preview.recorded = {r.occasion: r for r in snap.ledger if r.occasion in wanted}
    if compose:
        for plan in preview.plans:
            if plan.skipped:
                continue
            mail = compose_reminder(ctx, data.roster, plan, occasion, as_of)
            raw = build_message(ctx.config, mail, message_id="<preview@localhost>", date=as_of)
            parsed = email.message_from_bytes(raw, policy=policy.default)
            headers = "\n".join(f"{k}: {v}" for k, v in parsed.items() if k not in _PREVIEW_HIDDEN)
            preview.mails.append(PlannedMail(plan, mail.subject, headers + "\n\n" + mail.body))
    return preview


def outbox_rows(ctx: Context, as_of: datetime, *, live: bool = False) -> tuple[list[LedgerRow], dict[str, str]]:
    """The outgoing-mail ledger up to `as_of` (newest first) and the addresses known to bounce."""
    with ctx.db.connect() as conn:
        failing = fetch_failing_addresses(conn)
    return list(reversed(snapshot(ctx, as_of, live=live).ledger)), failing


def send_reminders(ctx: Context, as_of: datetime, *, by: str, units: tuple[str, ...] = ()) -> ReminderSummary:
    """Run the reminder pass now — all of it, or only the mails covering `units` — through the
    worker's ledger (an occasion is never mailed twice), audited under `by`."""
    summary = run_reminders(ctx, as_of, units=units)
    with ctx.db.begin() as conn:
        save_audit(conn, actor=by, action=Action.SEND_REMINDERS, target=summary.occasion.day.isoformat() if summary.occasion else "",
                   institution=";".join(n for p in summary.plans for n in p.institutions),
                   details={"as_of": as_of.isoformat(), "dry_run": summary.dry_run, "mails": len(summary.deliveries),
                            "sent": len(summary.sent), "units": list(summary.units),
                            "why_none": summary.why_none})  # fmt: skip
    return summary
