"""Take raw messages in: store the bytes durably, record the row, then parse and attribute.

Order matters (nothing lost): raw bytes fsync'd → row committed (state pending)
→ parse + attribute → results committed.  A crash at any point leaves either
nothing or a pending row whose bytes are safe; the next ingest finishes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from storage.messages import (
    fetch_messages,
    find_message_by_sha,
    save_better_receipt,
    save_new_message,
    save_source,
)

from .audit import record_status_changes
from .context import Context
from .process import ProcessResult, process_message
from .sources import RawMail, SourceProblem, iter_raw_mail

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: int
    created: bool  # False: these bytes were already stored
    processed: ProcessResult | None  # None when nothing needed doing


@dataclass
class IngestSummary:
    new: int = 0
    duplicates: int = 0
    failed: int = 0  # stored, but the parse failed (listed with its reason)
    resumed: int = 0  # pending rows from an interrupted run, finished now
    unreadable_sources: list[SourceProblem] = field(default_factory=list)


def ingest_raw(
    ctx: Context,
    raw: bytes,
    *,
    source: str,
    ref: str,
    received_at: datetime | None = None,
) -> IngestResult:
    """Store and process one message.  `received_at` is the IMAP INTERNALDATE when known."""
    stored = ctx.raw.put(raw)
    with ctx.db.begin() as conn:
        existing = find_message_by_sha(conn, stored.sha256)
        if existing is not None:
            save_source(conn, existing.id, source, ref)
            if received_at is not None:
                save_better_receipt(conn, existing, received_at, "internaldate")
            message_id, created, pending = existing.id, False, existing.parse_status == "pending"
        else:
            message_id = save_new_message(
                conn,
                sha256=stored.sha256,
                size=stored.size,
                raw_path=stored.relpath,
                received_at=received_at,
                received_basis="internaldate" if received_at else "unknown",
                source=source,
                ref=ref,
            )
            created, pending = True, True
    processed = process_message(ctx, message_id, raw=raw) if pending else None
    return IngestResult(message_id, created, processed)


def ingest_paths(
    ctx: Context,
    paths: list[Path],
    *,
    on_progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Ingest every message under `paths` (files, folders, Maildir, mbox).  Idempotent and resumable."""
    summary = IngestSummary()
    ctx.raw.sweep_temp()  # temp files a killed writer left behind (the worker sweeps at start)
    summary.resumed = resume_pending(ctx)
    for item in iter_raw_mail(paths):
        if isinstance(item, SourceProblem):
            log.warning("source problem at %s: %s", item.ref, item.reason)
            summary.unreadable_sources.append(item)
        else:
            _count(summary, _ingest_file(ctx, item))
        if on_progress is not None:
            on_progress(item.ref)
    record_status_changes(ctx, datetime.now(UTC), cause="ingest")
    return summary


def _ingest_file(ctx: Context, mail: RawMail) -> IngestResult:
    return ingest_raw(ctx, mail.raw, source="file", ref=mail.ref)


def _count(summary: IngestSummary, result: IngestResult) -> None:
    if not result.created:
        summary.duplicates += 1
    else:
        summary.new += 1
        if result.processed is not None and not result.processed.parse_ok:
            summary.failed += 1


def resume_pending(ctx: Context) -> int:
    """Finish messages whose bytes and row were stored but whose processing was interrupted."""
    with ctx.db.connect() as conn:
        pending = [m.id for m in fetch_messages(conn, status="pending")]
    for message_id in pending:
        process_message(ctx, message_id)
    if pending:
        log.info("resumed %d interrupted messages", len(pending))
    return len(pending)
