"""A cheap marker that changes whenever the facts a clerk sees change.

The console's dashboard polls it: a handful of primary-key maxima and counts,
each answered from an index, so polling every few seconds costs next to nothing.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from .schema import audit_log, decisions, exemptions, imap_failures, learned_contacts, mail_ledger, messages
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
