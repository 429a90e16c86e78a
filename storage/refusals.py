"""Files `intake ingest` refused as not being mail: saved and fetched here (table ingest_refusals).

A refusal is a fact the clerk must be able to see later (`intake refused`, `intake health`),
not only a line on one run's output.  The same file refused again (same path, same bytes)
is one row whose `last_seen_at` and `times` move on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from storage.schema import ingest_refusals, now_utc


@dataclass(frozen=True, slots=True)
class RefusalRow:
    ref: str
    sha256: str
    size: int | None
    reason: str  # storage.vocab.Refusal
    detail: str
    first_seen_at: datetime
    last_seen_at: datetime
    times: int


@dataclass(frozen=True, slots=True)
class NewRefusal:
    ref: str
    sha256: str
    size: int | None
    reason: str
    detail: str = ""


def save_refusals(conn: Connection, refusals: Iterable[NewRefusal], *, at: datetime | None = None) -> int:
    """Record each refusal (insert, or count one more sighting of the same path and bytes); returns how many."""
    moment = at or now_utc()
    count = 0
    t = ingest_refusals
    for r in refusals:
        count += 1
        done = conn.execute(
            update(t)
            .where(t.c.ref == r.ref, t.c.sha256 == r.sha256)
            .values(last_seen_at=moment, times=t.c.times + 1, reason=r.reason, detail=r.detail, size=r.size)
        )
        if done.rowcount == 0:
            conn.execute(insert(t).values(ref=r.ref, sha256=r.sha256, size=r.size, reason=r.reason, detail=r.detail,
                                          first_seen_at=moment, last_seen_at=moment, times=1))  # fmt: skip
    return count


def fetch_refusals(conn: Connection, *, since: datetime | None = None) -> list[RefusalRow]:
    """Every refusal, most recently seen first (only those seen at or after `since` when given)."""
    t = ingest_refusals
    query = select(t.c.ref, t.c.sha256, t.c.size, t.c.reason, t.c.detail, t.c.first_seen_at, t.c.last_seen_at,
                   t.c.times).order_by(t.c.last_seen_at.desc(), t.c.id.desc())  # fmt: skip
    if since is not None:
        query = query.where(t.c.last_seen_at >= since)
    return [RefusalRow(*row) for row in conn.execute(query)]
