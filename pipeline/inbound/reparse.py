"""Read a stored message again from its raw bytes, under the same limits as when it was taken in."""

from __future__ import annotations

from dataclasses import replace

from parsers.message import parse_message
from parsers.types import ParsedMessage
from pipeline.context import Context
from pipeline.errors import IntakeError, NotFoundError
from pipeline.inbound.sandbox import parse_stoppable
from storage.decisions import fetch_decisions
from storage.messages import fetch_message, fetch_messages
from storage.rows import DecisionRow, MessageRow


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
