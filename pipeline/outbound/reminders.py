"""Reminder policy: who is chased, when, at which address — and bounces that come back.

Occasions ([reminders] in config.toml, times at [schedule] remind_at):
- before the deadline: on each day in `before_deadline_days` (counted in
  working days back from the deadline day; 0 = the deadline day, moved to the
  last working day when it is not one), institutions still `pending`;
- after it: on the first working day after the deadline day and then every
  `overdue_every_working_days` working days, `max_overdue_reminders` times in
  all, institutions `overdue`.
A run acts on the latest occasion whose time has come (a run that was missed
catches up once), never on a non-working day and never in quiet hours.  The
ledger occasion "reminder:<unit>:<date>" makes each mail happen once.

Direct-channel institutions are mailed at their own contacts; district-run
ones are grouped into ONE mail per district bureau listing the missing
institutions, with their own contacts in Cc.  A bureau that is itself on
Annex 1 is covered by that same mail.  Submitted and exempt institutions are
never listed; nor is one whose mail sits in the review queue (a clerk first).
"""

from __future__ import annotations

import email
import email.header
import email.utils
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from email import policy
from email.message import Message

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.context import Context
from pipeline.domain.authenticity import check_sender
from pipeline.domain.contacts import Contact
from pipeline.domain.courtesy import request_word
from pipeline.domain.roster import Roster, resolve_unit
from pipeline.domain.workdays import (
    CalendarGapError,
    WorkCalendar,
    add_workdays,
    in_quiet_hours,
    is_workday,
    workday_on_or_before,
)
from pipeline.errors import NotFoundError
from pipeline.holidays import load_calendar
from pipeline.inbound.reparse import reparse_headers
from pipeline.outbound.compose import OutgoingMail, Recipient, local_time, render
from pipeline.outbound.mailer import Delivery, Outbox, dry_run_default
from pipeline.outputs.snapshot import CampaignSnapshot, build_snapshot
from pipeline.vocab import AddressHealth, Channel, DeliveryState, MailKind, ParseState, ReminderPhase, Status
from storage.imapstate import save_state
from storage.ledger import (
    fetch_failing_addresses,
    fetch_ledger,
    save_address_status,
    save_ledger_note,
)
from storage.messages import fetch_messages

