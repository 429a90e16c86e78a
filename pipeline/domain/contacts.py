"""Contacts of the roster's institutions and bureaus, and the sender facts attribution reads from them.

`load_contacts` reads the clerk-maintained contacts.csv (institution,address,person,role);
`build_facts` turns contacts into `AttributionFacts`.  Learned addresses (clerks'
confirmations) are loaded from the database by `pipeline.campaign_data`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pipeline.domain.attribution import AttributionFacts
from pipeline.domain.roster import Roster
from pipeline.errors import DataFileError

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
