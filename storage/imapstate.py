"""Save and fetch the IMAP worker's state: folder checkpoints, fetch failures, worker status.

Every function takes an open connection; callers write inside `Database.begin()`
so a checkpoint moves in one short, durable transaction (SQLite: BEGIN
IMMEDIATE, WAL, synchronous=FULL) — the database plays the part of getmail's
and mbsync's fsync'd state file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, insert, select, update

from .schema import imap_failures, imap_folders, now_utc, worker_state


@dataclass(frozen=True, slots=True)
class Checkpoint:
    folder: str
    uidvalidity: int | None  # None when the server sent no UIDVALIDITY
    last_uid: int  # highest UID whose message (or failure row) is committed
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FailureRow:
    folder: str
    uidvalidity: int | None
    uid: int
    size: int | None
    reason: str
    attempts: int
    resolved: bool
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class StateValue:
    value: str
    updated_at: datetime


def _same_validity(column, uidvalidity: int | None):  # noqa: ANN001, ANN202 - SQLAlchemy expressions
    return column.is_(None) if uidvalidity is None else column == uidvalidity


# --- folder checkpoints -------------------------------------------------------------


def fetch_checkpoint(conn: Connection, folder: str) -> Checkpoint | None:
    r = conn.execute(select(imap_folders).where(imap_folders.c.folder == folder)).first()
    return Checkpoint(r.folder, r.uidvalidity, r.last_uid, r.updated_at) if r else None


def save_checkpoint(conn: Connection, folder: str, uidvalidity: int | None, last_uid: int) -> None:
    """Set a folder's checkpoint outright (first sync, or a reset after UIDVALIDITY changed)."""
    values = {"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": now_utc()}
    done = conn.execute(update(imap_folders).where(imap_folders.c.folder == folder).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(imap_folders).values(folder=folder, **values))


def advance_checkpoint(conn: Connection, folder: str, uidvalidity: int | None, last_uid: int) -> bool:
    """Move `last_uid` forward, never back, and only within the same UIDVALIDITY.

    Two pollers on one data dir (a manual `intake poll` beside the worker) can
    therefore never rewind each other.  Returns whether the row moved.
    """
    done = conn.execute(
        update(imap_folders)
        .where(
            and_(
                imap_folders.c.folder == folder,
                _same_validity(imap_folders.c.uidvalidity, uidvalidity),
                imap_folders.c.last_uid < last_uid,
            )
        )
        .values(last_uid=last_uid, updated_at=now_utc())
    )
    return done.rowcount > 0


# --- failures -----------------------------------------------------------------------


def _failure(r) -> FailureRow:  # noqa: ANN001 - a SQLAlchemy Row
    return FailureRow(r.folder, r.uidvalidity, r.uid, r.size, r.reason, r.attempts, r.resolved, r.recorded_at)


def _failure_key(folder: str, uidvalidity: int | None, uid: int):  # noqa: ANN202
    return and_(
        imap_failures.c.folder == folder,
        _same_validity(imap_failures.c.uidvalidity, uidvalidity),
        imap_failures.c.uid == uid,
    )


def save_failure(
    conn: Connection, folder: str, uidvalidity: int | None, uid: int, *, size: int | None, reason: str
) -> int:
    """Record that a UID could not be stored (again); returns the attempts so far."""
    key = _failure_key(folder, uidvalidity, uid)
    row = conn.execute(select(imap_failures.c.id, imap_failures.c.attempts).where(key)).first()
    if row is None:
        conn.execute(
            insert(imap_failures).values(
                folder=folder, uidvalidity=uidvalidity, uid=uid, size=size, reason=reason,
                attempts=1, resolved=False, recorded_at=now_utc(),
            )
        )  # fmt: skip
        return 1
    conn.execute(
        update(imap_failures)
        .where(imap_failures.c.id == row.id)
        .values(size=size, reason=reason, attempts=row.attempts + 1, resolved=False, recorded_at=now_utc())
    )
    return row.attempts + 1


def resolve_failures(conn: Connection, folder: str, uidvalidity: int | None, uids: Iterable[int]) -> int:
    """Mark failures of these UIDs resolved (their messages are now stored); returns how many."""
    uid_list = list(uids)
    if not uid_list:
        return 0
    done = conn.execute(
        update(imap_failures)
        .where(
            and_(
                imap_failures.c.folder == folder,
                _same_validity(imap_failures.c.uidvalidity, uidvalidity),
                imap_failures.c.uid.in_(uid_list),
                imap_failures.c.resolved.is_(False),
            )
        )
        .values(resolved=True)
    )
    return done.rowcount


def supersede_failures(conn: Connection, folder: str, uidvalidity: int | None) -> int:
    """Close a folder's failures from an older UIDVALIDITY: the rescan meets those messages again."""
    cond = (
        imap_failures.c.uidvalidity.is_not(None)
        if uidvalidity is None
        else (imap_failures.c.uidvalidity.is_(None) | (imap_failures.c.uidvalidity != uidvalidity))
    )
    done = conn.execute(
        update(imap_failures)
        .where(and_(imap_failures.c.folder == folder, cond, imap_failures.c.resolved.is_(False)))
        .values(resolved=True)
    )
    return done.rowcount


def fetch_failures(
    conn: Connection, *, folder: str | None = None, unresolved: bool = True
) -> list[FailureRow]:
    query = select(imap_failures).order_by(imap_failures.c.folder, imap_failures.c.uid)
    if folder is not None:
        query = query.where(imap_failures.c.folder == folder)
    if unresolved:
        query = query.where(imap_failures.c.resolved.is_(False))
    return [_failure(r) for r in conn.execute(query)]


def fetch_retryable_failures(
    conn: Connection, folder: str, uidvalidity: int | None, *, max_attempts: int, max_size: int
) -> list[FailureRow]:
    """Unresolved failures worth another try: fewer than `max_attempts`, and not (still) too large."""
    query = (
        select(imap_failures)
        .where(
            and_(
                imap_failures.c.folder == folder,
                _same_validity(imap_failures.c.uidvalidity, uidvalidity),
                imap_failures.c.resolved.is_(False),
                imap_failures.c.attempts < max_attempts,
                imap_failures.c.size.is_(None) | (imap_failures.c.size <= max_size),
            )
        )
        .order_by(imap_failures.c.uid)
    )
    return [_failure(r) for r in conn.execute(query)]


# --- worker state -------------------------------------------------------------------


def save_state(conn: Connection, key: str, value: str) -> None:
    values = {"value": value, "updated_at": now_utc()}
    done = conn.execute(update(worker_state).where(worker_state.c.key == key).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(worker_state).values(key=key, **values))


def fetch_state(conn: Connection, key: str) -> StateValue | None:
    r = conn.execute(select(worker_state).where(worker_state.c.key == key)).first()
    return StateValue(r.value, r.updated_at) if r else None
