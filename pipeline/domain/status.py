"""Status of every roster row as of any moment: on_time, late, overdue, pending or exempt.

Derived from the active decisions alone (manual ones outrank automatic ones),
so the spreadsheet, the CLI and the reminders always agree.  The first report
received decides on-time vs late; the latest is the current version.  A report
counts from when the commission's server received the mail that carried it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.roster import Institution, Roster
from pipeline.vocab import Kind, Origin, Status
from storage.decisions import DecisionRow
from storage.messages import ItemRow

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


@dataclass(frozen=True, slots=True)
class InstitutionStatus:
    institution: Institution
    status: str
    submissions: tuple[Submission, ...]  # in receipt order
    needs_review: bool
    review_reasons: tuple[str, ...]
    exempt_reason: str

    @property
    def first(self) -> Submission | None:
        return self.submissions[0] if self.submissions else None

    @property
    def last(self) -> Submission | None:
        return self.submissions[-1] if self.submissions else None

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
) -> list[InstitutionStatus]:
    """Pure: one status per roster row, in roster order."""
    items = items or {}
    by_message: dict[tuple[str, int], list[DecisionRow]] = defaultdict(list)
    review: dict[str, list[str]] = defaultdict(list)
    for d in decisions:
        if d.received_at is None or d.received_at > as_of or not d.institution:
            continue
        names = roster.group(d.institution)
        if d.kind == Kind.REPORT:
            for name in names:
                by_message[(name, d.message_id)].append(d)
                if not d.readable:
                    review[name].append("附件无法读取，请人工核对文件")
        elif d.kind == Kind.NEEDS_REVIEW:
            for name in names:
                review[name].append(d.reason)
    submissions: dict[str, list[Submission]] = defaultdict(list)
    for (name, message_id), reports in by_message.items():
        submissions[name].append(_submission(message_id, reports, items))
    result = []
    for inst in roster:
        subs = tuple(sorted(submissions.get(inst.name, ()), key=lambda s: (s.received_at, s.message_id)))
        reason = exempt.get(inst.name, "")
        if reason:
            status = Status.EXEMPT
        elif subs:
            status = Status.ON_TIME if subs[0].received_at <= deadline else Status.LATE
        else:
            status = Status.OVERDUE if as_of > deadline else Status.PENDING
        reasons = tuple(dict.fromkeys(review.get(inst.name, ())))
        result.append(InstitutionStatus(inst, status, subs, bool(reasons), reasons, reason))
    return result


def _submission(message_id: int, reports: list[DecisionRow], items: dict[tuple[int, str], ItemRow]) -> Submission:
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
    )


def count_by_status(rows: Iterable[InstitutionStatus]) -> dict[Status, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[Status(row.status)] += 1
    return counts
