"""Receipts (回执): tell each sender that their report arrived, or what needs correcting.

One mail per received message at most (occasion "receipt:<message SHA-256>"):
an acknowledgement naming the institution(s), the files and the receipt time,
or — when a report cannot be read or lacks template sections — a request for
a corrected file.  Never sent to auto-replies, bounces, mailing lists (RFC
3834: Auto-Submitted, Precedence, List-*), an empty Return-Path, no-reply or
mailer-daemon addresses, or the commission's own domains (colleagues' forwards).
Receipts carry Auto-Submitted: auto-replied.

Receipts cannot be aimed at others (backscatter): one goes only to a `verified` or
`known` sender (or one a clerk confirmed), or to an `unknown` sender whose mail our
own server authenticated (an aligned SPF/DKIM/DMARC pass); at most one per address
per day; and it repeats nothing the sender wrote — only the roster names of the
institutions and counts (files received, files to correct, the template's own
section names), never the subject or a filename.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.context import Context
from pipeline.domain.authenticity import check_sender
from pipeline.domain.courtesy import request_word
from pipeline.domain.roster import Roster
from pipeline.domain.senders import classify_sender, is_own_address
from pipeline.inbound.reparse import reparse_headers
from pipeline.outbound.compose import OutgoingMail, Recipient, clean_address, header_text, local_time, render
from pipeline.outbound.corrections import correction_for
from pipeline.outbound.mailer import Delivery, Outbox, dry_run_default
from pipeline.outputs.views import MessageView, message_views
from pipeline.vocab import DeliveryState, Kind, MailKind, SenderTrust
from storage.confirmations import CONFIRMED, REJECTED, fetch_confirmations
from storage.ledger import OPEN_STATUSES, fetch_ledger
from storage.messages import fetch_item_index
from storage.rows import DecisionRow

_NO_REPLY = re.compile(
    r"^(no-?reply|do-?not-?reply|donotreply|mailer-daemon|postmaster|bounces?|notifications?|auto-?reply)"
    r"([+._-].*)?$"
)


@dataclass(frozen=True)
class ReceiptPlan:
    message_id: int
    occasion: str
    kind: str  # receipt | correction
    to: Recipient | None
    institutions: tuple[str, ...]
    files: tuple[str, ...]  # report files that arrived fine
    problems: tuple[str, ...]  # what needs correcting
    skipped: str = ""  # why no receipt goes out


@dataclass
class ReceiptSummary:
    now: datetime
    dry_run: bool
    plans: list[ReceiptPlan] = field(default_factory=list)
    deliveries: dict[str, Delivery] = field(default_factory=dict)


def send_receipts(ctx: Context, now: datetime, *, dry_run: bool | None = None) -> ReceiptSummary:
    """Acknowledge (or ask to correct) every report received by `now` that has had no receipt yet."""
    dry = dry_run_default(ctx.config, dry_run)
    summary = ReceiptSummary(now, dry)
    settings = ctx.config.receipts
    if not (settings.send_acknowledgements or settings.send_corrections):
        return summary
    with ctx.db.connect() as conn:
        recorded = {r.occasion: r for r in fetch_ledger(conn, kind=(MailKind.RECEIPT, MailKind.CORRECTION))}
        items = fetch_item_index(conn)
        verdicts = {c.message_id: c.verdict for c in fetch_confirmations(conn)}
    data = load_campaign_data(ctx)
    tz = ctx.config.campaign.timezone
    views = message_views(ctx)
    # One receipt per address per day of receipt: (address, local day the report arrived) -> occasions.
    # Keyed on the arrival day, not the sending day, so a skipped report is never answered a day late.
    arrived = {f"receipt:{v.message.sha256}": v.message.received_at for v in views if v.message.received_at}
    answered: dict[tuple[str, object], set[str]] = defaultdict(set)
    for r in recorded.values():
        if r.status != DeliveryState.CANCELLED and r.occasion in arrived:
            for to in r.recipients:
                answered[(to.lower(), arrived[r.occasion].astimezone(tz).date())].add(r.occasion)
    first_copy: dict[tuple[str, str], int] = {}  # (sender, Message-ID) -> the first message carrying it
    with Outbox(ctx, dry_run=dry, clock=now) as outbox:
        for view in views:  # in receipt order
            message = view.message
            reports = [d for d in view.decisions if d.kind == Kind.REPORT and d.institution]
            if not reports or message.received_at is None or message.received_at > now:
                continue
            key = (message.sender_address.lower(), message.message_id_header)
            duplicate_of = first_copy.get(key) if message.message_id_header else None
            first_copy.setdefault(key, message.id)
            occasion = f"receipt:{message.sha256}"
            row = recorded.get(occasion)
            if row is not None and row.status in OPEN_STATUSES:
                summary.deliveries[occasion] = outbox.resend(row)
                continue
            if row is not None and not (row.status == DeliveryState.DRY_RUN and not dry):
                continue
            if duplicate_of is not None:  # the same mail delivered twice (other bytes, same Message-ID)
                why = f"与第 {duplicate_of} 封是同一封邮件（Message-ID 相同），只回执一次"
                summary.plans.append(ReceiptPlan(message.id, occasion, MailKind.RECEIPT, None, (), (), (), why))
                continue
            plan = plan_receipt(ctx, view, reports, items, data=data, verdict=verdicts.get(message.id, ""))
            day_key = (plan.to.address.lower(), message.received_at.astimezone(tz).date()) if plan.to else None
            if day_key is not None and answered.get(day_key, set()) - {occasion}:
                plan = replace(plan, to=None, skipped="今天已给该地址发过回执，每个地址每天至多一封")
            summary.plans.append(plan)
            if not plan.skipped and day_key is not None:
                answered[day_key].add(occasion)
                summary.deliveries[occasion] = outbox.deliver(compose_receipt(ctx, view, plan, now, data.roster))
    return summary


def plan_receipt(ctx: Context, view: MessageView, reports: list[DecisionRow], items: dict, *,
                 data: CampaignData | None = None, verdict: str = "") -> ReceiptPlan:  # fmt: skip
    message = view.message
    rules = ctx.config.campaign.rules
    occasion = f"receipt:{message.sha256}"
    institutions = tuple(dict.fromkeys(d.institution for d in reports))
    files: list[str] = []
    problems: list[str] = []
    for d in reports:
        item = items.get((message.id, d.item_path))
        name = item.filename if item is not None and item.filename else "邮件正文"
        sections = d.sections or {}
        # Only `required` template sections ([campaign] sections) warrant asking for a corrected file.
        missing = [rules.numbered(k) for k in rules.required_sections if k in sections and not sections[k]]
        # Only our own words (a filename or a parser's message may carry the sender's text): the wording by problem code and the file's real type (corrections.py), never the parser's text;
        # a file the sender cannot fix (our reader or limit failed) is acknowledged, and the clerk reviews it.
        fix = None if d.readable or item is None else correction_for(item.problem_code, item.content_type)
        if fix is not None:
            problems.append(fix.line)
        elif missing:
            whole = "".join(f"“{rules.numbered(s.title)}”" for s in rules.sections)
            problems.append(f"有 1 个报告文件缺少模板规定的内容：{'、'.join(missing)}。需要重新发送：按模板{whole}补全后的报告")
        else:
            files.append(name)
    files = list(dict.fromkeys(files))  # kept for the clerks' view of the plan; never put in the mail
    problems = [p.replace("有 1 个", f"有 {n} 个", 1) for p, n in Counter(problems).items()]
    settings = ctx.config.receipts
    kind = MailKind.CORRECTION if problems and settings.send_corrections else MailKind.RECEIPT

    def plan(to: Recipient | None, skipped: str) -> ReceiptPlan:
        return ReceiptPlan(
            message.id, occasion, kind, to, institutions, tuple(files), tuple(problems), skipped
        )

    if kind == MailKind.RECEIPT and not settings.send_acknowledgements:
        return plan(None, "回执已在配置中关闭")
    reason = _not_answerable(ctx, view) or _untrusted(ctx, view, reports, data or load_campaign_data(ctx), verdict)
    if reason:
        return plan(None, reason)
    return plan(Recipient(clean_address(message.sender_address), message.sender_name), "")


def _not_answerable(ctx: Context, view: MessageView) -> str:
    """Why this message must not get an automatic answer, or ""."""
    message = view.message
    address = clean_address(message.sender_address)
    if not address:
        return f"发件地址无效或缺失（{message.sender_address[:60]!r}）"
    local, _, domain = address.partition("@")
    campaign = ctx.config.campaign
    if address == campaign.mailbox_address or address == ctx.config.smtp.from_address.lower():
        return "发件人是本委收件邮箱"
    if is_own_address(address, own_domains=campaign.own_domains):
        return "发件人属本委域名（同事转发），不发回执"
    if _NO_REPLY.match(local):
        return f"不接收回复的地址（{address}）"
    parsed = reparse_headers(ctx, message)
    if parsed.auto_reply:
        return f"自动邮件，不回复（{parsed.auto_reply}）"
    if parsed.header("return-path").strip() == "<>":
        return "退信地址为空（系统邮件），不回复"
    sender = check_sender(parsed, ctx.config.authserv_id)
    if not sender.address_usable:
        return f"发件人可能伪造，不回复（{sender.reason}）"
    return ""


def _untrusted(ctx: Context, view: MessageView, reports: list[DecisionRow], data: CampaignData, verdict: str) -> str:
    """Why the sender is not trusted enough for an automatic answer (backscatter), or ""."""
    if verdict == REJECTED:
        return "发件人已被经办人拒绝，不回复"
    if verdict == CONFIRMED:
        return ""
    message = view.message
    check = check_sender(reparse_headers(ctx, message), ctx.config.authserv_id)
    trusts = {classify_sender(message.sender_address, d.institution, check=check, roster=data.roster, facts=data.facts)
              for d in reports}  # fmt: skip
    if trusts & {SenderTrust.VERIFIED, SenderTrust.KNOWN}:
        return ""
    if check.authenticated(message.sender_address):
        return ""
    return "发件人不是该机构的已知联系人，且邮件未经本委邮件服务器验证，不发回执（防止冒名发件人借回执骚扰他人）"


def compose_receipt(ctx: Context, view: MessageView, plan: ReceiptPlan, now: datetime,
                    roster: Roster | None = None) -> OutgoingMail:  # fmt: skip
    cfg = ctx.config
    message = view.message
    assert plan.to is not None
    bureaus = {d.via_bureau for d in view.decisions if d.kind == Kind.REPORT and d.via_bureau}
    if len(bureaus) == 1:
        greeting = next(iter(bureaus))
    elif len(plan.institutions) == 1:
        greeting = plan.institutions[0]
    else:
        greeting = "您好"
    # Nothing the sender wrote goes back (not the subject, not a filename): roster names and counts.
    facts = dict(greeting=greeting, institutions=list(plan.institutions), file_count=len(plan.files),
                 problems=[header_text(p, 200) for p in plan.problems],
                 received_at=local_time(message.received_at, cfg), now=local_time(now, cfg),
                 ask=request_word(roster, plan.institutions))  # fmt: skip
    template = "correction.txt.j2" if plan.kind == MailKind.CORRECTION else "receipt.txt.j2"
    subject, body = render(cfg, template, **facts)
    return OutgoingMail(plan.occasion, plan.kind, subject, body, (plan.to,), (), plan.institutions,
                        auto_submitted="auto-replied", in_reply_to=message.message_id_header, as_of=now)  # fmt: skip
