"""The console's view of one stored message: its reparsed tree, and its raw bytes and parts as downloads.

Part of `pipeline.web.queries` (which re-exports these names; the routes use only `queries`),
kept apart so each module stays small.  Reparsing goes through the same sandbox as ingest.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from parsers.types import ParsedMessage
from pipeline.clerk.assign import decision_version
from pipeline.context import Context
from pipeline.errors import NotFoundError
from pipeline.inbound.reparse import reparse
from pipeline.inbound.sandbox import begin_parse
from pipeline.outputs.export import find_part_bytes, safe_filename
from storage.decisions import fetch_decisions
from storage.messages import fetch_items, fetch_message, fetch_sources
from storage.rows import MessageRow

# Sniffed content types a browser may show inline (in an <img> or <iframe>); everything else downloads.
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif"})
_parse_lock = threading.Lock()  # one reparse at a time: the parse sandbox serves one request at a time
PARSED_KEPT = 16  # reparsed messages kept (by content hash): a clerk going back and forth, the next item
_prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reparse-ahead")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PartView:
    path: str
    filename: str
    content_type: str
    size: int
    problem: str
    text: str  # extracted text (cut to 20,000 characters)
    inline: bool  # may be shown in an <img>/<iframe>


@dataclass
class MessageDetail:
    row: MessageRow
    parsed: ParsedMessage | None  # None when it cannot be parsed again
    parse_problem: str
    parts: list[PartView]
    depth: dict[str, int]
    decisions: list
    sources: list[tuple[str, str]]
    history: list[dict]
    version: str  # of its decisions, carried by the undo forms


def _parsed(ctx: Context, row: MessageRow) -> ParsedMessage:
    """The message parsed again in the sandbox, or the kept result: stored bytes never change (they are
    addressed by their SHA-256) and one console has one config, so a reparse is worth keeping — a
    sandboxed parse costs seconds where the parser child starts as root and drops it."""
    kept: OrderedDict[str, ParsedMessage] = ctx.__dict__.setdefault("_web_parsed", OrderedDict())
    with _parse_lock:
        if row.sha256 in kept:
            kept.move_to_end(row.sha256)
            return kept[row.sha256]
        parsed = reparse(ctx, row)
        kept[row.sha256] = parsed
        while len(kept) > PARSED_KEPT:
            kept.popitem(last=False)
        return parsed


def warm_up(ctx: Context) -> None:
    """Start the parse sandbox in the background when the console starts (its child loads every reader
    before dropping root: seconds), so the first message a clerk opens does not wait for it."""

    def work() -> None:
        try:
            with _parse_lock:
                begin_parse(ctx.config, b"From: warm-up@localhost\r\nSubject: warm-up\r\n\r\n.\r\n").result()
        except Exception:  # the first real parse reports whatever is wrong
            log.debug("event=sandbox_warm_up_failed", exc_info=True)

    _prefetcher.submit(work)


def parse_ahead(ctx: Context, message_id: int) -> None:
    """Reparse a message in the background (the review queue's next item), so that it opens at once."""

    def work() -> None:
        try:
            with ctx.db.connect() as conn:
                row = fetch_message(conn, message_id)
            if row is not None:
                _parsed(ctx, row)
        except Exception:  # a message that does not parse is reported when it is opened
            log.debug("event=parse_ahead_failed message_id=%s", message_id, exc_info=True)

    _prefetcher.submit(work)


def message_detail(ctx: Context, message_id: int, history_of: Callable[[Context], list[dict]]) -> MessageDetail:
    """One message as `intake show` tells it: row, reparsed tree, decisions, sources, and its entries of
    the audit trail (`history_of(ctx)`: the audit rows as queries.audit_rows gives them)."""
    with ctx.db.connect() as conn:
        row = fetch_message(conn, message_id)
        if row is None:
            raise NotFoundError(f"没有编号为 {message_id} 的邮件")
        sources = fetch_sources(conn, message_id)
        decisions = list(fetch_decisions(conn, message_id=message_id))
    parsed, problem = None, ""
    try:
        parsed = _parsed(ctx, row)
    except Exception as err:  # a message that no longer parses is still shown, with the reason
        problem = str(err)
    parts: list[PartView] = []
    depth: dict[str, int] = {}
    if parsed is not None:
        for p in parsed.walk_parts():
            text = p.document.text[:20000] if p.document is not None else ""
            parts.append(PartView(p.path, p.filename, p.content_type, p.size, p.problem, text,
                                  p.content_type in INLINE_TYPES))  # fmt: skip
            depth[p.path] = p.path.count("/")
    history = [r for r in history_of(ctx) if str(r["details"].get("message_id", "")) == str(message_id)]
    return MessageDetail(row, parsed, problem, parts, depth, decisions, sources, history, decision_version(decisions))


@dataclass(frozen=True, slots=True)
class Download:
    data: bytes
    filename: str
    content_type: str


def raw_download(ctx: Context, message_id: int) -> Download:
    with ctx.db.connect() as conn:
        row = fetch_message(conn, message_id)
    if row is None:
        raise NotFoundError(f"没有编号为 {message_id} 的邮件")
    return Download(ctx.raw.get(row.raw_path, row.sha256), f"邮件{message_id}.eml", "message/rfc822")


def part_download(ctx: Context, message_id: int, path: str) -> Download:
    with ctx.db.connect() as conn:
        row = fetch_message(conn, message_id)
        known = {i.path for i in fetch_items(conn, message_id)} if row else set()
    if row is None or path not in known:
        raise NotFoundError(f"邮件 {message_id} 没有附件 {path}")
    parsed = _parsed(ctx, row)
    part = parsed.part_at(path)
    link = parsed.linked_at(path) if part is None else None
    if link is not None:
        raise NotFoundError(f"「{link.filename or path}」是超大附件的下载链接，不在邮件里，系统也不下载："
                            f"请打开链接 {link.url} 下载后核对" + (f"（有效期至 {link.expires}）" if link.expires else ""))  # fmt: skip
    data = find_part_bytes(ctx.raw.get(row.raw_path, row.sha256), part, ctx.config.limits.max_expanded_bytes) if part else None
    if part is None or data is None:
        raise NotFoundError(f"邮件 {message_id} 附件 {path} 的内容无法取出")
    name = safe_filename(part.filename or f"邮件{message_id}_附件{path.replace('/', '-')}")
    return Download(data, name, part.content_type)
