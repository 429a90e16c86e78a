"""Read-only reads of the facts a status listing needs, with the standard library's sqlite3.

`intake status` is run by hand and by scripts many times a day; importing SQLAlchemy costs it more
than everything else it does.  These functions read the same rows as `fetch_decisions`,
`fetch_item_index`, `fetch_exemptions` and `fetch_confirmations` (same columns, same order, the
same override rule from `storage.rows`) from a SQLite file opened read-only.  They are an
optimisation only: `open_quick` returns None whenever it cannot vouch for the file (missing, a
schema other than the one this code knows, any SQLite error), and the caller takes the ordinary
path, which raises the proper error.  Nothing here writes.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from storage.overrides import without_overridden
from storage.rows import DecisionRow, ItemRow

# The names of storage.schema.MIGRATIONS, in order (tests/test_quick_status.py keeps the two equal):
# a database with any other set of applied migrations is left to the ordinary path.
KNOWN_MIGRATIONS = (
    "0001_initial",
    "0002_imap_worker",
    "0003_mail_ledger_notes",
    "0004_drop_message_kind",
    "0005_item_problem_codes",
    "0006_sender_trust",
    "0007_process_attempts",
    "0008_web_console",
    "0009_ingest_refusals",
)
_DECISION_SQL = (
    "SELECT d.id, d.message_id, d.item_path, d.kind, d.institution, d.confidence, d.evidence, d.reason, d.sections,"
    " d.readable, d.via_bureau, d.origin, d.decided_by, d.decided_at, d.note, d.active, m.received_at,"
    " m.sender_address, m.subject, d.sender_trust"
    " FROM decisions d JOIN messages m ON m.id = d.message_id WHERE d.active = 1"
    " ORDER BY m.received_at, d.message_id, d.id"
)  # the columns of DecisionRow in field order, as storage.decisions.fetch_decisions selects them
_ITEM_SQL = ("SELECT message_id, path, filename, content_type, kind, size, sha256, problem, text_chars, problem_code"
             " FROM items ORDER BY id")  # fmt: skip


def open_quick(db_path: Path) -> sqlite3.Connection | None:
    """The database opened read-only, or None when the quick path cannot be taken."""
    if not db_path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        applied = tuple(name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY name"))
    except sqlite3.Error:
        conn.close()
        return None
    if applied != tuple(sorted(KNOWN_MIGRATIONS)):
        conn.close()
        return None
    return conn


def _time(value: str | None) -> datetime | None:
    """A stored time (naive UTC text, as SQLAlchemy writes it on SQLite) as an aware datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def quick_decisions(conn: sqlite3.Connection) -> list[DecisionRow]:
    rows = []
    for r in conn.execute(_DECISION_SQL):
        rows.append(DecisionRow(
            r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else [], r[7],
            json.loads(r[8]) if r[8] else {}, bool(r[9]), r[10], r[11], r[12], datetime.fromisoformat(r[13]).replace(tzinfo=UTC), r[14], bool(r[15]),
            _time(r[16]), r[17], r[18], r[19],
        ))  # fmt: skip
    return list(without_overridden(rows))


def quick_items(conn: sqlite3.Connection) -> dict[tuple[int, str], ItemRow]:
    return {(r[0], r[1]): ItemRow(*r[1:]) for r in conn.execute(_ITEM_SQL)}


def quick_exemptions(conn: sqlite3.Connection) -> dict[str, str]:
    """The clerks' exemptions: institution -> reason."""
    return dict(conn.execute("SELECT institution, reason FROM exemptions"))


def quick_verdicts(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """(message id, verdict) of every active sender confirmation, oldest first."""
    return list(conn.execute("SELECT message_id, verdict FROM sender_confirmations WHERE active = 1 ORDER BY id"))
