"""Contacts of the roster's institutions and bureaus, and the sender facts attribution reads from them.

`read_contacts` reads the clerk-maintained contacts.csv (institution,address,person,role and an
optional phone) and returns the good lines with a Chinese problem per bad line (file and line,
the nearest valid name): a bad line never stops mail from being taken in.  `load_contacts` is the
strict form for work that must not go ahead on a half-read file (reminders): it raises on the first
problem.  A unit may be named by its roster name, an alias or a derived variant, of a roster row
or of a bureau (`pipeline.domain.roster.resolve_unit`).  `build_facts` turns contacts into `AttributionFacts`.
Learned addresses (clerks' confirmations) are loaded from the database by `pipeline.campaign_data`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pipeline.domain.attribution import AttributionFacts
from pipeline.domain.roster import Roster, resolve_unit
from pipeline.errors import DataFileError

CONTACT_COLUMNS = ("institution", "address", "person", "role")
OPTIONAL_COLUMNS = ("phone",)


@dataclass(frozen=True, slots=True)
class Contact:
    institution: str  # roster name or bureau name (canonical, whatever the file wrote)
    address: str
    person: str
    role: str
    source: str  # "file" or "learned"
    phone: str = ""


@dataclass(frozen=True)
class ContactsFile:
    contacts: list[Contact]
    problems: list[DataFileError]  # one per bad line (or one for the whole file), in file order


def read_contacts(path: Path, roster: Roster) -> ContactsFile:
    """Read contacts.csv, keeping every good line and recording each bad one."""
    if not path.exists():
        return ContactsFile([], [])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return ContactsFile([], [DataFileError(path, None, "不是 UTF-8 编码（请在 Excel 中另存为「CSV UTF-8」）")])
    except OSError as err:
        return ContactsFile([], [DataFileError(path, None, f"无法读取：{err.strerror or err}")])
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in CONTACT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return ContactsFile([], [DataFileError(path, 1, f"缺少列：{'、'.join(missing)}")])
    contacts: list[Contact] = []
    problems: list[DataFileError] = []
    for line, rec in enumerate(reader, start=2):
        institution = (rec.get("institution") or "").strip()
        address = (rec.get("address") or "").strip().lower()
        if not institution and not address:
            continue
        unit = resolve_unit(roster, institution)
        if unit.name is None:
            problems.append(DataFileError(path, line, unit.problem))
            continue
        if "@" not in address or " " in address or address.count("@") != 1:
            problems.append(DataFileError(path, line, f"「{address}」不是电子邮件地址"))
            continue
        contacts.append(
            Contact(unit.name, address, (rec.get("person") or "").strip(), (rec.get("role") or "").strip(), "file",
                    (rec.get("phone") or "").strip())  # fmt: skip
        )
    return ContactsFile(contacts, problems)


def load_contacts(path: Path, roster: Roster) -> list[Contact]:
    """Read contacts.csv strictly: raises the first problem (DataFileError, Chinese, file and line)."""
    result = read_contacts(path, roster)
    if result.problems:
        raise result.problems[0]
    return result.contacts


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