REMINDER_COLUMNS = ("已发催报次数", "最近催报时间", "邮件发送问题")
HOLD_PREFIX = "催报暂停："
STATE_REMINDER_HOLD = "reminder_hold"  # worker_state: "<as_of ISO> <reason>" of the last held run, "" after a clear one
BOUNCE_SCAN_BYTES = 200_000  # stored messages up to this size are searched for our Message-IDs
_BOUNCE_SUBJECTS = re.compile(
    r"^\s*(退信|系统退信|投递失败|邮件投递失败|undeliverable|undelivered mail|delivery status notification"
    r"|mail delivery failed|returned mail|delivery failure|failure notice)", re.IGNORECASE
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Occasion:
    day: date
    phase: ReminderPhase
    round: int  # 1-based within its phase


@dataclass(frozen=True)
class ReminderPlan:
    """One reminder mail (or why it cannot be sent)."""

    occasion: str
    unit: str  # institution (direct) or bureau name
    channel: str  # direct | bureau
    institutions: tuple[str, ...]
    to: tuple[Recipient, ...]
    cc: tuple[Recipient, ...]
    reason: str
    skipped: str = ""  # why no mail goes out; "" when it does
    notes: tuple[str, ...] = ()


@dataclass
class ReminderSummary:
    as_of: datetime
    dry_run: bool
    occasion: Occasion | None
    why_none: str = ""  # when no occasion is due now
    plans: list[ReminderPlan] = field(default_factory=list)
    deliveries: dict[str, Delivery] = field(default_factory=dict)  # occasion -> what happened
    held: list[str] = field(default_factory=list)  # institutions not chased, with the reason
    bounces: list[Bounce] = field(default_factory=list)
    units: tuple[str, ...] = ()  # the units a clerk chose (canonical names); () = every unit due
    not_due: list[str] = field(default_factory=list)  # chosen units no mail of this occasion covers, with why

    @property
    def sent(self) -> list[Delivery]:
        return [d for d in self.deliveries.values() if d.action in (DeliveryState.SENT, DeliveryState.DRY_RUN)]


@dataclass(frozen=True, slots=True)
class Bounce:
    message_id: int  # the stored bounce message
    occasion: str
    address: str
    diagnostic: str
    ignored: str = ""  # why it was NOT believed (then nothing was marked); "" when applied


# ---------------------------------------------------------------- schedule


def reminder_schedule(ctx: Context) -> list[Occasion]:
    """Every reminder occasion of the campaign.  Raises CalendarGapError when a year is not known."""
    occasions, gap = known_schedule(ctx)
    if gap is not None:
        raise gap
    return occasions


def known_schedule(ctx: Context, cal: WorkCalendar | None = None) -> tuple[list[Occasion], CalendarGapError | None]:
    """The occasions the calendar can place, and the gap that stopped it (None: the whole schedule).

    The before-deadline phase is counted back from the deadline, so it is all or nothing; the
    overdue phase is counted forward and stops at the first day of an unknown year.
    """
    cfg = ctx.config
    cal = cal or load_calendar(cfg.campaign.holidays)
    deadline_day = cfg.campaign.deadline.astimezone(cfg.campaign.timezone).date()
    try:
        before_days = sorted(
            {
                add_workdays(deadline_day, -k, cal) if k > 0 else workday_on_or_before(deadline_day, cal)
                for k in cfg.reminders.before_deadline_days
            }  # fmt: skip
        )
    except CalendarGapError as gap:
        return [], gap
    occasions = [Occasion(day, ReminderPhase.BEFORE, n) for n, day in enumerate(before_days, start=1)]
    try:
        day = add_workdays(deadline_day, 1, cal)
        for n in range(1, cfg.reminders.max_overdue_reminders + 1):
            occasions.append(Occasion(day, ReminderPhase.OVERDUE, n))
            if n < cfg.reminders.max_overdue_reminders:
                day = add_workdays(day, max(1, cfg.reminders.overdue_every_working_days), cal)
    except CalendarGapError as gap:
        return occasions, gap
    return occasions, None


def due_occasion(ctx: Context, as_of: datetime) -> tuple[Occasion | None, str]:
    """The occasion a run at `as_of` acts on, or None with the reason (in Chinese).

    A reason starting with HOLD_PREFIX means the working-day calendar does not know the day
    (or a day the schedule depends on): the reminder is held, never guessed.
    """
    cfg = ctx.config
    local = as_of.astimezone(cfg.campaign.timezone)
    cal = load_calendar(cfg.campaign.holidays)  # a bad table raises DataFileError: reminders refuse
    try:
        workday = is_workday(local.date(), cal)
    except CalendarGapError as uncovered:
        return None, f"{HOLD_PREFIX}{uncovered}"
    if not workday:
        return None, f"{local:%Y-%m-%d} 不是工作日，不发催报"
    if in_quiet_hours(local, cfg.reminders.quiet_hours):
        return None, f"{local:%H:%M} 处于免打扰时段，不发催报"
    occasions, gap = known_schedule(ctx, cal)
    if gap is not None and (not occasions or gap.day <= local.date()):
        return None, f"{HOLD_PREFIX}{gap}"
    due = [o for o in occasions if datetime.combine(o.day, cfg.schedule.remind_at, local.tzinfo) <= local]
    if not due:
        return None, "尚未到第一次提醒的时间"
    return due[-1], ""


# ---------------------------------------------------------------- planning


def plan_reminders(ctx: Context, as_of: datetime, occasion: Occasion, *, data: CampaignData | None = None,
                   snapshot: CampaignSnapshot | None = None) -> tuple[list[ReminderPlan], list[str]]:  # fmt: skip
    """The mails of one occasion: (plans, institutions held back with the reason).

    Pass the caller's `snapshot` as of `as_of` (the console's) to plan from it instead of reading
    the campaign again.
    """
    data = data or load_campaign_data(ctx)
    if snapshot is None or snapshot.as_of != as_of:
        snapshot = build_snapshot(ctx, as_of, data=data)
    roster = data.roster
    wanted = Status.PENDING if occasion.phase == ReminderPhase.BEFORE else Status.OVERDUE
    by_name: dict[str, list[Contact]] = defaultdict(list)
    for contact in data.contacts:
        if all(c.address != contact.address for c in by_name[contact.institution]):
            by_name[contact.institution].append(contact)
    with ctx.db.connect() as conn:
        failing = fetch_failing_addresses(conn)
    units: dict[tuple[str, str], list[str]] = {}
    held: list[str] = []
    for row in snapshot.statuses:
        name = row.institution.name
        if row.status != wanted:
            continue
        if row.needs_review:
            held.append(
                f"{name}：有待人工核对的来信涉及该单位，暂缓催报（{'；'.join(row.review_reasons)[:60]}）"
            )
            continue
        bureau = roster.reporting_bureau(name) or roster.bureau_for(name)
        key = (Channel.BUREAU, bureau.name) if bureau is not None else (Channel.DIRECT, roster.group(name)[0])
        units.setdefault(key, []).append(name)

    plans = []
    for (channel, unit), names in units.items():
        notes: list[str] = []
        if channel == Channel.BUREAU:
            bureau = roster.bureau_by_name[unit]
            own = [roster.by_row[bureau.roster_row].name] if bureau.roster_row else []
            listed = [n for n in names if n not in own]
            to = _usable([unit, *own], by_name, failing, notes)
            cc = [
                r
                for r in _usable(listed, by_name, failing, notes)
                if r.address not in {t.address for t in to}
            ]
            reason = f"辖区内 {len(listed)} 家单位{'及本级' if set(own) & set(names) else ''}{_phase_text(occasion)}"
        else:
            owners = list(dict.fromkeys(g for n in names for g in roster.group(n)))
            to, cc = _usable(owners, by_name, failing, notes), []
            reason = f"直接报送单位{_phase_text(occasion)}"
        skipped = "" if to else "没有可用的联系邮箱（请在联系人文件中补充）"
        plans.append(ReminderPlan(f"reminder:{unit}:{occasion.day.isoformat()}", unit, channel, tuple(names),
                                  tuple(to), tuple(cc), reason, skipped, tuple(notes)))  # fmt: skip
    return plans, held


def _usable(owners: list[str], by_name: dict[str, list[Contact]], failing: dict[str, str],
            notes: list[str]) -> list[Recipient]:  # fmt: skip
    """The owners' contacts minus addresses known to bounce (each skip noted)."""
    found: list[Recipient] = []
    for owner in owners:
        for contact in by_name.get(owner, []):
            if contact.address in failing:
                notes.append(f"跳过退信地址 {contact.address}（{failing[contact.address][:60]}）")
            elif all(r.address != contact.address for r in found):
                found.append(Recipient(contact.address, contact.person))
    return found


def _phase_text(occasion: Occasion) -> str:
    if occasion.phase == ReminderPhase.BEFORE:
        return f"尚未报送（截止前提醒，{occasion.day:%m-%d}）"
    return f"逾期未报（第 {occasion.round} 次逾期提醒）"


def compose_reminder(ctx: Context, roster: Roster, plan: ReminderPlan, occasion: Occasion,
                     as_of: datetime) -> OutgoingMail:  # fmt: skip
    cfg = ctx.config
    facts = dict(phase=occasion.phase, round=occasion.round, unit=plan.unit, names=list(plan.institutions),
                 as_of=local_time(as_of, cfg), today=local_time(as_of, cfg).split(" ")[0])  # fmt: skip
    if plan.channel == Channel.BUREAU:
        bureau = roster.bureau_by_name[plan.unit]
        own = roster.by_row[bureau.roster_row].name if bureau.roster_row else ""
        listed = [n for n in plan.institutions if n != own]
        subject, body = render(cfg, "reminder_bureau.txt.j2", institutions=listed,
                               own_missing=own in plan.institutions, **facts)  # fmt: skip
    else:
        subject, body = render(cfg, "reminder_direct.txt.j2", **{**facts, "ask": request_word(roster, plan.institutions)})
    return OutgoingMail(plan.occasion, MailKind.REMINDER, subject, body, plan.to, plan.cc, plan.institutions,
                        auto_submitted="auto-generated", as_of=as_of, note="\n".join(plan.notes))  # fmt: skip


# ---------------------------------------------------------------- the job


def run_reminders(ctx: Context, as_of: datetime, *, dry_run: bool | None = None,
                  units: tuple[str, ...] = ()) -> ReminderSummary:  # fmt: skip
    """One reminder pass as of `as_of`: bounces first, then the due occasion's mails, each at most once.

    `units` (names, aliases or roster numbers of institutions or bureaus; raises NotFoundError for
    one that names nothing) sends only the mails of the due occasion that cover them, now — a
    clerk's "send now".  A mail is never cut down: choosing one district-run institution sends
    its bureau's whole mail, since the occasion (reminder:<unit>:<date>) is then done for the
    scheduled run too.  Open ledger rows of other units are left alone.
    """
    dry = dry_run_default(ctx.config, dry_run)
    data = load_campaign_data(ctx)
    chosen = choose_units(data.roster, units)
    bounces = process_bounces(ctx)
    occasion, why = due_occasion(ctx, as_of)
    summary = ReminderSummary(as_of, dry, occasion, why, bounces=bounces, units=chosen)
    if not chosen:  # a hold is a fact the health check and the digest report (the scheduled pass's)
        with ctx.db.begin() as conn:
            save_state(conn, STATE_REMINDER_HOLD, f"{as_of.isoformat()} {why}" if why.startswith(HOLD_PREFIX) else "")
    data.require_clean()  # a reminder from a half-read contacts file would miss someone: refuse, say why
    if occasion is not None:
        summary.plans, summary.held = plan_reminders(ctx, as_of, occasion, data=data)
        if chosen:
            summary.plans, summary.held, summary.not_due = select_plans(data.roster, summary.plans, summary.held, chosen)
    elif chosen:
        summary.not_due = [f"{name}：{why}" for name in chosen]
    mine = {p.unit for p in summary.plans}
    current = {p.occasion for p in summary.plans if not p.skipped}
    with Outbox(ctx, dry_run=dry, clock=as_of) as outbox:
        for plan in summary.plans:
            if not plan.skipped and occasion is not None:
                summary.deliveries[plan.occasion] = outbox.deliver(
                    compose_reminder(ctx, data.roster, plan, occasion, as_of)
                )
        if occasion is not None:
            for row in outbox.open_rows((MailKind.REMINDER,)):
                if chosen and not any(row.occasion.startswith(f"reminder:{u}:") for u in mine):
                    continue  # a clerk's choice: other units' rows are the scheduled pass's business
                if row.occasion not in current:  # superseded, or the institution has reported since
                    summary.deliveries[row.occasion] = outbox.cancel(
                        row, "提醒已过时（已报送或已有新一轮提醒），不再重发"
                    )
    return summary


def choose_units(roster: Roster, texts: tuple[str, ...]) -> tuple[str, ...]:
    """The canonical names (roster row or bureau) of what a clerk typed or ticked; NotFoundError names a miss."""
    chosen: list[str] = []
    for text in texts:
        typed = text.strip()
        found = resolve_unit(roster, typed)
        if typed.isdigit() and int(typed) in roster.by_row:
            name = roster.group(roster.by_row[int(typed)].name)[0]
        elif found.name is None:
            raise NotFoundError(f"催报单位：{found.problem}")
        else:
            name = found.name
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def select_plans(roster: Roster, plans: list[ReminderPlan], held: list[str],
                 chosen: tuple[str, ...]) -> tuple[list[ReminderPlan], list[str], list[str]]:  # fmt: skip
    """The plans covering a chosen unit (as the mail's addressee or as a listed institution), the held
    lines of chosen units, and each chosen unit no mail covers, with why (in Chinese)."""
    wanted = set(chosen)

    def covers(plan: ReminderPlan) -> set[str]:
        return wanted & {plan.unit, *(roster.group(n)[0] for n in plan.institutions)}

    picked = [p for p in plans if covers(p)]
    covered = set().union(*(covers(p) for p in picked)) if picked else set()
    kept = [line for line in held if line.split("：", 1)[0] in wanted]
    held_names = {line.split("：", 1)[0] for line in kept}
    not_due = [f"{name}：{'暂缓催报（有待人工核对的来信）' if name in held_names else '本次提醒场合不需催报（已报送、免报或不在催报范围）'}"
               for name in chosen if name not in covered]  # fmt: skip
    return picked, kept, not_due


# ---------------------------------------------------------------- bounces


def process_bounces(ctx: Context) -> list[Bounce]:
    """Find stored bounces that name a Message-ID we sent; mark the failed addresses. Returns new findings.

    A bounce is believed only when it is real: a DSN (multipart/report with a
    message/delivery-status part, `read_bounce`), with a null envelope sender where the
    Return-Path is known, not failed by our server (`[security] authserv_id`), and only for
    addresses that were recipients of the referenced mail in our ledger.  Anything else —
    a plain-text "bounce", a forged DSN naming other addresses — changes nothing: it is
    noted on the ledger row as not believed and returned with `ignored` set (once).
    """
    with ctx.db.connect() as conn:
        sent = {r.message_id_header.lower(): r for r in fetch_ledger(conn, statuses=(DeliveryState.SENT,)) if r.sent_at}
        if not sent:
            return []
        earliest = min(r.created_at for r in sent.values())
        # Bounces are small or say what they are in sender/subject: no need to read every big report again.
        candidates = [
            m
            for m in fetch_messages(conn)
            if m.ingested_at >= earliest
            and m.parse_status != ParseState.PENDING
            and (m.size <= BOUNCE_SCAN_BYTES or _looks_bounced(m.sender_address, m.subject))
        ]
    domain = ctx.config.smtp.from_address.rpartition("@")[2].encode()
    pattern = re.compile(rb"<[^<>\s]{1,250}@" + re.escape(domain) + rb">", re.IGNORECASE)
    found: list[Bounce] = []
    for message in candidates:
        if message.message_id_header and f"<{message.message_id_header.strip('<>').lower()}>" in sent:
            continue  # a copy of our own mail, not a report about it
        raw = ctx.raw.get(message.raw_path, message.sha256)
        ids = {m.decode("ascii", "replace").lower() for m in pattern.findall(raw)} & sent.keys()
        if not ids:
            continue
        failures = read_bounce(raw)
        if failures is None:
            if _looks_bounced(message.sender_address, message.subject):
                why = "不是标准退信报告（DSN），未据此标记地址"
                found.extend(_ignore(ctx, message.id, [sent[i] for i in ids], "", why))
            continue  # else a human reply quoting our Message-ID, or an out-of-office note
        why = _unbelievable(ctx, message, raw)
        for occasion_id in ids:
            row = sent[occasion_id]
            recipients = {a.lower() for a in row.recipients}
            for address, diagnostic in failures.items():
                if why or address not in recipients:
                    reason = why or "退信列出的地址不是该邮件的收件人，未采信"
                    found.extend(_ignore(ctx, message.id, [row], address, reason))
                    continue
                with ctx.db.begin() as conn:
                    save_address_status(conn, address, AddressHealth.FAILING, error=diagnostic, occasion=row.occasion,
                                        evidence_message_id=message.id)  # fmt: skip
                    added = save_ledger_note(conn, row.id, f"退信：{address}（{diagnostic[:80]}）")
                if added:
                    found.append(Bounce(message.id, row.occasion, address, diagnostic))
    return found


def _unbelievable(ctx: Context, message, raw: bytes) -> str:  # noqa: ANN001 - a MessageRow
    """Why a DSN is not believed (envelope not null, or our server failed it), or ""."""
    parsed = reparse_headers(ctx, message)
    return_path = parsed.header("return-path").strip()
    if return_path and return_path != "<>":
        return f"退信的信封发件人不为空（{return_path[:60]}），可能伪造，未采信"
    if ctx.config.authserv_id and not check_sender(parsed, ctx.config.authserv_id).address_usable:
        return "本委邮件服务器判定该退信的发件人校验失败，未采信"
    return ""


def _ignore(ctx: Context, message_id: int, rows: list, address: str, why: str) -> list[Bounce]:
    """Note a bounce that was not believed on the ledger rows it names; the new findings."""
    found = []
    for row in rows:
        with ctx.db.begin() as conn:
            added = save_ledger_note(conn, row.id, f"可疑退信（邮件 {message_id}{'，' + address if address else ''}）：{why}")
        if added:
            found.append(Bounce(message_id, row.occasion, address, "", why))
    return found


def _looks_bounced(sender: str, subject: str) -> bool:
    return sender.lower().startswith(("mailer-daemon@", "postmaster@")) or bool(
        _BOUNCE_SUBJECTS.match(subject)
    )


def read_bounce(raw: bytes) -> dict[str, str] | None:
    """None when `raw` is not a machine-readable delivery failure report (RFC 3464 DSN:
    multipart/report with a message/delivery-status part and at least one failed recipient);
    else failed address -> diagnostic.  A plain-text "bounce" is None: anyone can type one."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    if msg.get_content_type() != "multipart/report":
        return None
    failed: dict[str, str] = {}
    saw_report = False
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        saw_report = True
        blocks = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            if not isinstance(block, Message) or str(block.get("Action", "")).strip().lower() != "failed":
                continue
            recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            address = recipient.partition(";")[2].strip().strip("<>").lower()
            if address:
                failed[address] = " ".join(
                    str(block.get("Diagnostic-Code") or block.get("Status") or "").split()
                )
    if not saw_report or not failed:
        return None  # no delivery-status part, or a delay notice ("Action: delayed"): not a failure
    return failed
