"""The senders waiting for a clerk's confirmation (发件人待确认): their own list, not the review queue.

A report from an address that is not a contact of its institution (`unknown` sender
trust) counts — institutions really do send from personal mailboxes — but a clerk
should confirm the sender once (`intake confirm`, `pipeline.clerk.confirm`), which
also teaches the address.  This is a pure query over a `CampaignSnapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.outputs.review import item_id
from pipeline.outputs.snapshot import CampaignSnapshot
from pipeline.vocab import ItemPath, SenderTrust


@dataclass(frozen=True, slots=True)
class UnconfirmedSender:
    """One counted message whose sender no clerk has confirmed yet."""

    item: str  # the message's ID, as `intake confirm` takes it
    message_id: int
    received_at: datetime | None
    sender: str  # the From: address
    sender_name: str
    subject: str
    institutions: tuple[str, ...]  # roster names it counts for
    filenames: tuple[str, ...]
    current: bool  # it is (one of) its institutions' current version


def unconfirmed_senders(snapshot: CampaignSnapshot) -> list[UnconfirmedSender]:
    """Counted submissions from `unknown` senders without a clerk's verdict, in receipt order."""
    decided = {c.message_id for c in snapshot.confirmations}
    by_message: dict[int, list] = {}
    current_ids: set[int] = set()
    for row in snapshot.statuses:
        if row.current is not None:
            current_ids.add(row.current.message_id)
        for sub in row.submissions:
            if sub.sender_trust == SenderTrust.UNKNOWN and sub.message_id not in decided:
                by_message.setdefault(sub.message_id, []).append((row.institution.name, sub))
    messages = {v.message.id: v.message for v in snapshot.messages}
    found = []
    for message_id, entries in by_message.items():
        message = messages.get(message_id)
        if message is None:
            continue
        found.append(UnconfirmedSender(
            item=item_id(message_id, ItemPath.MESSAGE), message_id=message_id, received_at=message.received_at,
            sender=message.sender_address, sender_name=message.sender_name, subject=message.subject,
            institutions=tuple(dict.fromkeys(name for name, _ in entries)),
            filenames=tuple(dict.fromkeys(f for _, sub in entries for f in sub.filenames)),
            current=message_id in current_ids))  # fmt: skip
    far_future = datetime.max.replace(tzinfo=snapshot.as_of.tzinfo)
    return sorted(found, key=lambda u: (u.received_at or far_future, u.message_id))
