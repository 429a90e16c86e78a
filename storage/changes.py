"""A cheap marker that changes whenever the facts a clerk sees change.

The console's dashboard polls it: a handful of primary-key maxima and counts,
each answered from an index, so polling every few seconds costs next to nothing.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from .schema import (
    audit_log,
    decisions,
    exemptions,
    imap_failures,
    learned_contacts,
    mail_ledger,
    message_sources,
    messages,
)
from .vocab import ParseState


def fetch_change_marker(conn: Connection) -> str:
    """A string that differs after any new message, decision, audit entry, outbox row, exemption,
    mailbox failure or learned address.

    Status changes, manual decisions and exemptions are all audited, reprocessing writes new
    decision rows, and ledger rows change status in place (hence the ledger's max sent_at).
    """
    parts = [
        conn.execute(select(func.max(messages.c.id))).scalar(),
        conn.execute(select(func.count()).select_from(messages).where(messages.c.parse_status == ParseState.PENDING)).scalar(),
        conn.execute(select(func.max(decisions.c.id))).scalar(),
        conn.execute(select(func.max(audit_log.c.id))).scalar(),
        conn.execute(select(func.max(mail_ledger.c.id))).scalar(),
        conn.execute(select(func.max(mail_ledger.c.sent_at))).scalar(),
        conn.execute(select(func.count()).select_from(exemptions)).scalar(),
        conn.execute(select(func.max(imap_failures.c.id))).scalar(),
        conn.execute(select(func.count()).select_from(imap_failures).where(imap_failures.c.resolved.is_(False))).scalar(),
        conn.execute(select(func.max(learned_contacts.c.id))).scalar(),
        conn.execute(select(func.count()).select_from(learned_contacts)).scalar(),
    ]
    return "-".join("" if p is None else str(p) for p in parts)



def fetch_mail_marker(conn: Connection) -> tuple[int, int, frozenset[int]]:
    """(max message id, max message-source id, ids of messages still pending): with
    `fetch_active_decision_ids` and `fetch_sourced_since`, what a reader that keeps the stored mail
    between reads needs to find the messages to read again (new ones, ones processed or failed
    since, ones a second source may have given a better receipt time)."""
    pending = conn.execute(select(messages.c.id).where(messages.c.parse_status == ParseState.PENDING)).scalars()
    return (
        conn.execute(select(func.max(messages.c.id))).scalar() or 0,
        conn.execute(select(func.max(message_sources.c.id))).scalar() or 0,
        frozenset(pending),
    )


def fetch_sourced_since(conn: Connection, after_source_id: int) -> set[int]:
    """Messages with a source recorded after `after_source_id` (a duplicate arrival may move a receipt time)."""
    rows = conn.execute(select(message_sources.c.message_id).where(message_sources.c.id > after_source_id))
    return set(rows.scalars())


def fetch_active_decision_ids(conn: Connection) -> dict[int, int]:
    """Every active decision's id -> its message id (one index scan): a reader keeping the decisions
    between reads finds the messages whose decisions were added, replaced or deactivated."""
    rows = conn.execute(select(decisions.c.id, decisions.c.message_id).where(decisions.c.active.is_(True)))
    return dict(rows.tuples().all())
