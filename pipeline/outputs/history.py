"""The history of statuses: every automatic status change becomes an audit entry, once.

`record_status_changes` compares the statuses as of a moment with the last ones it
recorded (kept in worker_state) and logs each difference.  Both inbound entry
functions (ingest_paths, poll_once) call it when they finish, and so do reprocess
and every clerk's act.
"""

from __future__ import annotations

import json
from datetime import datetime

from pipeline.context import Context
from pipeline.domain.roster import Roster
from pipeline.outputs.snapshot import build_snapshot
from pipeline.vocab import Action, Status
from storage.audit import SYSTEM_ACTOR, fetch_state, save_audit, save_state

STATUS_SNAPSHOT_KEY = "audit.last_statuses"
BASELINE_STATUS = Status.PENDING  # before any mail has been seen, every row is pending


def statuses_may_have_moved(ctx: Context, as_of: datetime) -> bool:
    """Whether time alone can have changed a status since the last record: never recorded, or the
    deadline (pending -> overdue, the one change no mail or clerk causes) passed since.  A poll that
    took nothing in asks this instead of computing every status (O(mail) on each idle poll)."""
    with ctx.db.connect() as conn:
        recorded = json.loads(fetch_state(conn, STATUS_SNAPSHOT_KEY) or "{}").get("as_of")
    if not recorded:
        return True
    deadline = ctx.config.campaign.deadline
    return datetime.fromisoformat(recorded) <= deadline < as_of


def record_status_changes(ctx: Context, as_of: datetime, *, cause: str = "", roster: Roster | None = None) -> int:
    """Log every roster row whose status differs from the last recorded one; returns how many.

    Runs inside one write transaction, so two processes never log the same change twice.
    A call with an `as_of` earlier than the last recorded one does nothing (statuses are
    recorded moving forward in time only).
    """
    with ctx.db.begin() as conn:
        snapshot = json.loads(fetch_state(conn, STATUS_SNAPSHOT_KEY) or "{}")
        last_as_of = snapshot.get("as_of")
        if last_as_of and datetime.fromisoformat(last_as_of) > as_of:
            return 0
        previous: dict[str, str] = snapshot.get("statuses", {})
        # Read on a second connection: we hold the write lock, so it sees exactly what is committed.
        rows = build_snapshot(ctx, as_of, roster=roster).statuses
        current = {r.institution.name: r.status for r in rows}
        changed = 0
        for r in rows:
            name = r.institution.name
            before = previous.get(name, BASELINE_STATUS)
            if before == r.status:
                continue
            save_audit(
                conn,
                actor=SYSTEM_ACTOR,
                action=Action.STATUS_CHANGE,
                target=name,
                institution=name,
                details={
                    "from": before,
                    "to": r.status,
                    "as_of": as_of.isoformat(),
                    "cause": cause,
                    "submissions": len(r.submissions),
                    "first_received_at": r.first_received_at.isoformat() if r.first_received_at else "",
                },
                reason=cause,
            )
            changed += 1
        save_state(conn, STATUS_SNAPSHOT_KEY,
                   json.dumps({"as_of": as_of.isoformat(), "statuses": current}, ensure_ascii=False))  # fmt: skip
    return changed
