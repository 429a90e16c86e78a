"""Save and fetch the outgoing-mail ledger and the delivery health of addresses.

One `mail_ledger` row per occasion ("reminder:<unit>:<date>", "receipt:<sha256>",
"digest:<date>"); the occasion is UNIQUE, so a second run cannot create a
second row.  Status moves intent → sent | retry | failed, or is dry_run for a
preview; a preview row is claimed (dry_run → intent) when sending is switched on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import inserted_id
from storage.vocab import OPEN_DELIVERY_STATES, AddressHealth, DeliveryState

from .schema import learned_contacts, mail_addresses, mail_ledger, now_utc

OPEN_STATUSES = OPEN_DELIVERY_STATES  # accepted by nobody yet (as far as we know): to be (re)sent


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: int
    occasion: str
    kind: str  # reminder | receipt | correction | digest
    institutions: list[str]
    recipients: list[str]
    subject: str
    message_id_header: str
    eml_path: str  # relative to the data dir
    status: str  # intent | sent | dry_run | retry | failed | cancelled
    attempts: int
    last_error: str
    created_at: datetime
    sent_at: datetime | None
    as_of: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class AddressStatus:
    address: str
    status: str  # ok | failing
    last_error: str
    occasion: str
    evidence_message_id: int | None
    updated_at: datetime


def _row(r) -> LedgerRow:  # noqa: ANN001 - a SQLAlchemy Row
    return LedgerRow(**{k: r._mapping[k] for k in LedgerRow.__slots__})


def fetch_ledger(
    conn: Connection, *, kind: str | Iterable[str] | None = None, statuses: Iterable[str] | None = None
) -> Iterator[LedgerRow]:
    """Ledger rows, oldest first, optionally of some kinds and statuses."""
    query = select(mail_ledger).order_by(mail_ledger.c.id)
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        query = query.where(mail_ledger.c.kind.in_(kinds))
    if statuses is not None:
        query = query.where(mail_ledger.c.status.in_(list(statuses)))
    for r in conn.execute(query):
        yield _row(r)


def fetch_occasion(conn: Connection, occasion: str) -> LedgerRow | None:
    r = conn.execute(select(mail_ledger).where(mail_ledger.c.occasion == occasion)).first()
    return _row(r) if r else None


def save_new_occasion(
    conn: Connection,
    *,
    occasion: str,
    kind: str,
    institutions: list[str],
    recipients: list[str],
    subject: str,
    message_id_header: str,
    eml_path: str,
    status: str,
    as_of: datetime | None,
    note: str = "",
) -> int | None:
    """Insert the row for a new occasion; None when the occasion already has one (nothing written)."""
    if fetch_occasion(conn, occasion) is not None:
        return None
    try:
        with conn.begin_nested():
            return inserted_id(conn.execute(
                insert(mail_ledger).values(
                    occasion=occasion,
                    kind=kind,
                    institutions=institutions,
                    recipients=recipients,
                    subject=subject,
                    message_id_header=message_id_header,
                    eml_path=eml_path,
                    status=status,
                    attempts=0,
                    last_error="",
                    created_at=now_utc(),
                    sent_at=None,
                    as_of=as_of,
                    note=note,
                )
            ))
    except IntegrityError:  # another process inserted it between our check and our insert
        return None


def save_claim(conn: Connection, row_id: int, *, from_status: str, **values: object) -> bool:
    """Move a row out of `from_status` (e.g. dry_run → intent) only if it is still there."""
    result = conn.execute(
        update(mail_ledger)
        .where(and_(mail_ledger.c.id == row_id, mail_ledger.c.status == from_status))
        .values(**values)
    )
    return result.rowcount == 1


def save_outcome(
    conn: Connection, row_id: int, *, status: str, error: str = "", sent_at: datetime | None = None
) -> None:
    """Record one delivery attempt's result."""
    values: dict[str, object] = {
        "status": status,
        "last_error": error,
        "attempts": mail_ledger.c.attempts + 1,
    }
    if sent_at is not None:
        values["sent_at"] = sent_at
    conn.execute(update(mail_ledger).where(mail_ledger.c.id == row_id).values(**values))


def save_status(conn: Connection, row_id: int, status: str, *, note: str | None = None) -> None:
    values: dict[str, object] = {"status": status}
    if note is not None:
        values["note"] = note
    conn.execute(update(mail_ledger).where(mail_ledger.c.id == row_id).values(**values))


def save_ledger_note(conn: Connection, row_id: int, line: str) -> bool:
    """Append a line to a row's note unless it is already there."""
    current = conn.execute(select(mail_ledger.c.note).where(mail_ledger.c.id == row_id)).scalar_one_or_none()
    if current is None or line in current.split("\n"):
        return False
    note = f"{current}\n{line}" if current else line
    conn.execute(update(mail_ledger).where(mail_ledger.c.id == row_id).values(note=note))
    return True


def fetch_address_status(conn: Connection) -> dict[str, AddressStatus]:
    rows = conn.execute(select(mail_addresses))
    return {r.address: AddressStatus(**{k: r._mapping[k] for k in AddressStatus.__slots__}) for r in rows}


def save_address_status(
    conn: Connection,
    address: str,
    status: str,
    *,
    error: str = "",
    occasion: str = "",
    evidence_message_id: int | None = None,
) -> None:
    """Mark an address ok or failing; learned contacts with that address follow."""
    address = address.lower()
    values = dict(status=status, last_error=error, occasion=occasion,
                  evidence_message_id=evidence_message_id, updated_at=now_utc())  # fmt: skip
    exists = conn.execute(select(mail_addresses.c.address).where(mail_addresses.c.address == address)).first()
    if exists:
        conn.execute(update(mail_addresses).where(mail_addresses.c.address == address).values(**values))
    else:
        conn.execute(insert(mail_addresses).values(address=address, **values))
    conn.execute(
        update(learned_contacts)
        .where(learned_contacts.c.address == address)
        .values(status=status, last_error=error)
    )


def fetch_last_use(conn: Connection) -> dict[str, tuple[datetime, str]]:
    """Address -> (time, occasion) of the last mail actually sent to it."""
    last: dict[str, tuple[datetime, str]] = {}
    for row in fetch_ledger(conn, statuses=(DeliveryState.SENT,)):
        if row.sent_at is None:
            continue
        for address in row.recipients:
            known = last.get(address)
            if known is None or row.sent_at > known[0]:
                last[address] = (row.sent_at, row.occasion)
    return last


def fetch_failing_addresses(conn: Connection) -> dict[str, str]:
    """Addresses known to bounce (from mail_addresses and learned contacts) -> the reason."""
    failing = {
        r.address: r.last_error or "退信"
        for r in conn.execute(select(mail_addresses).where(mail_addresses.c.status == AddressHealth.FAILING))
    }
    for r in conn.execute(select(learned_contacts).where(learned_contacts.c.status == AddressHealth.FAILING)):
        failing.setdefault(r.address.lower(), r.last_error or "退信")
    return failing
