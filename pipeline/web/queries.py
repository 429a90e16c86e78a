"""Every call the console makes into the library, as small functions the routes call.

The routes render what these return and hold no business rules: statuses, rates,
the review queue, reminders, exemptions, reprocessing, exports and the audit trail
all come from the same functions as the CLI.  Every page that shows the campaign
reads one `CampaignSnapshot` (pipeline.outputs.snapshot), cached per data-dir change
marker so that polling and stepping through the queue do not rebuild it.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from parsers.types import document_path
from pipeline.clerk.assign import AssignResult, ExemptResult, current_version
from pipeline.clerk.assign import assign as assign_item
from pipeline.clerk.assign import exempt as exempt_institution
from pipeline.clerk.confirm import ConfirmPreview, ConfirmResult, confirm_sender, preview_confirmation
from pipeline.clerk.notes import add_note
from pipeline.clerk.reprocess import ReprocessSummary, Selection
from pipeline.clerk.reprocess import reprocess as reprocess_messages
from pipeline.context import Context
from pipeline.domain.matching import normalise
from pipeline.domain.roster import Institution, resolve_institution
from pipeline.domain.status import InstitutionStatus
from pipeline.errors import IntakeError, NotFoundError
from pipeline.labels_zh import label
from pipeline.outputs.audit import actor_label, audit_records, fetch_trail
from pipeline.outputs.export import ExportSummary, export_reports
from pipeline.outputs.outstanding import ContactLine, contact_lines
from pipeline.outputs.review import ReviewItem
from pipeline.outputs.senders import UnconfirmedSender
from pipeline.outputs.senders import unconfirmed_senders as unconfirmed_in
from pipeline.outputs.views import MessageView
from pipeline.outputs.workbook import build_workbook
from pipeline.users import User, add_user, list_users, set_disabled, set_password, set_role
from pipeline.vocab import Action, Channel, Kind, Status
from pipeline.web.cache import cached as _cached
from pipeline.web.cache import campaign_data, change_marker, snapshot
from pipeline.web.message_view import (  # noqa: F401 - re-exported: routes use only `queries`
    INLINE_TYPES,
    Download,
    MessageDetail,
    PartView,
    parse_ahead,
    part_download,
    raw_download,
)
from pipeline.web.message_view import message_detail as _message_detail
from pipeline.web.outgoing import (  # noqa: F401 - re-exported: routes use only `queries`
    PlannedMail,
    ReminderPreview,
    outbox_rows,
    reminder_preview,
    send_reminders,
)
from storage.ledger import LedgerRow

REPORTED = (Status.ON_TIME, Status.LATE)


def message_detail(ctx: Context, message_id: int) -> MessageDetail:
    """One message with its reparsed tree, decisions, sources and audit history."""
    return _message_detail(ctx, message_id, lambda c: audit_rows(c))


@dataclass(frozen=True, slots=True)
class RateRow:
    """DHIS2-style rates for a group of roster rows (exempt rows are not expected)."""

    label: str
    expected: int
    reported: int
    on_time: int

    @property
    def rate(self) -> float:
        return self.reported / self.expected if self.expected else 0.0

    @property
    def timely_rate(self) -> float:
        return self.on_time / self.expected if self.expected else 0.0


@dataclass(frozen=True, slots=True)
class OverdueRow:
    institution: Institution
    status: str
    contacts: ContactLine  # whom to phone: the unit's own contacts, else its bureau's
    needs_review: bool


@dataclass
class Dashboard:
    as_of: datetime
    deadline: datetime
    counts: dict[str, int]
    overall: RateRow
    by_district: list[RateRow]
    by_channel: list[RateRow]
    arrivals: list[datetime]  # first receipt of each reporting row, in order
    missing: list[OverdueRow]  # overdue (or pending) rows with their contacts
    review_count: int
    reminder: ReminderPreview
    marker: str


def _rate(label: str, rows: list[InstitutionStatus]) -> RateRow:
    expected = [r for r in rows if r.status != "exempt"]
    return RateRow(label, len(expected), sum(r.status in REPORTED for r in expected),
                   sum(r.status == Status.ON_TIME for r in expected))  # fmt: skip


def dashboard_data(ctx: Context, as_of: datetime, *, live: bool = False) -> Dashboard:
    """The dashboard as of `as_of`; `live` (as_of is "now"): reuse a result up to a minute old if nothing changed."""
    return _cached(ctx, ("dashboard", None if live else as_of), lambda: _dashboard(ctx, as_of, live), live=live)


def _dashboard(ctx: Context, as_of: datetime, live: bool = False) -> Dashboard:
    marker = change_marker(ctx)
    snap = snapshot(ctx, as_of, live=live)
    rows = list(snap.statuses)
    counts = {str(s): n for s, n in snap.counts().items()}
    groups: dict[str, list[InstitutionStatus]] = {}
    for r in rows:  # one pass: thousands of rows, dozens of districts
        groups.setdefault(r.institution.district or "（市直及其他）", []).append(r)
    by_district = [_rate(d, members) for d, members in groups.items()]
    by_channel = [_rate(label(c), [r for r in rows if r.institution.channel == c]) for c in Channel]
    lines = contact_lines(snap)
    missing = [OverdueRow(r.institution, r.status, lines(r.institution.name), r.needs_review)
               for r in rows if r.status in (Status.OVERDUE, Status.PENDING)]  # fmt: skip
    return Dashboard(
        as_of=as_of,
        deadline=ctx.config.campaign.deadline,
        counts=counts,
        overall=_rate("全部", rows),
        by_district=by_district,
        by_channel=by_channel,
        arrivals=sorted(r.first_received_at for r in rows if r.first_received_at and r.status in REPORTED),
        missing=missing,
        review_count=len(snap.review_items),
        reminder=reminder_preview(ctx, as_of, compose=False, snap=snap),
        marker=marker,
    )


@dataclass(frozen=True, slots=True)
class RosterFilter:
    status: str = ""
    district: str = ""
    channel: str = ""
    needs_review: bool = False
    unconfirmed: bool = False  # sender not yet confirmed (issue 12): no rows match until that exists
    q: str = ""


def roster_rows(ctx: Context, as_of: datetime, f: RosterFilter, *, live: bool = False) -> list[InstitutionStatus]:
    rows = snapshot(ctx, as_of, live=live).statuses
    wanted = normalise(f.q) if f.q.strip() else ""
    unconfirmed = {name for u in unconfirmed_in(snapshot(ctx, as_of, live=live)) for name in u.institutions}
    result = []
    for r in rows:
        inst = r.institution
        if f.status and r.status != f.status:
            continue
        if f.district and inst.district != f.district:
            continue
        if f.channel and inst.channel != f.channel:
            continue
        if f.needs_review and not r.needs_review:
            continue
        if f.unconfirmed and inst.name not in unconfirmed:
            continue
        if wanted and not (f.q.strip() == str(inst.row)
                           or any(wanted in normalise(v) for v in (inst.name, *inst.aliases))):  # fmt: skip
            continue
        result.append(r)
    return result


def districts(ctx: Context) -> list[str]:
    return list(dict.fromkeys(i.district for i in campaign_data(ctx).roster if i.district))


@dataclass
class UnitDetail:
    status: InstitutionStatus
    reminders: list[LedgerRow]
    audit: list[dict]
    contacts: ContactLine


def unit_detail(ctx: Context, as_of: datetime, row: int, *, live: bool = False) -> UnitDetail:
    data = campaign_data(ctx)
    inst = data.roster.by_row.get(row)
    if inst is None:
        raise NotFoundError(f"名单中没有第 {row} 行")
    snap = snapshot(ctx, as_of, live=live)
    names = set(data.roster.group(inst.name))
    reminders = [lr for lr in snap.ledger if names & set(lr.institutions)]
    return UnitDetail(snap.status_of(inst.name), reminders, audit_rows(ctx, institution=inst.name),
                      contact_lines(snap)(inst.name))  # fmt: skip


def review_list(ctx: Context, as_of: datetime, *, live: bool = False) -> list[ReviewItem]:
    """The review queue of the mail received by `as_of`, oldest first."""
    return list(snapshot(ctx, as_of, live=live).review_items)


@dataclass
class ReviewDetail:
    item: ReviewItem
    version: str  # the decisions the clerk sees; the action checks it (已由某某处理)
    position: int  # 1-based in the queue
    total: int
    next_item: str  # the item after this one ("" at the end)
    part: PartView | None
    body_excerpt: str
    suggestion_row: int | None
    notes: list[dict]  # clerks' notes on this item, newest first


def review_detail(ctx: Context, item: str, as_of: datetime, *, live: bool = False) -> ReviewDetail:
    queue = review_list(ctx, as_of, live=live)
    index = next((i for i, q in enumerate(queue) if q.item == item), None)
    if index is None:
        raise NotFoundError(f"条目 {item} 不在待核对列表中（可能已被处理）")
    q = queue[index]
    part, body, notes = None, "", []
    if q.message_id:
        message = message_detail(ctx, q.message_id)
        body = message.parsed.text_body[:3000] if message.parsed else ""
        node = document_path(q.item_path)  # one report of several in a document: shown with its document
        part = next((p for p in message.parts if p.path == node), None)
        notes = [h for h in message.history if h["action"] == Action.NOTE and h["target"] == q.item]
    following = next((n for n in queue[index + 1:] if n.message_id and n.message_id != q.message_id), None)
    if following is not None and following.message_id:
        parse_ahead(ctx, following.message_id)  # the clerk's next item opens without waiting for the sandbox
    suggestion = campaign_data(ctx).roster.by_name.get(q.suggestion) if q.suggestion else None
    return ReviewDetail(q, current_version(ctx, q.message_id) if q.message_id else "", index + 1, len(queue),
                        queue[index + 1].item if index + 1 < len(queue) else "", part, body,
                        suggestion.row if suggestion else None, notes)  # fmt: skip


def settle(ctx: Context, item: str, action: str, institution: str, note: str, *, by: str,
           version: str) -> AssignResult:  # fmt: skip
    """assign | unrelated | undo one review item, refused (ConflictError) if it changed since `version`."""
    return assign_item(ctx, item, institution if action == "assign" else "", by=by, note=note,
                       unrelated=action == Kind.UNRELATED, undo=action == "undo",
                       expect_version=version or None)  # fmt: skip


def note(ctx: Context, item: str, text: str, *, by: str, institution: str = "") -> str:
    """A note on a review item without deciding it (audited under `by`)."""
    return add_note(ctx, item, text, by=by, institution=institution)


def find_institutions(ctx: Context, text: str, limit: int = 12) -> list[Institution]:
    """Roster rows a clerk may mean by a fragment of a name, an alias or a row number."""
    typed = text.strip()
    if not typed:
        return []
    roster = campaign_data(ctx).roster
    if typed.isdigit():
        inst = roster.by_row.get(int(typed))
        return [inst] if inst else []
    key = normalise(typed)
    return [i for i in roster if any(key in normalise(v) for v in (i.name, *i.aliases))][:limit]


@dataclass(frozen=True, slots=True)
class SenderToConfirm:
    """A counted submission from an unknown sender, with what confirming it would teach."""

    sender: UnconfirmedSender
    preview: ConfirmPreview


def unconfirmed_senders(ctx: Context, as_of: datetime | None = None) -> list[SenderToConfirm]:
    """Submissions from senders no clerk has confirmed yet (the same list as `intake senders`)."""
    moment = as_of or datetime.now(ctx.config.campaign.timezone)
    found = unconfirmed_in(snapshot(ctx, moment, live=as_of is None))
    data = campaign_data(ctx)
    return [SenderToConfirm(s, preview_confirmation(ctx, s.item, data=data)) for s in found]


def decide_sender(ctx: Context, item: str, confirm: bool, *, by: str) -> ConfirmResult:
    """A clerk's verdict on a sender: confirm (learning the previewed address) or reject (not counted)."""
    return confirm_sender(ctx, item, by=by, reject=not confirm)


