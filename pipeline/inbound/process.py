"""Process one stored message: parse it, then recognise and attribute its reports.

Used by ingest (new messages), by resume (interrupted ones) and by reprocess
(everything again with the current code, roster and config).  Manual decisions
are never touched here; automatic ones are replaced as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from parsers.types import ParsedMessage
from pipeline.campaign_data import CampaignData
from pipeline.config import Config
from pipeline.context import Context
from pipeline.domain.attribution import AttributionResult, attribute_message
from pipeline.domain.bounds import bounded
from pipeline.domain.deadline import WorkTimeout, work_deadline
from pipeline.errors import IntakeError
from pipeline.inbound.extra_items import extra_item_rows
from pipeline.inbound.sandbox import ParseHandle, begin_parse
from pipeline.vocab import Kind, MessageKind, ReceivedBasis
from storage.attempts import begin_attempt, end_attempts
from storage.decisions import replace_auto_decisions
from storage.messages import fetch_message, save_parse, save_parse_failure
from storage.rows import ItemRow, MessageRow

log = logging.getLogger(__name__)

# Processing runs a message may start without finishing (the worker killed or stopped while on it)
# before it is recorded as failed: otherwise it is resumed first on every run, for ever.
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ProcessResult:
    message_id: int
    parse_ok: bool
    kind: MessageKind
    institutions: tuple[str, ...]
    error: str = ""


class Overlapped:
    """Processes a stream of messages with parsing one step ahead of recording.

    The parser runs in its own process (see sandbox.py): while it parses message N, this
    process records message N-1 (and the caller stores message N+1).  Order is kept: each
    message is recorded before the next, so attribution sees earlier results first.
    Use as a context manager, so the last message is finished even when the caller stops.
    """

    def __init__(self, ctx: Context, data: CampaignData) -> None:
        self.ctx = ctx
        self.data = data
        self.results: list[ProcessResult] = []
        self._previous: InFlight | None = None

    def push(self, message_id: int, *, raw: bytes | None = None) -> None:
        previous, self._previous = self._previous, None
        if previous is None:
            self._previous = start_processing(self.ctx, self.data, message_id, raw=raw)
            return
        parsed = previous.collect()
        try:
            self._previous = start_processing(self.ctx, self.data, message_id, raw=raw)
        finally:  # recorded even when the next one cannot start
            self.results.append(previous.record(parsed))

    def close(self) -> None:
        previous, self._previous = self._previous, None
        if previous is not None:
            self.results.append(previous.finish())

    def __enter__(self) -> Overlapped:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_processing(ctx: Context, data: CampaignData, message_id: int, *, raw: bytes | None = None,
                     parse: Callable[[Config, bytes], ParseHandle] = begin_parse) -> InFlight:  # fmt: skip
    """Load the message and hand it to the parser (`parse`: which one, see pool.py); `finish()`
    (or `collect` + `record`) completes it."""
    # Counted before the work (kill -9 included); not fsync'd: a process kill keeps SQLite's WAL.
    with ctx.db.begin(durable=False) as conn:
        row = fetch_message(conn, message_id)
        if row is None:
            raise LookupError(f"message {message_id} does not exist")
        attempts = begin_attempt(conn, message_id)
    if attempts > MAX_ATTEMPTS:
        reason = f"已尝试处理 {MAX_ATTEMPTS} 次都未完成（超时或程序中断），不再自动重试；可用 intake reprocess 重试"
        return InFlight(ctx, data, row, None, reason)
    if raw is None:
        raw = ctx.raw.get(row.raw_path, row.sha256)
    if len(raw) > ctx.config.max_message_bytes:
        reason = f"邮件 {len(raw):,} 字节，超过上限 {ctx.config.max_message_bytes:,}，已保存未解析"
        return InFlight(ctx, data, row, None, reason)
    try:  # in a stoppable worker process unless [limits] isolate_parsing = false
        return InFlight(ctx, data, row, parse(ctx.config, raw), "")
    except Exception as err:  # parse_message should not raise; if it does, the row says why
        log.exception("parse failed for message %s", message_id)
        return InFlight(ctx, data, row, None, f"解析失败：{type(err).__name__}: {err}")


class InFlight:
    """A message whose parse is under way."""

    def __init__(self, ctx: Context, data: CampaignData, row: MessageRow, handle: ParseHandle | None,
                 failure: str) -> None:  # fmt: skip
        self.ctx = ctx
        self.data = data
        self.row = row
        self._handle = handle
        self._failure = failure

    def collect(self) -> tuple[ParsedMessage | None, str]:
        """Wait for the parser: (parsed, "") or (None, why it failed)."""
        if self._handle is None:
            return None, self._failure
        try:
            parsed, stopped = self._handle.result()
        except Exception as err:  # parse_message should not raise; if it does, the row says why
            log.exception("parse failed for message %s", self.row.id)
            return None, f"解析失败：{type(err).__name__}: {err}"
        return parsed, (f"解析被中止：{stopped}" if parsed is None else "")

    def finish(self) -> ProcessResult:
        return self.record(self.collect())

    def record(self, outcome: tuple[ParsedMessage | None, str]) -> ProcessResult:
        """Attribute the parsed message and store the results (or the failure) on its row."""
        parsed, failure = outcome
        if parsed is None:
            return _fail(self.ctx, self.row.id, failure)
        return _record(self.ctx, self.data, self.row, parsed)


def _record(ctx: Context, data: CampaignData, row: MessageRow, parsed: ParsedMessage) -> ProcessResult:
    message_id = row.id
    received_at, basis = row.received_at, row.received_basis
    if basis != ReceivedBasis.INTERNALDATE:
        received_at, basis = _receipt_time(parsed)
    try:
        # Bounded text and a deadline: attribution runs here, outside the parse sandbox's time limit.
        with work_deadline(ctx.config.parse_timeout_s):
            result = attribute_message(bounded(parsed), data.roster, data.facts, data.recognizer)
        kind = _message_kind(result)
        rows = list(item_rows(parsed))
        # Not fsync'd on its own: if a power cut loses it, the row is still `pending` and resumed, and
        # the next durable commit (the next row, the IMAP checkpoint, the audit) flushes it anyway.
        with ctx.db.begin(durable=False) as conn:
            save_parse(
                conn,
                message_id,
                message_id_header=parsed.message_id,
                sender_address=parsed.sender.address,
                sender_name=parsed.sender.name,
                subject=parsed.subject,
                date_header=parsed.date,
                problems=[*map(str, parsed.problems), *_part_warnings(parsed), *_receipt_problem(basis)],
                item_rows=[*rows, *extra_item_rows(parsed, rows, result.decisions)],
                received_at=received_at,
                received_basis=basis,
                processed=True,
            )
            replace_auto_decisions(conn, message_id, result.decisions)
            end_attempts(conn, message_id)
    except WorkTimeout as err:
        log.warning("attribution of message %s stopped: %s", message_id, err)
        return _fail(ctx, message_id, f"识别与归属超过 {err.seconds:g} 秒，已停止（邮件内容异常）")
    except IntakeError:
        raise  # disk full, locked for too long, bad data files: stop the run, say why
    except Exception as err:  # a bug or a value the database refuses: a failed row, not a pending one
        # that would stop every later run at the same message
        log.exception("processing failed for message %s", message_id)
        detail = f"{type(err).__name__}: {err}".encode("utf-8", "backslashreplace").decode("utf-8")[:300]
        return _fail(ctx, message_id, f"处理失败：{detail}")
    return ProcessResult(message_id, True, kind, result.institutions)


def _fail(ctx: Context, message_id: int, reason: str) -> ProcessResult:
    with ctx.db.begin() as conn:
        save_parse_failure(conn, message_id, reason)
        end_attempts(conn, message_id)
    return ProcessResult(message_id, False, MessageKind.NEEDS_REVIEW, (), reason)


def _part_warnings(parsed: ParsedMessage) -> list[str]:
    """Warnings about single attachments (macros not run, text cut short), labelled with the file."""
    return [f"{p.path} {p.filename or '（无文件名）'}: {w}" for p in parsed.walk_parts() for w in p.warnings]


def _receipt_time(parsed: ParsedMessage) -> tuple[datetime | None, str]:
    """For imported files: the topmost Received: header, else the sender's Date: (less trustworthy)."""
    if parsed.received_at is not None:
        return parsed.received_at, ReceivedBasis.RECEIVED
    if parsed.date is not None:
        return parsed.date, ReceivedBasis.DATE
    return None, ReceivedBasis.UNKNOWN


def _receipt_problem(basis: str) -> list[str]:
    if basis == ReceivedBasis.DATE:
        return ["没有 Received 头：收件时间取自发件人的 Date 头（可能不准）"]
    if basis == ReceivedBasis.UNKNOWN:
        return ["无法确定收件时间：Received 和 Date 头都读不出"]
    return []


def _message_kind(result: AttributionResult) -> MessageKind:
    kinds = {d.kind for d in result.decisions}
    if Kind.NEEDS_REVIEW in kinds:
        return MessageKind.NEEDS_REVIEW
    if Kind.REPORT in kinds:
        return MessageKind.REPORT
    return MessageKind.UNRELATED


def item_rows(parsed: ParsedMessage):
    """One row per node of the attachment tree (paths are already unique within the message)."""
    for part in parsed.walk_parts():
        yield ItemRow(
            path=part.path,
            filename=part.filename,
            content_type=part.content_type,
            kind=str(part.kind),
            size=part.size,
            sha256=part.sha256,
            problem=str(part.problem) if part.problem is not None else "",
            problem_code=str(part.problem.code) if part.problem is not None else "",
            text_chars=len(part.document.text) if part.document is not None else 0,
        )
