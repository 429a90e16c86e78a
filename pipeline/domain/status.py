"""Status of every roster row as of any moment: on_time, late, overdue, pending or exempt.

Derived from the active decisions alone (manual ones outrank automatic ones),
so the spreadsheet, the CLI and the reminders always agree.  The first report
received decides on-time vs late; the latest is the current version — except
that a later submission from a weaker sender trust never replaces the current
version from a stronger one: it is kept as a possible impostor and listed for
review.  A report counts from when the commission's server received the mail
that carried it; a report whose sender failed authentication (or that a clerk
rejected) never counts.  A review item holds an institution (needs_review, so
no reminder) only when its evidence for that institution is strong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.evidence import ACCEPT_SCORE, evidence_strength
from pipeline.domain.roster import Institution, Roster
from pipeline.domain.senders import trust_rank
from pipeline.vocab import Kind, Origin, SenderTrust, Status
from storage.rows import DecisionRow, ItemRow

STATUSES = tuple(Status)


@dataclass(frozen=True, slots=True)
class Submission:
    """One message that carried an institution's report (a Word file and its PDF scan are one submission)."""

    message_id: int
    item_paths: tuple[str, ...]  # the most complete readable report item first
    received_at: datetime
    sender: str
    filenames: tuple[str, ...]
    sections: dict  # of the most complete report item in the message
    readable: bool  # False when no item of it could be read
    via_bureau: str
    origin: str
    sender_trust: str = ""  # the strongest SenderTrust among its report decisions ("" = not judged)


@dataclass(frozen=True, slots=True)
class InstitutionStatus:
    institution: Institution
    status: str
    submissions: tuple[Submission, ...]  # in receipt order
    needs_review: bool
    review_reasons: tuple[str, ...]
    exempt_reason: str
    current: Submission | None = None  # the current version (see the module docstring)
    impostors: tuple[Submission, ...] = ()  # later submissions from weaker senders, not current

    @property
    def first(self) -> Submission | None:
        return self.submissions[0] if self.submissions else None

    @property
    def last(self) -> Submission | None:
        """The current version: the latest submission not outranked by an earlier, more trusted one."""
        return self.current

    @property
    def sender_trust(self) -> str:
        """The current version's sender trust ("" when nothing is counted)."""
        return self.current.sender_trust if self.current else ""

    @property
    def first_received_at(self) -> datetime | None:
        return self.first.received_at if self.first else None

    @property
    def last_received_at(self) -> datetime | None:
        return self.last.received_at if self.last else None


def compute_status(
    roster: Roster,
    decisions: list[DecisionRow],
    *,
    deadline: datetime,
    as_of: datetime,
    exempt: dict[str, str],
    items: dict[tuple[int, str], ItemRow] | None = None,
    confirmations: Mapping[int, str] | None = None,
) -> list[InstitutionStatus]:
    """Pure: one status per roster row, in roster order.

    `confirmations` maps a message id to the clerks' verdict on its sender (`known` when
    confirmed, `failed` when rejected), which outranks the trust judged at processing.
    """
    items = items or {}
    confirmations = confirmations or {}
    by_message: dict[tuple[str, int], list[DecisionRow]] = defaultdict(list)
    review: dict[str, list[str]] = defaultdict(list)
    for d in decisions:
        if d.received_at is None or d.received_at > as_of or not d.institution:
            continue
        names = roster.group(d.institution)
        if d.kind == Kind.REPORT:
            trust = _trust(d, confirmations)
            if trust == SenderTrust.FAILED:
                continue  # never counted
            for name in names:
                by_message[(name, d.message_id)].append(d)
                if not d.readable:
                    review[name].append("附件无法读取，请人工核对文件")
        elif d.kind == Kind.NEEDS_REVIEW and _holds(d):
            # Weak evidence (a name merely mentioned) is listed for review but holds nobody's reminders.
            for name in names:
                review[name].append(d.reason)
    submissions: dict[str, list[Submission]] = defaultdict(list)
    for (name, message_id), reports in by_message.items():
        submissions[name].append(_submission(message_id, reports, items, confirmations))
    result = []
    for inst in roster:
        subs = tuple(sorted(submissions.get(inst.name, ()), key=lambda s: (s.received_at, s.message_id)))
        current, impostors = current_version(subs)
        for sub in impostors:
            review[inst.name].append(
                f"可能冒名：{sub.sender or '（无发件人）'} 的报告（发件人可信度低于当前版本）未替换当前版本，请核对"
            )
        reason = exempt.get(inst.name, "")
        if reason:
            status = Status.EXEMPT
        elif subs:
            status = Status.ON_TIME if subs[0].received_at <= deadline else Status.LATE
        else:
            status = Status.OVERDUE if as_of > deadline else Status.PENDING
        reasons = tuple(dict.fromkeys(review.get(inst.name, ())))
        result.append(InstitutionStatus(inst, status, subs, bool(reasons), reasons, reason, current, impostors))
    return result


def _holds(d: DecisionRow) -> bool:
    """Whether a review item holds its institution: only strong evidence (a title, a 报送单位 line, a
    filename) does — a name merely mentioned must not silence anybody's reminders.  A decision that
    carries no evidence at all (recorded by hand) holds, as before."""
    return not d.evidence or evidence_strength(d, d.institution) >= ACCEPT_SCORE


def current_version(subs: tuple[Submission, ...]) -> tuple[Submission | None, tuple[Submission, ...]]:
    """(current version, later submissions that did not replace it) of submissions in receipt order.

    A submission replaces the current one unless its sender is less trusted; those that do
    not are possible impostors (a stranger's `.docm` after a hospital's genuine report).
    """
    current: Submission | None = None
    impostors: list[Submission] = []
    for sub in subs:
        if current is None or trust_rank(sub.sender_trust) >= trust_rank(current.sender_trust):
            current = sub
        else:
            impostors.append(sub)
    return current, tuple(impostors)


def _trust(d: DecisionRow, confirmations: Mapping[int, str]) -> str:
    """A decision's sender trust after the clerks' verdict on its message's sender."""
    verdict = confirmations.get(d.message_id, "")
    if verdict == SenderTrust.FAILED:
        return SenderTrust.FAILED
    if verdict and trust_rank(verdict) > trust_rank(d.sender_trust):
        return verdict
    return d.sender_trust


def _submission(message_id: int, reports: list[DecisionRow], items: dict[tuple[int, str], ItemRow],
                confirmations: Mapping[int, str] | None = None) -> Submission:  # fmt: skip
    reports = sorted(reports, key=lambda d: (not d.readable, -sum(bool(v) for v in d.sections.values())))
    best = reports[0]
    names = []
    for d in reports:
        item = items.get((message_id, d.item_path))
        names.append(item.filename if item and item.filename else "（正文）")
    return Submission(
        message_id=message_id,
        item_paths=tuple(d.item_path for d in reports),
        received_at=best.received_at,  # type: ignore[arg-type]  # compute_status skips undated decisions
        sender=best.sender_address,
        filenames=tuple(dict.fromkeys(names)),
        sections=best.sections,
        readable=any(d.readable for d in reports),
        via_bureau=best.via_bureau,
        origin=Origin.MANUAL if any(d.origin == Origin.MANUAL for d in reports) else Origin.AUTO,
        sender_trust=max((_trust(d, confirmations or {}) for d in reports), key=trust_rank),
    )


def count_by_status(rows: Iterable[InstitutionStatus]) -> dict[Status, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[Status(row.status)] += 1
    return counts
