"""Take raw messages in: store the bytes durably, record the row, then parse and attribute.

Order matters (nothing lost): raw bytes fsync'd → row committed (state pending)
→ parse + attribute → results committed.  A crash at any point leaves either
nothing or a pending row whose bytes are safe; the next ingest finishes it.
Messages are stored in batches (group commit: one fsync round and one transaction
per batch, see group.py) and parsed by the parser processes (pool.py) while this
process records the results in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.context import Context
from pipeline.errors import IntakeError
from pipeline.inbound.group import BATCH_BYTES, BATCH_SIZE, Queued, Stored, store_batch
from pipeline.inbound.pool import processor
from pipeline.inbound.process import ProcessResult
from pipeline.inbound.sources import SourceProblem, iter_raw_mail
from pipeline.outputs.history import record_status_changes
from pipeline.vocab import ParseState, Refusal
from storage.messages import fetch_messages
from storage.refusals import NewRefusal, save_refusals

log = logging.getLogger(__name__)

__all__ = ["IngestResult", "IngestSummary", "Ingestor", "Stored", "ingest_paths", "ingest_raw", "resume_pending"]


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
    # Files (or mbox / Maildir entries) refused as not mail, or that could not be read or stored:
    # recorded in ingest_refusals, listed by `intake refused`; the CLI exits 1 when there are any.
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
        ingestor.add(raw, source=source, ref=ref, received_at=received_at)
    [stored] = ingestor.stored
    if stored.error:
        raise IntakeError(f"邮件未能入库：{stored.error}")
    processed = ingestor.results[-1] if ingestor.results else None
    return IngestResult(stored.message_id, stored.created, processed)


class Ingestor:
    """Takes messages in, in batches (group commit, see storage/batch.py), and processes them.

    `add` queues a message; every `batch_size` messages (or `batch_bytes`), and on
    `flush`/`close`, the queued raw bytes are fsync'd together and their rows committed in one
    transaction; only then are they handed to processing (parsing runs in the parser
    processes while this process records the previous results, see pool.py).  So nothing is
    durable before `flush` or `close` returns: a caller acknowledges a message (the IMAP
    checkpoint) only after that.  Use as a context manager; `stored` (in `add` order) and
    `results` (processing outcomes) are complete once it is closed.
    """

    def __init__(self, ctx: Context, data: CampaignData | None = None, *, batch_size: int = BATCH_SIZE,
                 batch_bytes: int = BATCH_BYTES) -> None:  # fmt: skip
        self.ctx = ctx
        self.data = data or load_campaign_data(ctx)
        self.batch_size = max(batch_size, 1)
        self.batch_bytes = batch_bytes
        self.stored: list[Stored] = []
        self._queue: list[Queued] = []
        self._queued_bytes = 0
        self._processing = processor(ctx, self.data)

    @property
    def results(self) -> list[ProcessResult]:
        return self._processing.results

    def add(self, raw: bytes, *, source: str, ref: str, received_at: datetime | None = None,
            key: object = None) -> None:  # fmt: skip
        """Queue `raw`; it is stored with its batch (at the latest on `flush` or `close`)."""
        self._queue.append(Queued(raw, source, ref, received_at, key))
        self._queued_bytes += len(raw)
        if len(self._queue) >= self.batch_size or self._queued_bytes >= self.batch_bytes:
            self.flush()

    def flush(self) -> list[Stored]:
        """Store the queued messages durably (one fsync round, one transaction), then queue their processing."""
        queue, self._queue, self._queued_bytes = self._queue, [], 0
        if not queue:
            return []
        outcomes = store_batch(self.ctx, queue)
        for item, (stored, pending) in zip(queue, outcomes, strict=True):
            self.stored.append(stored)
            if pending:
                self._processing.push(stored.message_id, raw=item.raw)
        return [stored for stored, _pending in outcomes]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._processing.close()

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
                log.info("refused %s: %s %s", item.ref, item.reason, item.detail)
                summary.unreadable_sources.append(item)
            else:
                ingestor.add(item.raw, source="file", ref=item.ref, key=item.ref)
            if on_progress is not None:
                on_progress(item.ref)
    for stored in ingestor.stored:
        if stored.error:
            error_type = stored.error.split(":", 1)[0]  # the exception's class name: no text from the mail
            summary.unreadable_sources.append(SourceProblem(str(stored.key), Refusal.STORE_FAILED, error_type))
        elif stored.created:
            summary.new += 1
        else:
            summary.duplicates += 1
    summary.failed = sum(1 for r in ingestor.results if not r.parse_ok)
    if summary.unreadable_sources:
        with ctx.db.begin() as conn:
            save_refusals(conn, [NewRefusal(p.ref, p.sha256, p.size, p.reason, p.detail)
                                 for p in summary.unreadable_sources])  # fmt: skip
    record_status_changes(ctx, datetime.now(UTC), cause="ingest", roster=data.roster)
    return summary


def resume_pending(ctx: Context, data: CampaignData) -> int:
    """Finish messages whose bytes and row were stored but whose processing was interrupted."""
    with ctx.db.connect() as conn:
        pending = [m.id for m in fetch_messages(conn, status=ParseState.PENDING)]
    with processor(ctx, data) as processing:
        for message_id in pending:
            processing.push(message_id)
    if pending:
        log.info("resumed %d interrupted messages", len(pending))
    return len(pending)
