"""Save and fetch the clerks' verdicts on report senders (confirmed / rejected).

A verdict is about one stored message's sender; it outranks the trust judged at
processing and survives reprocessing (like a manual decision).  Only the latest
active verdict per message counts; undoing deactivates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, insert, select, update

from .db import inserted_id
from .rows import CONFIRMED as CONFIRMED  # defined with the rows (read without SQLAlchemy too)
from .rows import REJECTED as REJECTED
from .schema import now_utc, sender_confirmations


@dataclass(frozen=True, slots=True)
class ConfirmationRow:
    id: int
    message_id: int
    address: str
    institution: str
    verdict: str  # confirmed | rejected
    learned_address: str
    decided_by: str
    decided_at: datetime


def save_confirmation(conn: Connection, message_id: int, *, address: str, institution: str, verdict: str,
                      learned_address: str, by: str) -> int:  # fmt: skip
    """Record a verdict on a message's sender; earlier verdicts on it are deactivated."""
    deactivate_confirmations(conn, message_id)
    return inserted_id(conn.execute(
        insert(sender_confirmations).values(message_id=message_id, address=address, institution=institution,
                                            verdict=verdict, learned_address=learned_address, decided_by=by,
                                            decided_at=now_utc(), active=True)  # fmt: skip
    ))


def deactivate_confirmations(conn: Connection, message_id: int) -> list[ConfirmationRow]:
    """Deactivate a message's active verdicts; returns what was active."""
    active = [r for r in fetch_confirmations(conn) if r.message_id == message_id]
    conn.execute(
        update(sender_confirmations)
        .where(and_(sender_confirmations.c.message_id == message_id, sender_confirmations.c.active.is_(True)))
        .values(active=False)
    )
    return active


def fetch_confirmations(conn: Connection) -> list[ConfirmationRow]:
    """Every active verdict, oldest first."""
    c = sender_confirmations.c
    rows = conn.execute(
        select(c.id, c.message_id, c.address, c.institution, c.verdict, c.learned_address, c.decided_by,
               c.decided_at).where(c.active.is_(True)).order_by(c.id)  # fmt: skip
    )
    return [ConfirmationRow(*r) for r in rows]
