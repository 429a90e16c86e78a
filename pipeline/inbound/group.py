"""Store a batch of incoming messages durably: raw bytes first, then their rows in one transaction.

The order of the single-message path is kept for the batch as a whole: every raw
file of the batch is fsync'd (with its directory) before the transaction that
records the rows begins, and the rows are committed durably before anything is
processed or acknowledged.  A kill at any point leaves raw files without rows (the
next run stores the rows; content addressing makes that idempotent) or rows in state
`pending` whose bytes are safe (resumed).

A value the database refuses fails the whole transaction; the batch is then stored
again one message at a time, so one bad message becomes an error on its own entry
and the others are stored.  Storage errors (disk full, read-only) stop the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from pipeline.context import Context
from pipeline.errors import IntakeError, StorageError
from pipeline.vocab import ParseState, ReceivedBasis
from storage.batch import NewMessage, find_messages_by_sha, put_raw_batch, save_new_messages
from storage.messages import find_message_by_sha, save_better_receipt, save_new_message, save_source
from storage.rawstore import StoredRaw
from storage.schema import messages
from storage.vocab import BASIS_RANK

log = logging.getLogger(__name__)

BATCH_SIZE = 64  # messages per group commit
BATCH_BYTES = 32 * 1024 * 1024  # raw bytes held in memory per batch


@dataclass(frozen=True, slots=True)
class Stored:
    message_id: int  # 0 when `error` says why the message could not be stored
    created: bool  # False: these bytes were already stored
    key: object = None  # the caller's tag given to `Ingestor.add` (the IMAP UID)
    error: str = ""


@dataclass(frozen=True, slots=True)
class Queued:
    raw: bytes
    source: str
    ref: str
    received_at: datetime | None
    key: object


def store_batch(ctx: Context, queue: Sequence[Queued]) -> list[tuple[Stored, bool]]:
    """Store every queued message durably; returns (Stored, needs processing) in queue order."""
    raws = put_raw_batch(ctx.raw, [q.raw for q in queue])
    try:
        return _record_rows(ctx, queue, raws)
    except (StorageError, IntakeError):
        raise
    except Exception:  # a value the database refuses: find the message, store the others
        log.exception("batch of %d could not be recorded at once; storing one by one", len(queue))
    return [_store_one(ctx, q) for q in queue]


def _record_rows(ctx: Context, queue: Sequence[Queued], raws: Sequence[StoredRaw]) -> list[tuple[Stored, bool]]:
    with ctx.db.begin() as conn:
        existing = find_messages_by_sha(conn, [r.sha256 for r in raws])
        new: list[NewMessage] = []
        first_new: dict[str, int] = {}  # sha -> index in `new`
        later: list[tuple[int, Queued, int]] = []  # (queue index, item, index in `new`) of in-batch copies
        plan: list[tuple[str, int]] = []  # per queue item: ("old", row id) | ("new", index) | ("copy", index)
        pushed: set[int] = set()
        for n, (item, raw) in enumerate(zip(queue, raws, strict=True)):
            row = existing.get(raw.sha256)
            if row is not None:
                save_source(conn, row.id, item.source, item.ref)
                if item.received_at is not None:
                    save_better_receipt(conn, row, item.received_at, ReceivedBasis.INTERNALDATE)
                plan.append(("old", row.id))
            elif raw.sha256 in first_new:
                later.append((n, item, first_new[raw.sha256]))
                plan.append(("copy", first_new[raw.sha256]))
            else:
                first_new[raw.sha256] = len(new)
                basis = ReceivedBasis.INTERNALDATE if item.received_at else ReceivedBasis.UNKNOWN
                new.append(NewMessage(raw, item.received_at, basis, item.source, item.ref))
                plan.append(("new", len(new) - 1))
        ids = save_new_messages(conn, new)
        for _n, item, index in later:
            save_source(conn, ids[index], item.source, item.ref)
            first = new[index]
            if item.received_at is not None and (
                BASIS_RANK[ReceivedBasis.INTERNALDATE] > BASIS_RANK[first.received_basis]
            ):
                conn.execute(update(messages).where(messages.c.id == ids[index]).values(
                    received_at=item.received_at, received_basis=ReceivedBasis.INTERNALDATE))  # fmt: skip
    by_id = {r.id: r for r in existing.values()}
    out: list[tuple[Stored, bool]] = []
    for item, (how, ref) in zip(queue, plan, strict=True):
        if how == "new":
            out.append((Stored(ids[ref], True, item.key), True))
            continue
        message_id = ids[ref] if how == "copy" else ref
        row = by_id.get(message_id) if how == "old" else None
        pending = how == "old" and row is not None and row.parse_status == ParseState.PENDING
        out.append((Stored(message_id, False, item.key), pending and message_id not in pushed))
        if pending:
            pushed.add(message_id)
    return out


def _store_one(ctx: Context, item: Queued) -> tuple[Stored, bool]:
    try:
        message_id, created, pending = store_message(
            ctx, item.raw, source=item.source, ref=item.ref, received_at=item.received_at
        )
    except (StorageError, IntakeError):
        raise
    except Exception as err:  # noqa: BLE001 - this message's own error, on its own entry
        log.exception("message %s could not be stored", item.ref)
        return Stored(0, False, item.key, f"{type(err).__name__}: {err}"), False
    return Stored(message_id, created, item.key), pending


def store_message(
    ctx: Context, raw: bytes, *, source: str, ref: str, received_at: datetime | None = None
) -> tuple[int, bool, bool]:
    """One message: raw bytes durably stored, then the row committed.  Returns (id, created, needs processing)."""
    stored = ctx.raw.put(raw)
    with ctx.db.begin() as conn:
        existing = find_message_by_sha(conn, stored.sha256)
        if existing is not None:
            save_source(conn, existing.id, source, ref)
            if received_at is not None:
                save_better_receipt(conn, existing, received_at, ReceivedBasis.INTERNALDATE)
            return existing.id, False, existing.parse_status == ParseState.PENDING
        message_id = save_new_message(
            conn,
            sha256=stored.sha256,
            size=stored.size,
            raw_path=stored.relpath,
            received_at=received_at,
            received_basis=ReceivedBasis.INTERNALDATE if received_at else ReceivedBasis.UNKNOWN,
            source=source,
            ref=ref,
        )
        return message_id, True, True
