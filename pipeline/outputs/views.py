"""Read-only views over the stored facts, shared by the CLI, the spreadsheet and the review queue."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from parsers.message import parse_message
from parsers.types import ParsedMessage
from pipeline.context import Context
from pipeline.errors import IntakeError, NotFoundError
from pipeline.inbound.sandbox import parse_stoppable
from pipeline.vocab import ItemPath, Kind, MessageKind, Origin, ParseState
from storage.decisions import DecisionRow, fetch_decisions
from storage.messages import MessageRow, fetch_message, fetch_messages


@dataclass(frozen=True, slots=True)
class MessageView:
    message: MessageRow
    decisions: tuple[DecisionRow, ...]

    @property
    def institutions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.institution for d in self.decisions if d.kind == Kind.REPORT and d.institution))

    @property
    def kind(self) -> str:
        """The message's kind from its active decisions (manual ones included)."""
        manual = {d.kind for d in self.decisions if d.origin == Origin.MANUAL and d.item_path == ItemPath.MESSAGE}
        if manual:
            return next(iter(manual))
        if self.message.parse_status == ParseState.FAILED:
            return MessageKind.NEEDS_REVIEW
        if self.message.parse_status == ParseState.PENDING:
            return MessageKind.UNPROCESSED
        kinds = {d.kind for d in self.decisions}
        if Kind.NEEDS_REVIEW in kinds:
            return MessageKind.NEEDS_REVIEW
        if Kind.REPORT in kinds:
            return MessageKind.REPORT
        return MessageKind.UNRELATED if kinds else MessageKind.UNPROCESSED


def message_views(ctx: Context) -> list[MessageView]:
    """Every stored message with its active decisions, in receipt order."""
    with ctx.db.connect() as conn:
        by_message: dict[int, list[DecisionRow]] = defaultdict(list)
        for decision in fetch_decisions(conn):
            by_message[decision.message_id].append(decision)
        return [MessageView(m, tuple(by_message.get(m.id, ()))) for m in fetch_messages(conn)]


def load_message(ctx: Context, reference: str) -> tuple[MessageRow, ParsedMessage, list[DecisionRow]]:
    """A stored message by id (or SHA-256 prefix), reparsed from its raw bytes."""
    with ctx.db.connect() as conn:
        row = None
        if reference.isdigit():
            row = fetch_message(conn, int(reference))
        if row is None and len(reference) >= 6:
            row = next((m for m in fetch_messages(conn) if m.sha256.startswith(reference.lower())), None)
        if row is None:
            raise NotFoundError(f"没有找到邮件 {reference}（用 intake messages 查看编号）")
        decisions = list(fetch_decisions(conn, message_id=row.id))
    return row, reparse(ctx, row), decisions


def reparse(ctx: Context, row: MessageRow) -> ParsedMessage:
    """A stored message parsed again, under the same time and memory limits as ingest."""
    parsed, reason = parse_stoppable(ctx.config, ctx.raw.get(row.raw_path, row.sha256))
    if parsed is None:
        raise IntakeError(f"邮件 {row.id} 无法解析：{reason}")
    return parsed


def reparse_headers(ctx: Context, row: MessageRow) -> ParsedMessage:
    """A stored message's headers and bodies only (attachments listed, never read): cheap and safe."""
    limits = replace(ctx.config.limits, max_attachments=0)
    return parse_message(ctx.raw.get(row.raw_path, row.sha256), limits=limits)
