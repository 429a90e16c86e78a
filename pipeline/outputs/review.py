"""The review queue as a view: every item that needs a human, with its reason, evidence and a short stable ID.

An item ID is "<message id>" for a whole message or "<message id>:<item path>"
for an attachment ("12:2/1" is the first member of the zip attached as part 2
of message 12).  IDs depend only on the stored bytes, so they survive reprocessing.
The queue is built from message views by `build_review_items` (pure); the
campaign snapshot holds the queue as of its moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pipeline.errors import NotFoundError
from pipeline.outputs.views import MessageView
from pipeline.vocab import ItemPath, Kind, Origin, ParseState
from storage.imapstate import FailureRow
from storage.rows import ItemRow


@dataclass(frozen=True, slots=True)
class ReviewItem:
    item: str
    message_id: int
    item_path: str
    received_at: datetime | None
    sender: str
    subject: str
    filename: str
    reason: str
    suggestion: str
    evidence: tuple[dict, ...]
    counted: bool  # the report already counts (e.g. unreadable but identified): a check, not a blocker


def item_id(message_id: int, item_path: str) -> str:
    return str(message_id) if item_path == ItemPath.MESSAGE else f"{message_id}:{item_path}"


def parse_item_id(text: str) -> tuple[int, str]:
    head, _, path = text.strip().partition(":")
    if not head.isdigit():
        raise NotFoundError(f"条目编号格式不对：{text!r}（例：12 或 12:2）")
    return int(head), path or ItemPath.MESSAGE


def _mailbox_item(failure: FailureRow) -> ReviewItem:
    """A message the worker could not take in from the mailbox (too large, or its fetch keeps failing)."""
    size = f"，{failure.size:,} 字节" if failure.size else ""
    return ReviewItem(
        item=f"imap:{failure.folder}/{failure.uid}",
        message_id=0,
        item_path=ItemPath.MESSAGE,
        received_at=failure.recorded_at,
        sender="",
        subject="",
        filename="",
        reason=f"邮箱中的邮件未能收取（文件夹 {failure.folder}，UID {failure.uid}{size}）：{failure.reason}；"
        f"已试 {failure.attempts} 次，请在邮件客户端中查看",
        suggestion="",
        evidence=(),
        counted=False,
    )


def build_review_items(
    views: Iterable[MessageView],
    items: dict[tuple[int, str], ItemRow],
    imap_failures: Iterable[FailureRow] = (),
    *,
    include_checks: bool = True,
) -> list[ReviewItem]:
    """Items waiting for a clerk, mailbox failures first, then messages in the order given.

    With `include_checks`, reports that already count but could not be read are listed too
    (a check for the clerk, not a blocker).
    """
    queue: list[ReviewItem] = [_mailbox_item(f) for f in imap_failures]
    for view in views:
        m = view.message
        sender = f"{m.sender_name} <{m.sender_address}>" if m.sender_name else m.sender_address
        if m.parse_status == ParseState.FAILED:
            if any(d.origin == Origin.MANUAL and d.item_path == ItemPath.MESSAGE for d in view.decisions):
                continue  # a clerk has settled the unreadable message as a whole
            queue.append(ReviewItem(item_id(m.id, ItemPath.MESSAGE), m.id, ItemPath.MESSAGE, m.received_at, sender,
                                    m.subject, "", m.parse_error or "解析失败", "", (), False))  # fmt: skip
            continue
        for d in view.decisions:
            flagged = d.kind == Kind.REPORT and not d.readable and d.origin == Origin.AUTO
            if d.kind != Kind.NEEDS_REVIEW and not (flagged and include_checks):
                continue
            item = items.get((m.id, d.item_path))
            queue.append(
                ReviewItem(
                    item=item_id(m.id, d.item_path),
                    message_id=m.id,
                    item_path=d.item_path,
                    received_at=m.received_at,
                    sender=sender,
                    subject=m.subject,
                    filename=item.filename if item else "",
                    reason=d.reason,
                    suggestion=d.institution,
                    evidence=tuple(d.evidence),
                    counted=d.kind == Kind.REPORT,
                )
            )
    return queue
