"""The one rule for which active decisions count: a clerk's decision outranks the automatic ones.

Used by `storage.decisions.fetch_decisions` (SQLAlchemy) and by `storage.quick` (sqlite3, for the
CLI's quick status), so both readers hand the domain the same rows.  Imports no database library.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from storage.rows import DecisionRow
from storage.vocab import ItemPath, Origin


def without_overridden(rows: Iterable[DecisionRow]) -> Iterator[DecisionRow]:
    """Active decisions as they count: where a clerk decided an item (or the whole message), the
    automatic decisions for it are left out.  Order is kept."""
    rows = list(rows)
    overridden = {(r.message_id, r.item_path) for r in rows if r.origin == Origin.MANUAL}
    overridden_messages = {r.message_id for r in rows if r.origin == Origin.MANUAL and r.item_path == ItemPath.MESSAGE}
    for r in rows:
        if r.origin == Origin.AUTO and ((r.message_id, r.item_path) in overridden or r.message_id in overridden_messages):
            continue
        yield r