def messages_list(ctx: Context, as_of: datetime, *, live: bool = False, q: str = "", unit: str = "",
                  day_from: str = "", day_to: str = "", limit: int = 500) -> tuple[list[MessageView], int]:  # fmt: skip
    """Messages newest first, filtered by sender/subject text, unit and local dates; (page, total matching)."""
    tz = ctx.config.campaign.timezone
    names: set[str] | None = None
    if unit.strip():
        roster = campaign_data(ctx).roster
        names = set(roster.group(resolve_institution(roster, unit)))
    text = q.strip().lower()
    found = []
    for v in reversed(snapshot(ctx, as_of, live=live).messages):
        m = v.message
        if text and text not in f"{m.sender_name} {m.sender_address} {m.subject}".lower():
            continue
        if names is not None and not names & set(v.institutions):
            continue
        day = m.received_at.astimezone(tz).date().isoformat() if m.received_at else ""
        if (day_from and day < day_from) or (day_to and day > day_to):
            continue
        found.append(v)
    return found[:limit], len(found)


def exemptions(ctx: Context, as_of: datetime, *, live: bool = False) -> dict[str, str]:
    return snapshot(ctx, as_of, live=live).exemptions


def exempt_unit(ctx: Context, institution: str, reason: str, *, undo: bool, by: str) -> ExemptResult:
    return exempt_institution(ctx, institution, reason, by=by, undo=undo)


