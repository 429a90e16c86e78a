"""Take raw messages in: store the bytes durably, record the row, then parse and attribute.

Order matters (nothing lost): raw bytes fsync'd → row committed (state pending)
→ parse + attribute → results committed.  A crash at any point leaves either
nothing or a pending row whose bytes are safe; the next ingest finishes it.
While one message is parsed (in the parser process), the next one is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.context import Context
from pipeline.inbound.process import Overlapped, ProcessResult
from pipeline.inbound.sources import SourceProblem, iter_raw_mail
from pipeline.outputs.history import record_status_changes
from pipeline.vocab import ParseState, ReceivedBasis
from storage.messages import (
    fetch_messages,
    find_message_by_sha,
    save_better_receipt,
    save_new_message,
    save_source,
)

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
    data: CampaignData | None = None,
) -> IngestResult:
    """Store and process one message.  `received_at` is the IMAP INTERNALDATE when known."""
    with Ingestor(ctx, data) as ingestor:
        stored = ingestor.add(raw, source=source, ref=ref, received_at=received_at)
    processed = ingestor.results[-1] if ingestor.results else None
    return IngestResult(stored.message_id, stored.created, processed)


@dataclass(frozen=True, slots=True)
class Stored:
    message_id: int
    created: bool  # False: these bytes were already stored


class Ingestor:
    """Takes messages in one after another: each is stored durably at once and parsed while the
    next one is being stored (see process.Overlapped).  Use as a context manager; `results`
    holds the processing outcomes in order once it is closed."""

    def __init__(self, ctx: Context, data: CampaignData | None = None) -> None:
        self.ctx = ctx
        self.data = data or load_campaign_data(ctx)
        self._processing = Overlapped(ctx, self.data)

    @property
    def results(self) -> list[ProcessResult]:
        return self._processing.results

    def add(self, raw: bytes, *, source: str, ref: str, received_at: datetime | None = None) -> Stored:
        """Store `raw` (bytes fsync'd, row committed) and queue it for processing; returns when stored."""
        message_id, created, pending = store_message(
            self.ctx, raw, source=source, ref=ref, received_at=received_at
        )
        if pending:
            self._processing.push(message_id, raw=raw)
        return Stored(message_id, created)

    def close(self) -> None:
        self._processing.close()

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def store_message(
    ctx: Context, raw: bytes, *, source: str, ref: str, received_at: datetime | None = None
) -> tuple[int, bool, bool]:
    """Raw bytes durably stored, then the row committed.  Returns (message id, created, needs processing)."""
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


def ingest_paths(
    ctx: Context,
    paths: list[Path],
    *,
    on_progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Ingest every message under `paths` (files, folders, Maildir, mbox).  Idempotent and resumable.

    One of the two entry functions of the inbound stage (the other is `inbound.imap.poll_once`):
    both end by recording the status changes their mail caused.
    """
    summary = IngestSummary()
    data = load_campaign_data(ctx)
    ctx.raw.sweep_temp()  # temp files a killed writer left behind (the worker sweeps at start)
    summary.resumed = resume_pending(ctx, data)
    with Ingestor(ctx, data) as ingestor:
        for item in iter_raw_mail(paths):
            if isinstance(item, SourceProblem):
                log.warning("source problem at %s: %s", item.ref, item.reason)
                summary.unreadable_sources.append(item)
            else:
                stored = ingestor.add(item.raw, source="file", ref=item.ref)
                if stored.created:
                    summary.new += 1
                else:
                    summary.duplicates += 1
            if on_progress is not None:
                on_progress(item.ref)
    summary.failed = sum(1 for r in ingestor.results if not r.parse_ok)
    record_status_changes(ctx, datetime.now(UTC), cause="ingest", roster=data.roster)
    return summary


def resume_pending(ctx: Context, data: CampaignData) -> int:
    """Finish messages whose bytes and row were stored but whose processing was interrupted."""
    with ctx.db.connect() as conn:
        pending = [m.id for m in fetch_messages(conn, status=ParseState.PENDING)]
    with Overlapped(ctx, data) as processing:
        for message_id in pending:
            processing.push(message_id)
    if pending:
        log.info("resumed %d interrupted messages", len(pending))
    return len(pending)
