"""Save and fetch messages, where they were seen, and their attachment items."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import Connection, and_, delete, insert, select, update

from storage.db import inserted_id
from storage.rows import ItemRow, MessageRow
from storage.vocab import BASIS_RANK, ParseState

from .schema import items, message_sources, messages, now_utc


def _row(r) -> MessageRow:  # noqa: ANN001 - a SQLAlchemy Row
    m = r._mapping  # a property that builds a new mapping on every access: read it once per row
    return MessageRow(*[m[k] for k in MessageRow.__slots__])


# The row dataclasses' fields as columns, in order: bulk reads build rows positionally (per-key access
# to Row._mapping cost more than the query itself on 100,000 messages).
_MESSAGE_COLUMNS = tuple(messages.c[name] for name in MessageRow.__slots__)
_ITEM_COLUMNS = tuple(items.c[name] for name in ItemRow.__slots__)


def _item(r) -> ItemRow:  # noqa: ANN001 - a SQLAlchemy Row
    m = r._mapping
    return ItemRow(*[m[k] for k in ItemRow.__slots__])


def find_message_by_sha(conn: Connection, sha256: str) -> MessageRow | None:
    r = conn.execute(select(messages).where(messages.c.sha256 == sha256)).first()
    return _row(r) if r else None


def fetch_message(conn: Connection, message_id: int) -> MessageRow | None:
    r = conn.execute(select(messages).where(messages.c.id == message_id)).first()
    return _row(r) if r else None


def save_new_message(
    conn: Connection,
    *,
    sha256: str,
    size: int,
    raw_path: str,
    received_at: datetime | None,
    received_basis: str,
    source: str,
    ref: str,
) -> int:
    """Insert a message row in state `pending` (parsed later) with its first source; return its id."""
    now = now_utc()
    message_id = inserted_id(conn.execute(
        insert(messages).values(
            sha256=sha256,
            size=size,
            raw_path=raw_path,
            received_at=received_at,
            received_basis=received_basis,
            message_id_header="",
            sender_address="",
            sender_name="",
            subject="",
            parse_status=ParseState.PENDING,
            parse_error="",
            problems=[],
            ingested_at=now,
        )
    ))
    # A new id has no sources yet: insert without save_source's existence check.
    conn.execute(insert(message_sources).values(message_id=message_id, source=source, ref=ref, seen_at=now))
    return message_id


def save_source(conn: Connection, message_id: int, source: str, ref: str) -> bool:
    """Record that a message was seen at `ref`; False when already recorded."""
    exists = conn.execute(
        select(message_sources.c.id).where(
            and_(
                message_sources.c.message_id == message_id,
                message_sources.c.source == source,
                message_sources.c.ref == ref,
            )
        )
    ).first()
    if exists:
        return False
    conn.execute(insert(message_sources).values(message_id=message_id, source=source, ref=ref, seen_at=now_utc()))
    return True


def save_better_receipt(conn: Connection, message: MessageRow, received_at: datetime | None, basis: str) -> bool:
    """Replace a message's receipt time when `basis` is more trustworthy (e.g. IMAP INTERNALDATE)."""
    if received_at is None or BASIS_RANK[basis] <= BASIS_RANK[message.received_basis]:
        return False
    conn.execute(
        update(messages).where(messages.c.id == message.id).values(received_at=received_at, received_basis=basis)
    )
    return True


def save_parse(
    conn: Connection,
    message_id: int,
    *,
    message_id_header: str,
    sender_address: str,
    sender_name: str,
    subject: str,
    date_header: datetime | None,
    problems: list[str],
    item_rows: Iterable[ItemRow],
    received_at: datetime | None = None,
    received_basis: str | None = None,
    processed: bool = False,
) -> None:
    """Store a successful parse: decoded header fields and the item tree (replacing older items).

    With `processed`, also processed_at (attribution is recorded in the same transaction).
    """
    values = dict(
        message_id_header=message_id_header,
        sender_address=sender_address,
        sender_name=sender_name,
        subject=subject,
        date_header=date_header,
        problems=problems,
        parse_status=ParseState.OK,
        parse_error="",
    )
    if received_basis is not None:
        values.update(received_at=received_at, received_basis=received_basis)
    if processed:
        values.update(processed_at=now_utc())
    conn.execute(update(messages).where(messages.c.id == message_id).values(**values))
    conn.execute(delete(items).where(items.c.message_id == message_id))
    rows = [_item_values(message_id, item) for item in item_rows]
    if rows:
        conn.execute(insert(items), rows)


def _item_values(message_id: int, item: ItemRow) -> dict:
    return {"message_id": message_id, **{k: getattr(item, k) for k in ItemRow.__slots__}}


def save_parse_failure(conn: Connection, message_id: int, error: str) -> None:
    conn.execute(
        update(messages)
        .where(messages.c.id == message_id)
        .values(parse_status=ParseState.FAILED, parse_error=error)
    )


def fetch_messages(conn: Connection, *, status: str | None = None, since: datetime | None = None) -> Iterator[MessageRow]:
    """Messages in receipt order (unknown receipt times last)."""
    query = select(*_MESSAGE_COLUMNS).order_by(messages.c.received_at.is_(None), messages.c.received_at,
                                               messages.c.id)  # fmt: skip
    if status is not None:
        query = query.where(messages.c.parse_status == status)
    if since is not None:
        query = query.where(messages.c.received_at >= since)
    for r in conn.execute(query).fetchall():  # fetchall: one C loop, not a fetchone per row
        yield MessageRow(*r)


def fetch_items(conn: Connection, message_id: int) -> list[ItemRow]:
    rows = conn.execute(select(items).where(items.c.message_id == message_id).order_by(items.c.id))
    return [_item(r) for r in rows]


def fetch_sources(conn: Connection, message_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(message_sources.c.source, message_sources.c.ref)
        .where(message_sources.c.message_id == message_id)
        .order_by(message_sources.c.id)
    )
    return [(r.source, r.ref) for r in rows]


def fetch_item_index(conn: Connection) -> dict[tuple[int, str], ItemRow]:
    """Every item keyed by (message id, path): for views that label decisions with file names."""
    rows = conn.execute(select(items.c.message_id, *_ITEM_COLUMNS).order_by(items.c.id)).fetchall()
    return {(r[0], r[1]): ItemRow(*r[1:]) for r in rows}  # ItemRow's first field is its path
