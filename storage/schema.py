"""Table definitions and the named, recorded migrations that create them.

Written with SQLAlchemy Core so the same schema runs on SQLite (default) and
PostgreSQL.  Times are stored as naive UTC and come back timezone-aware.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from storage.vocab import AddressHealth


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; attach a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)

# One row per distinct message (by SHA-256 of its exact bytes).
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size", Integer, nullable=False),
    Column("raw_path", Text, nullable=False),  # relative to the data dir
    Column("received_at", UTCDateTime),  # when the commission's server received it
    Column("received_basis", String(20), nullable=False),  # internaldate | received | date | unknown
    Column("message_id_header", Text, nullable=False, default=""),
    Column("sender_address", Text, nullable=False, default=""),
    Column("sender_name", Text, nullable=False, default=""),
    Column("subject", Text, nullable=False, default=""),
    Column("date_header", UTCDateTime),
    Column("parse_status", String(20), nullable=False),  # pending | ok | failed
    Column("parse_error", Text, nullable=False, default=""),
    Column("problems", JSON, nullable=False, default=list),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime),
    # Processing runs started and not finished (reset when the row is ok or failed): a message
    # that stalls or kills the worker N times is recorded as failed instead of retried forever.
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
)
Index("ix_messages_received_at", messages.c.received_at)

# Where a message was seen: a file path, or an IMAP folder/UIDVALIDITY/UID.
message_sources = Table(
    "message_sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("messages.id"), nullable=False),
    Column("source", String(10), nullable=False),  # file | imap
    Column("ref", Text, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "ref", "message_id", name="uq_message_sources"),
)

# Attachment nodes (and the inline body) of each message, rebuilt on every parse.
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("messages.id"), nullable=False),
    Column("path", String(200), nullable=False),  # "body", "1", "2/3"
    Column("filename", Text, nullable=False, default=""),
    Column("content_type", String(200), nullable=False, default=""),
    Column("kind", String(20), nullable=False),  # document | archive | message | unreadable | body
    Column("size", Integer, nullable=False, default=0),
    Column("sha256", String(64), nullable=False, default=""),
    Column("problem", Text, nullable=False, default=""),
    Column("text_chars", Integer, nullable=False, default=0),
    UniqueConstraint("message_id", "path", name="uq_items_path"),
)

# Every decision about a message or one of its items.  Automatic decisions are
# recomputed on reprocess; manual ones (origin = manual) are kept and outrank them.
decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("messages.id"), nullable=False),
    Column("item_path", String(200), nullable=False),  # "message" for the message as a whole
    Column("kind", String(20), nullable=False),  # report | unrelated | needs_review
    Column("institution", Text, nullable=False, default=""),  # roster name; "" when none
    Column("confidence", Float, nullable=False, default=0.0),
    Column("evidence", JSON, nullable=False, default=list),
    Column("reason", Text, nullable=False, default=""),
    Column("sections", JSON, nullable=False, default=dict),
    Column("readable", Boolean, nullable=False, default=True),
    Column("via_bureau", Text, nullable=False, default=""),
    Column("origin", String(10), nullable=False),  # auto | manual
    Column("decided_by", Text, nullable=False, default=""),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
)
Index("ix_decisions_message", decisions.c.message_id)
Index("ix_decisions_institution", decisions.c.institution)

imap_folders = Table(
    "imap_folders",
    metadata,
    Column("folder", Text, primary_key=True),
    Column("uidvalidity", Integer),  # NULL when the server did not send one
    Column("last_uid", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)

# UIDs that could not be stored (fetch failed, too large): never silently skipped.
imap_failures = Table(
    "imap_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("folder", Text, nullable=False),
    Column("uidvalidity", Integer),
    Column("uid", Integer, nullable=False),
    Column("size", Integer),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("resolved", Boolean, nullable=False, default=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("folder", "uidvalidity", "uid", name="uq_imap_failures"),
)

# Outgoing mail: reminders, receipts, digests.  occasion is unique: never twice.
mail_ledger = Table(
    "mail_ledger",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("occasion", Text, nullable=False, unique=True),
    Column("kind", String(20), nullable=False),  # reminder | receipt | correction | digest
    Column("institutions", JSON, nullable=False, default=list),
    Column("recipients", JSON, nullable=False, default=list),
    Column("subject", Text, nullable=False, default=""),
    Column("message_id_header", Text, nullable=False),
    Column("eml_path", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False),  # intent | sent | dry_run | retry | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(40), nullable=False),
    Column("target", Text, nullable=False, default=""),
    Column("institution", Text, nullable=False, default=""),
    Column("details", JSON, nullable=False, default=dict),
    Column("reason", Text, nullable=False, default=""),
)

exemptions = Table(
    "exemptions",
    metadata,
    Column("institution", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("decided_by", Text, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
)

learned_contacts = Table(
    "learned_contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("institution", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("learned_from", Integer, ForeignKey("messages.id")),
    Column("learned_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False, default=AddressHealth.OK.value),  # ok | failing
    Column("last_error", Text, nullable=False, default=""),
    UniqueConstraint("institution", "address", name="uq_learned_contacts"),
)

worker_state = Table(
    "worker_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


def _create(*tables: Table) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        metadata.create_all(conn, tables=list(tables))

    return apply


# The worker looks for interrupted (pending) messages on every poll: with this index
# that costs O(pending), not O(all messages).
ix_messages_parse_status = Index("ix_messages_parse_status", messages.c.parse_status)


def _imap_worker(conn: Connection) -> None:
    """Indexes and column types the IMAP worker needs on databases made by 0001.

    IMAP UIDs, UIDVALIDITY and sizes are unsigned 32-bit: too big for PostgreSQL's
    INTEGER (SQLite's INTEGER already holds 64 bits).
    """
    ix_messages_parse_status.create(conn, checkfirst=True)
    if conn.dialect.name != "postgresql":
        return
    for table, column in (
        ("imap_folders", "uidvalidity"),
        ("imap_folders", "last_uid"),
        ("imap_failures", "uidvalidity"),
        ("imap_failures", "uid"),
        ("imap_failures", "size"),
    ):
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE BIGINT")


# Added by 0003: the moment an outgoing mail was computed for, and notes
# (bounces, skipped recipients).  Appended here so fresh databases get them from
# 0001's create_all; 0003 adds them to databases created before.
mail_ledger.append_column(Column("as_of", UTCDateTime))
mail_ledger.append_column(Column("note", Text, nullable=False, default="", server_default=""))

# Delivery health of each address we mail (file contacts and learned ones alike).
mail_addresses = Table(
    "mail_addresses",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("status", String(20), nullable=False),  # ok | failing
    Column("last_error", Text, nullable=False, default=""),
    Column("occasion", Text, nullable=False, default=""),  # the ledger occasion that bounced or was refused
    Column("evidence_message_id", Integer),  # the stored bounce message, when there is one
    Column("updated_at", UTCDateTime, nullable=False),
)


def _mail_ledger_notes(conn: Connection) -> None:
    from sqlalchemy import inspect

    have = {c["name"] for c in inspect(conn).get_columns("mail_ledger")}
    for column in (mail_ledger.c.as_of, mail_ledger.c.note):
        if column.name in have:
            continue
        ddl = column.type.compile(dialect=conn.dialect)
        extra = " NOT NULL DEFAULT ''" if column.name == "note" else ""
        conn.exec_driver_sql(f"ALTER TABLE mail_ledger ADD COLUMN {column.name} {ddl}{extra}")
    metadata.create_all(conn, tables=[mail_addresses])


def _drop_message_kind(conn: Connection) -> None:
    """messages.kind summarised the decisions at parse time and went stale after a clerk's assign;
    a message's kind is derived from its active decisions (pipeline.outputs.views.MessageView.kind)."""
    from sqlalchemy import inspect

    if "kind" in {c["name"] for c in inspect(conn).get_columns("messages")}:
        conn.exec_driver_sql("ALTER TABLE messages DROP COLUMN kind")
# Added by 0005: the parser's problem code of an item (parsers.types.ProblemCode), beside the
# English text in `problem`.  Appended so fresh databases get it from 0001's create_all.
items.append_column(Column("problem_code", String(40), nullable=False, default="", server_default=""))

# The English reasons parsers recorded before problem codes, first phrase found wins.  Used once,
# by 0005, to code the rows stored before it (a copy of the old wording: storage imports no parser).
_OLD_PROBLEM_PHRASES: tuple[tuple[str, str], ...] = (
    ("not read:", "parse_stopped"),
    ("attachment limit exceeded", "attachment_limit"),
    ("work limit", "work_limit"),
    ("attached messages nested too deeply", "message_too_deep"),
    ("attached message could not be parsed", "message_unparseable"),
    ("encrypted zip member", "encrypted_zip"),
    ("encrypted pdf", "encrypted_pdf"),
    ("encrypted office", "encrypted_office"),
    ("encrypted xls", "encrypted_office"),
    ("zip bomb", "zip_bomb"),
    ("archive nested too deeply", "archive_too_deep"),
    ("too many archive members", "archive_too_many"),
    ("members, over the limit", "archive_too_many"),
    ("no text layer", "scan_no_text"),
    ("image: no text", "image_no_text"),
    ("archive cannot be opened", "archive_unsupported"),
    ("truncated", "truncated"),
    ("dtd", "unsafe_xml"),
    ("entity expansion", "unsafe_xml"),
    ("too large", "too_large"),
    ("exceeds", "too_large"),
    ("reader failed", "reader_failed"),
    ("executable", "executable"),
    ("empty file", "empty"),
    ("corrupt", "corrupt"),
    ("malformed", "corrupt"),
    ("missing a part", "corrupt"),
    ("could not be read", "corrupt"),
    ("not a word document", "corrupt"),
)


def old_problem_code(problem: str) -> str:
    """The code for an item problem recorded as English text before 0005 ("" stays "")."""
    if not problem:
        return ""
    lowered = problem.lower()
    for phrase, code in _OLD_PROBLEM_PHRASES:
        if phrase in lowered:
            return code
    return "unsupported"  # "... cannot be read", "unsupported content type", "unrecognised binary data"


def _item_problem_codes(conn: Connection) -> None:
    from sqlalchemy import inspect, select, update

    have = {c["name"] for c in inspect(conn).get_columns("items")}
    if "problem_code" not in have:
        conn.exec_driver_sql("ALTER TABLE items ADD COLUMN problem_code VARCHAR(40) NOT NULL DEFAULT ''")
    rows = conn.execute(
        select(items.c.id, items.c.problem).where(items.c.problem != "", items.c.problem_code == "")
    ).all()
    for row in rows:
        conn.execute(update(items).where(items.c.id == row.id).values(problem_code=old_problem_code(row.problem)))


# Added by 0006: how far the sender of a report is trusted (storage.vocab.SenderTrust, "" when not
# judged), and the clerks' confirmations of unknown senders (their own list, not the review queue).
decisions.append_column(Column("sender_trust", String(20), nullable=False, default="", server_default=""))

sender_confirmations = Table(
    "sender_confirmations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("messages.id"), nullable=False),
    Column("address", Text, nullable=False),
    Column("institution", Text, nullable=False, default=""),  # the roster name confirmed for
    Column("verdict", String(20), nullable=False),  # confirmed | rejected
    Column("learned_address", Text, nullable=False, default=""),  # "" when nothing was learned
    Column("decided_by", Text, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)
Index("ix_sender_confirmations_message", sender_confirmations.c.message_id)


def _sender_trust(conn: Connection) -> None:
    from sqlalchemy import inspect

    if "sender_trust" not in {c["name"] for c in inspect(conn).get_columns("decisions")}:
        conn.exec_driver_sql("ALTER TABLE decisions ADD COLUMN sender_trust VARCHAR(20) NOT NULL DEFAULT ''")
    metadata.create_all(conn, tables=[sender_confirmations])


def _process_attempts(conn: Connection) -> None:
    """messages.attempts: a pending message is no longer retried first, forever, when it stalls the worker."""
    from sqlalchemy import inspect

    if "attempts" not in {c["name"] for c in inspect(conn).get_columns("messages")}:
        conn.exec_driver_sql("ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")


# Named migrations, applied in order, each in its own transaction, recorded by name.
MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    (
        "0001_initial",
        _create(
            messages,
            message_sources,
            items,
            decisions,
            imap_folders,
            imap_failures,
            mail_ledger,
            audit_log,
            exemptions,
            learned_contacts,
            worker_state,
        ),
    ),
    ("0002_imap_worker", _imap_worker),
    ("0003_mail_ledger_notes", _mail_ledger_notes),
    ("0004_drop_message_kind", _drop_message_kind),
    ("0005_item_problem_codes", _item_problem_codes),
    ("0006_sender_trust", _sender_trust),
    ("0007_process_attempts", _process_attempts),
]

# -- the clerks' web console (0004) ---------------------------------------------------------------

# Console accounts.  Passwords only as argon2 hashes; a disabled account keeps its row (the
# audit log names it) but can no longer log in.
web_users = Table(
    "web_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # viewer | clerk | admin
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Server-side sessions: the cookie carries a random token, the table only its SHA-256.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("username", String(100), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Every login attempt, for throttling (failures per account and per client address).
web_login_attempts = Table(
    "web_login_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("success", Boolean, nullable=False),
    Index("ix_web_login_attempts_at", "at"),
)

# The console's tables (defined after the list above, so appended here: they run last).
MIGRATIONS.append(("0008_web_console", _create(web_users, web_sessions, web_login_attempts)))

# Files `intake ingest` refused as not being mail (storage.vocab.Refusal), one row per path and
# content; a rerun over the same folder updates `last_seen_at` and `times` (storage/refusals.py).
ingest_refusals = Table(
    "ingest_refusals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ref", Text, nullable=False),  # the path (or "path#mbox:N")
    Column("sha256", String(64), nullable=False, default=""),  # "" when the bytes could not be read
    Column("size", Integer),
    Column("reason", String(20), nullable=False),
    Column("detail", Text, nullable=False, default=""),  # the sniffed type or the error's name, never file text
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("times", Integer, nullable=False, default=1),
    UniqueConstraint("ref", "sha256", name="uq_ingest_refusals"),
)
MIGRATIONS.append(("0009_ingest_refusals", _create(ingest_refusals)))


def now_utc() -> datetime:
    return datetime.now(UTC)
