"""Save and fetch the audit trail, and the small state values it keeps in worker_state.

Every manual act of a clerk (assign, mark unrelated, undo, exempt, reprocess,
export) and every automatic status change is one `audit_log` row: who, when,
what, on which item/institution, why, with details as JSON.  Rows are only
ever added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from storage.db import inserted_id

from .schema import audit_log, now_utc, worker_state

SYSTEM_ACTOR = "system"


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    institution: str
    details: dict
    reason: str


def save_audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str = "",
    institution: str = "",
    details: dict | None = None,
    reason: str = "",
    at: datetime | None = None,
) -> int:
    """Append one audit entry; returns its id."""
    return inserted_id(conn.execute(
        insert(audit_log).values(
            at=at or now_utc(),
            actor=actor,
            action=action,
            target=target,
            institution=institution,
            details=details or {},
            reason=reason,
        )
    ))


def fetch_audit(
    conn: Connection,
    *,
    institutions: Iterable[str] | None = None,
    actions: Iterable[str] | None = None,
    since: datetime | None = None,
) -> Iterator[AuditRow]:
    """Audit entries, oldest first; optionally only those about some institutions or actions."""
    query = select(audit_log).order_by(audit_log.c.at, audit_log.c.id)
    wanted = set(institutions) if institutions is not None else None
    if actions is not None:
        query = query.where(audit_log.c.action.in_(list(actions)))
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    for r in conn.execute(query):
        # `institution` holds one roster name, or several joined by ";" (an act on a bulk mail).
        if wanted is not None and not wanted.intersection(r.institution.split(";")):
            continue
        yield AuditRow(r.id, r.at, r.actor, r.action, r.target, r.institution, r.details or {}, r.reason)


def fetch_state(conn: Connection, key: str) -> str | None:
    """A value from worker_state, or None."""
    return conn.execute(select(worker_state.c.value).where(worker_state.c.key == key)).scalar()


def save_state(conn: Connection, key: str, value: str) -> None:
    """Set a worker_state value (delete + insert: portable across SQLite and PostgreSQL)."""
    conn.execute(delete(worker_state).where(worker_state.c.key == key))
    conn.execute(insert(worker_state).values(key=key, value=value, updated_at=now_utc()))