def reprocess_selected(ctx: Context, *, ids: list[str], all_: bool, needs_review: bool, by: str,
                       as_of: datetime) -> ReprocessSummary:  # fmt: skip
    return reprocess_messages(ctx, Selection(tuple(ids), all_, needs_review, None), by=by, as_of=as_of)


def workbook(ctx: Context, as_of: datetime) -> Path:
    """The workbook as of `as_of`, written under <data dir>/reports/ (as `intake report` does)."""
    return build_workbook(ctx, as_of, snapshot=snapshot(ctx, as_of))


def export_zip(ctx: Context, as_of: datetime, *, by: str) -> tuple[Path, ExportSummary]:
    """Export every current report (audited under `by`) and pack the folder as one zip."""
    folder = ctx.data_dir / "reports" / f"报告文件_{as_of.astimezone(ctx.config.campaign.timezone):%Y%m%d_%H%M%S}"
    summary = export_reports(ctx, folder, as_of=as_of, by=by)
    fd, tmp = tempfile.mkstemp(dir=ctx.data_dir / "reports", prefix=".export-", suffix=".zip")
    with open(fd, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(summary.folder.iterdir()):
            if path.is_file():
                zf.write(path, arcname=path.name)
    target = folder.with_suffix(".zip")
    shutil.move(tmp, target)
    return target, summary


def accounts(ctx: Context) -> list[User]:
    return list_users(ctx)


def add_account(ctx: Context, username: str, role: str, password: str, *, by: str) -> User:
    return add_user(ctx, username, role, password, by=by)


def change_account(ctx: Context, username: str, *, by: str, disabled: bool | None = None, role: str = "",
                   password: str = "") -> None:  # fmt: skip
    if disabled is not None:
        if disabled and username == by:
            raise IntakeError("不能停用自己正在使用的账号")
        set_disabled(ctx, username, disabled, by=by)
    if role:
        set_role(ctx, username, role, by=by)
    if password:
        set_password(ctx, username, password, by=by)


def audit_rows(ctx: Context, *, actor: str = "", institution: str = "", action: str = "") -> list[dict]:
    """Audit entries newest first, filtered by clerk, unit (name, alias or row) and action."""
    roster = campaign_data(ctx).roster
    names = list(roster.group(resolve_institution(roster, institution))) if institution.strip() else None
    rows = audit_records(fetch_trail(ctx, institutions=names))
    out = []
    for r in reversed(rows):
        if actor and r["actor"] != actor:
            continue
        if action and r["action"] != action:
            continue
        out.append({**r, "actor_label": actor_label(r["actor"]), "action_label": label(r["action"], Action)})
    return out
