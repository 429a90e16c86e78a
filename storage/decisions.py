"""Save and fetch decisions: what each message or item is, and whose report it is.

Automatic decisions of a message are replaced as a whole on every (re)process;
manual decisions (origin "manual") are only added or deactivated by a clerk's
act, and outrank automatic ones for the same item.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, and_, delete, insert, select, update

from storage.db import inserted_id
from storage.overrides import without_overridden
from storage.rows import Decision, DecisionRow
from storage.vocab import Origin

from .schema import decisions, messages, now_utc

# DecisionRow's fields as columns, in order: rows are built positionally (per-key access to
# Row._mapping cost more than the query on 100,000 decisions).
_MESSAGE_FIELDS = ("received_at", "sender_address", "subject")
_DECISION_COLUMNS = tuple(
    messages.c[name] if name in _MESSAGE_FIELDS else decisions.c[name] for name in DecisionRow.__slots__
)


def replace_auto_decisions(conn: Connection, message_id: int, new: Iterable[Decision]) -> None:
    conn.execute(delete(decisions).where(and_(decisions.c.message_id == message_id, decisions.c.origin == Origin.AUTO)))
    now = now_utc()
    rows = [
        dict(
            message_id=message_id,
            item_path=d.item_path,
            kind=d.kind,
            institution=d.institution,
            confidence=d.confidence,
            evidence=d.evidence,
            reason=d.reason,
            sections=d.sections,
            readable=d.readable,
            via_bureau=d.via_bureau,
            sender_trust=d.sender_trust,
            origin=Origin.AUTO,
            decided_by="",
            decided_at=now,
            note="",
            active=True,
        )
        for d in new
    ]
    if rows:
        conn.execute(insert(decisions), rows)


def save_manual_decision(conn: Connection, message_id: int, decision: Decision, *, by: str, note: str = "") -> int:
    """Record a clerk's decision for an item; earlier manual decisions for it are deactivated."""
    conn.execute(
        update(decisions)
        .where(
            and_(
                decisions.c.message_id == message_id,
                decisions.c.item_path == decision.item_path,
                decisions.c.origin == Origin.MANUAL,
                decisions.c.active.is_(True),
            )
        )
        .values(active=False)
    )
    return inserted_id(conn.execute(
        insert(decisions).values(
            message_id=message_id,
            item_path=decision.item_path,
            kind=decision.kind,
            institution=decision.institution,
            confidence=1.0,
            evidence=decision.evidence,
            reason=decision.reason,
            sections=decision.sections,
            readable=decision.readable,
            via_bureau=decision.via_bureau,
            sender_trust=decision.sender_trust,
            origin=Origin.MANUAL,
            decided_by=by,
            decided_at=now_utc(),
            note=note,
            active=True,
        )
    ))


def deactivate_manual_decisions(conn: Connection, message_id: int, item_path: str) -> int:
    """Undo a clerk's decision for an item; returns how many were deactivated."""
    result = conn.execute(
        update(decisions)
        .where(
            and_(
                decisions.c.message_id == message_id,
                decisions.c.item_path == item_path,
                decisions.c.origin == Origin.MANUAL,
                decisions.c.active.is_(True),
            )
        )
        .values(active=False)
    )
    return result.rowcount


def fetch_decisions(conn: Connection, *, message_id: int | None = None) -> Iterator[DecisionRow]:
    """Active decisions, joined with their message's receipt time, sender and subject.

    Where a manual decision exists for an item, the automatic ones for that item are left out.
    """
    query = (
        select(*_DECISION_COLUMNS)
        .join(messages, messages.c.id == decisions.c.message_id)
        .where(decisions.c.active.is_(True))
        .order_by(messages.c.received_at, decisions.c.message_id, decisions.c.id)
    )
    if message_id is not None:
        query = query.where(decisions.c.message_id == message_id)
    # Columns selected in field order; fetchall: one C loop, not a fetchone per row.
    yield from without_overridden([DecisionRow(*r) for r in conn.execute(query).fetchall()])
