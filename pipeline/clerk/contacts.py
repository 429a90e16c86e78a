"""Contacts: the clerk-maintained file (institution,address,person,role) plus learned addresses."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, select

from pipeline.domain.attribution import AttributionFacts
from pipeline.domain.roster import Roster
from pipeline.errors import DataFileError
from storage.ledger import fetch_address_status, fetch_last_use
from storage.schema import learned_contacts, now_utc

CONTACT_COLUMNS = ("institution", "address", "person", "role")


@dataclass(frozen=True, slots=True)
class Contact:
    institution: str  # roster name or bureau name
    address: str
    person: str
    role: str
    source: str  # "file" or "learned"


def load_contacts(path: Path, roster: Roster) -> list[Contact]:
    """Read contacts.csv, checking every institution against the roster and the bureaus."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFileError(path, None, "not UTF-8 (save it from Excel as 'CSV UTF-8')") from err
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in CONTACT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFileError(path, 1, f"missing columns: {', '.join(missing)}")
    known = set(roster.by_name) | set(roster.bureau_by_name)
    contacts: list[Contact] = []
    for line, rec in enumerate(reader, start=2):
        institution = (rec.get("institution") or "").strip()
        address = (rec.get("address") or "").strip().lower()
        if not institution and not address:
            continue
        if institution not in known:
            raise DataFileError(path, line, f"{institution!r} is neither a roster name nor a district bureau")
        if "@" not in address or " " in address:
            raise DataFileError(path, line, f"{address!r} is not an e-mail address")
        contacts.append(
            Contact(
                institution,
                address,
                (rec.get("person") or "").strip(),
                (rec.get("role") or "").strip(),
                "file",
            )
        )
    return contacts


def load_learned(conn, roster: Roster) -> list[Contact]:  # noqa: ANN001 - a SQLAlchemy Connection
    rows = conn.execute(select(learned_contacts).order_by(learned_contacts.c.id))
    return [
        Contact(r.institution, r.address, "", "", "learned") for r in rows if r.institution in roster.by_name
    ]


def build_facts(contacts: list[Contact], roster: Roster, *, own_domains: tuple[str, ...], mailbox: str,
                exempt: frozenset[str], authserv_id: str = "") -> AttributionFacts:  # fmt: skip
    """Sender facts for attribution.  An address shared by two institutions identifies neither."""
    by_address: dict[str, set[str]] = {}
    bureau_addresses: dict[str, str] = {}
    for contact in contacts:
        bureau = roster.bureau_by_name.get(contact.institution) or roster.bureau_for(contact.institution)
        if bureau is not None:
            # A bureau speaks for its district's institutions (and, if on Annex 1, for itself),
            # whether the file names it as in bureaus.csv or by its Annex 1 row (广东省广州市天河区卫生健康局).
            bureau_addresses[contact.address] = bureau.name
            continue
        by_address.setdefault(contact.address, set()).add(roster.group(contact.institution)[0])
    addresses = {addr: next(iter(names)) for addr, names in by_address.items() if len(names) == 1}
    return AttributionFacts(own_domains=own_domains, mailbox_address=mailbox, addresses=addresses,
                            bureau_addresses=bureau_addresses, exempt=exempt, authserv_id=authserv_id)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContactUse:
    """A contact with its delivery health and the last mail we actually sent to it."""

    contact: Contact
    status: str  # ok | failing
    last_error: str
    last_used_at: datetime | None
    last_occasion: str


def all_contacts(ctx) -> list[Contact]:  # noqa: ANN001 - pipeline.context.Context (imports this module)
    """The file's contacts, then learned ones (kept apart: source "learned")."""
    contacts = load_contacts(ctx.config.reminders.contacts, ctx.roster)
    with ctx.db.connect() as conn:
        contacts += load_learned(conn, ctx.roster)
    return contacts


def list_contacts(ctx) -> list[ContactUse]:  # noqa: ANN001 - pipeline.context.Context
    contacts = all_contacts(ctx)
    with ctx.db.connect() as conn:
        health = fetch_address_status(conn)
        last_use = fetch_last_use(conn)
        learned_failing = {
            r.address: r.last_error
            for r in conn.execute(select(learned_contacts).where(learned_contacts.c.status == "failing"))
        }
    result = []
    for contact in contacts:
        state = health.get(contact.address)
        failing = (state is not None and state.status == "failing") or contact.address in learned_failing
        error = state.last_error if state is not None else learned_failing.get(contact.address, "")
        used = last_use.get(contact.address)
        result.append(ContactUse(contact, "failing" if failing else "ok", error if failing else "",
                                 used[0] if used else None, used[1] if used else ""))  # fmt: skip
    return result


def save_learned_contact(conn, institution: str, address: str, message_id: int | None) -> bool:  # noqa: ANN001
    """Remember that `address` sent a confirmed report of `institution`; False when already known."""
    address = address.strip().lower()
    exists = conn.execute(
        select(learned_contacts.c.id).where(
            (learned_contacts.c.institution == institution) & (learned_contacts.c.address == address)
        )
    ).first()
    if exists or "@" not in address:
        return False
    conn.execute(insert(learned_contacts).values(institution=institution, address=address, learned_from=message_id,
                                                 learned_at=now_utc(), status="ok", last_error=""))  # fmt: skip
    return True
