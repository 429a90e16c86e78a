"""The clerk-maintained data files, read for sample generation, and name variants.

`load_catalog` reads data/roster.csv, data/bureaus.csv and data/contacts.csv
(UTF-8 with or without the BOM Excel adds).  The variant helpers produce the
ways a name is actually written in mail: prefix dropped or added, spaced out,
bracket width changed, an abbreviation from the roster's alias list.
"""

from __future__ import annotations

import csv
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path

DISTRICTS = ("越秀", "海珠", "荔湾", "天河", "白云", "黄埔", "番禺", "花都", "南沙", "从化", "增城")
COMMISSION = "广州市卫生健康委员会"
# Longest first, so 广东省广州市天河区卫生健康局 loses both prefixes.
_PREFIXES = ("广东省广州市", "广州市", "广东省")


@dataclass(frozen=True)
class Institution:
    """One row of Annex 1 as kept in roster.csv."""

    row: int
    name: str
    district: str
    channel: str  # "bureau" (reports through the district bureau) or "direct"
    aliases: tuple[str, ...]
    same_as: int | None
    note: str

    @property
    def is_bureau(self) -> bool:
        return self.name.endswith("卫生健康局")


@dataclass(frozen=True)
class Bureau:
    """A district health bureau (区卫健局), listed on Annex 1 or not."""

    district: str
    name: str
    aliases: tuple[str, ...]
    roster_row: int | None


@dataclass(frozen=True)
class Contact:
    """A mailbox of an institution or bureau."""

    institution: str
    address: str
    person: str
    role: str


@dataclass(frozen=True)
class Catalog:
    """Roster, bureaus and contacts, with the look-ups generation needs."""

    institutions: tuple[Institution, ...]
    bureaus: tuple[Bureau, ...]
    contacts: dict[str, tuple[Contact, ...]] = field(default_factory=dict)

    def by_name(self, name: str) -> Institution:
        for institution in self.institutions:
            if institution.name == name:
                return institution
        raise KeyError(name)

    def by_row(self, row: int) -> Institution:
        return self.institutions[row - 1]

    def bureau_of(self, district: str) -> Bureau:
        for bureau in self.bureaus:
            if bureau.district == district:
                return bureau
        raise KeyError(district)

    def contacts_of(self, name: str) -> tuple[Contact, ...]:
        """Contacts of an institution or bureau; a synthetic one when the file has none."""
        found = self.contacts.get(name)
        if found:
            return found
        # crc32, not hash(): str hashes change between interpreter runs.
        return (
            Contact(name, f"office{zlib.crc32(name.encode()) % 10000}@unlisted.example", "联系人", "联系人"),
        )

    def same_hospital(self, institution: Institution) -> tuple[Institution, ...]:
        """The institution and every row linked to it by same_as (in either direction)."""
        group = {institution.row}
        while True:
            grown = set(group)
            for other in self.institutions:
                if other.same_as is not None and (other.row in group or other.same_as in group):
                    grown |= {other.row, other.same_as}
            if grown == group:
                return tuple(self.by_row(row) for row in sorted(group))
            group = grown


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{key: (value or "").strip() for key, value in row.items()} for row in csv.DictReader(handle)]


def _split_aliases(text: str) -> tuple[str, ...]:
    return tuple(alias.strip() for alias in text.replace("；", ";").split(";") if alias.strip())


def load_catalog(roster_csv: Path, bureaus_csv: Path, contacts_csv: Path) -> Catalog:
    """Read the three CSV files.  Rows keep roster order; row numbers come from the file."""
    institutions = tuple(
        Institution(
            row=int(row["row"]),
            name=row["name"],
            district=row["district"],
            channel=row["channel"],
            aliases=_split_aliases(row["aliases"]),
            same_as=int(row["same_as"]) if row["same_as"] else None,
            note=row["note"],
        )
        for row in _read_rows(Path(roster_csv))
    )
    bureaus = tuple(
        Bureau(
            district=row["district"],
            name=row["name"],
            aliases=_split_aliases(row["aliases"]),
            roster_row=int(row["roster_row"]) if row["roster_row"] else None,
        )
        for row in _read_rows(Path(bureaus_csv))
    )
    contacts: dict[str, list[Contact]] = {}
    for row in _read_rows(Path(contacts_csv)):
        contacts.setdefault(row["institution"], []).append(
            Contact(row["institution"], row["address"].lower(), row["person"], row["role"])
        )
    return Catalog(institutions, bureaus, {name: tuple(items) for name, items in contacts.items()})


# --------------------------------------------------------------------------- name variants


def strip_prefix(name: str) -> str:
    """Name without its leading 广东省/广州市 (what clerks often write)."""
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix) + 2:
            return name[len(prefix) :]
    return name


def add_prefix(name: str) -> str:
    """Name with a 广州市 prefix added where the roster prints it without one."""
    if name.startswith(("广州", "广东")):
        return name
    if name[:2] in DISTRICTS:
        return "广州市" + name
    return name


def swap_bracket_width(text: str) -> str:
    """Full-width brackets to half-width and vice versa."""
    if "（" in text or "）" in text:
        return text.replace("（", "(").replace("）", ")")
    return text.replace("(", "（").replace(")", "）")


def spaced(text: str, rng: random.Random) -> str:
    """Spaces inserted the way people align titles in Word: between every character,
    after the prefix, or a doubled full-width space somewhere in the middle."""
    how = rng.choice(("every", "prefix", "fullwidth"))
    if how == "every":
        return " ".join(text)
    if how == "prefix":
        stripped = strip_prefix(text)
        if stripped != text:
            return text[: len(text) - len(stripped)] + " " + stripped
    cut = max(1, len(text) // 2)
    return text[:cut] + "\u3000" + text[cut:]


def abbreviation(institution: Institution, rng: random.Random) -> str:
    """A short or alternative name from the roster aliases (the name itself if none)."""
    if not institution.aliases:
        return institution.name
    shortest_first = sorted(institution.aliases, key=len)
    # Prefer the short forms people actually type; long official names are aliases too.
    return rng.choice(shortest_first[: max(1, (len(shortest_first) + 1) // 2)])


NAME_STYLES = ("full", "prefix-variant", "abbrev", "spaced", "bracket")


def written_name(institution: Institution, style: str, rng: random.Random) -> str:
    """How a sender writes the institution's name in `style` (one of NAME_STYLES)."""
    name = institution.name
    if style == "prefix-variant":
        stripped = strip_prefix(name)
        return stripped if stripped != name else add_prefix(name)
    if style == "abbrev":
        return abbreviation(institution, rng)
    if style == "spaced":
        return spaced(name, rng)
    if style == "bracket":
        return swap_bracket_width(name) if "（" in name else name
    return name
