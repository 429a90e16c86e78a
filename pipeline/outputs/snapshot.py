"""The campaign as of one moment: built once, read by every output.

`build_snapshot(ctx, as_of)` reads the stored facts once (messages, active
decisions, items, exemptions, mailbox failures, the outgoing-mail ledger, the
audit trail) and computes every status with the pure rules of
`pipeline.domain.status`.  What `as_of` cuts: mail received after it (and so its
decisions and review items), mailbox failures recorded after it, and outgoing
mail computed for a later moment.  What it does not cut: the clerks' standing
decisions (manual attributions, exemptions) and the audit trail, which are the
commission's knowledge now, applied to any moment alike.  The status listing, the
workbook, the digest, the export, the reminders, the audit of status changes
and the console read a snapshot; none of them queries decisions itself, so
they cannot disagree, and `as_of` applies to every sheet alike.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.context import Context
from pipeline.domain.contacts import Contact
from pipeline.domain.roster import Roster
from pipeline.domain.status import InstitutionStatus, compute_status, count_by_status
from pipeline.labels_zh import label
from pipeline.outputs.quick_status import exempt_reasons, sender_verdicts
from pipeline.outputs.review import ReviewItem, build_review_items, item_id
from pipeline.outputs.views import MessageView, build_views
from pipeline.vocab import ItemPath, SenderTrust, Status
from storage.audit import AuditRow, fetch_audit
from storage.confirmations import ConfirmationRow, fetch_confirmations
from storage.decisions import fetch_decisions
from storage.exemptions import fetch_exemptions
from storage.imapstate import fetch_failures
from storage.ledger import LedgerRow, fetch_ledger
from storage.messages import fetch_item_index, fetch_messages
from storage.rows import DecisionRow, ItemRow, MessageRow


@dataclass(frozen=True)
class CampaignSnapshot:
    """Everything the outputs show, as of `as_of`."""

    as_of: datetime
    deadline: datetime
    roster: Roster
    statuses: tuple[InstitutionStatus, ...]  # one per roster row, in roster order
    messages: tuple[MessageView, ...]  # received by `as_of` (or at an unknown time), in receipt order
    review_items: tuple[ReviewItem, ...]  # the review queue of those messages
    exemptions: dict[str, str]  # roster name -> reason
    ledger: tuple[LedgerRow, ...]  # outgoing mail computed for a moment up to `as_of`
    audit: tuple[AuditRow, ...]  # the whole audit trail, oldest first
    items: dict[tuple[int, str], ItemRow] = field(repr=False, default_factory=dict)
    confirmations: tuple[ConfirmationRow, ...] = ()  # the clerks' active verdicts on report senders
    contacts: tuple[Contact, ...] = ()  # contacts.csv and learned addresses (empty when built from a roster only)
    _by_name: dict[str, InstitutionStatus] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {s.institution.name: s for s in self.statuses})

    def status_of(self, name: str) -> InstitutionStatus:
        """The status row of a roster name (KeyError for a name not on the roster)."""
        return self._by_name[name]

    def counts(self) -> dict[Status, int]:
        return count_by_status(self.statuses)

    def with_status(self, *wanted: Status) -> Iterator[InstitutionStatus]:
        return (s for s in self.statuses if s.status in wanted)


@dataclass(frozen=True)
class MailFacts:
    """The stored mail and the active decisions on it, uncut by any moment: the bulk of a snapshot's
    reads.  A long-lived reader (the console) may keep them between snapshots and pass them in."""

    messages: tuple[MessageRow, ...]  # every message, in receipt order (as fetch_messages)
    decisions: tuple[DecisionRow, ...]  # active ones, in fetch_decisions' order
    items: dict[tuple[int, str], ItemRow]


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a snapshot is built: it makes hundreds of thousands of rows,
    none in a cycle, and the collector walking them again and again was nearly half the time at 100,000
    mails.  Refcounting still frees what is dropped; the collector runs again afterwards."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def build_snapshot(ctx: Context, as_of: datetime, *, data: CampaignData | None = None,
                   roster: Roster | None = None, mail: MailFacts | None = None) -> CampaignSnapshot:  # fmt: skip
    """Read the stored facts once and compute the campaign as of `as_of`.

    Pass the job's `data` (or just a `roster`) to reuse what is already loaded, and `mail` to use
    mail facts read just before instead of reading them here.
    """
    with _cyclic_gc_paused():
        return _build_snapshot(ctx, as_of, data=data, roster=roster, mail=mail)


def _build_snapshot(ctx: Context, as_of: datetime, *, data: CampaignData | None,
                    roster: Roster | None, mail: MailFacts | None) -> CampaignSnapshot:  # fmt: skip
    if roster is None:
        data = data or load_campaign_data(ctx)
        roster = data.roster
    contacts = data.contacts if data is not None else ()
    with ctx.db.connect() as conn:
        if mail is None:
            mail = MailFacts(tuple(fetch_messages(conn)), tuple(fetch_decisions(conn)), fetch_item_index(conn))
        messages = [m for m in mail.messages if m.received_at is None or m.received_at <= as_of]
        decisions, items = list(mail.decisions), mail.items
        clerk_exempt = {name: e.reason for name, e in fetch_exemptions(conn).items()}
        failures = fetch_failures(conn)  # still in the mailbox: a fact of now, like the clerks' decisions
        ledger = tuple(r for r in fetch_ledger(conn) if (r.as_of or r.created_at) <= as_of)
        audit = tuple(fetch_audit(conn))
        confirmations = tuple(fetch_confirmations(conn))
    campaign = ctx.config.campaign
    exemptions = exempt_reasons(roster.exempt_names, clerk_exempt)
    verdicts = sender_verdicts((c.message_id, c.verdict) for c in confirmations)
    statuses = compute_status(roster, decisions, deadline=campaign.deadline, as_of=as_of, exempt=exemptions,
                              items=items, confirmations=verdicts)  # fmt: skip
    views = build_views(messages, decisions)
    return CampaignSnapshot(
        as_of=as_of,
        deadline=campaign.deadline,
        roster=roster,
        statuses=tuple(statuses),
        messages=tuple(views),
        review_items=(*build_review_items(views, items, failures), *_impostor_items(statuses, views, items)),
        exemptions=exemptions,
        ledger=ledger,
        audit=audit,
        items=items,
        confirmations=confirmations,
        contacts=contacts,
    )


def _impostor_items(statuses: list[InstitutionStatus], views: list[MessageView],
                    items: dict[tuple[int, str], ItemRow]) -> list[ReviewItem]:  # fmt: skip
    """Review items for later submissions that did not replace a more trusted current version."""
    by_id = {v.message.id: v.message for v in views}
    found: list[ReviewItem] = []
    seen: set[tuple[int, str]] = set()
    for row in statuses:
        for sub in row.impostors:
            message = by_id.get(sub.message_id)
            path = sub.item_paths[0] if sub.item_paths else ItemPath.MESSAGE
            if message is None or (sub.message_id, path) in seen:
                continue
            seen.add((sub.message_id, path))
            item = items.get((sub.message_id, path))
            current = row.current.sender if row.current else ""
            found.append(ReviewItem(
                item=item_id(sub.message_id, path), message_id=sub.message_id, item_path=path,
                received_at=message.received_at, sender=message.sender_address, subject=message.subject,
                filename=item.filename if item else "",
                reason=f"可能冒名：发件人（{label(sub.sender_trust or SenderTrust.UNKNOWN, SenderTrust)}）"
                       f"不如当前版本的发件人 {current} 可信，未替换当前版本",
                suggestion=row.institution.name, evidence=(), counted=True))  # fmt: skip
    return found
