"""The Annex 1 roster and the district health bureaus, loaded from clerk-maintained CSV files.

`data/roster.csv`: row,name,district,channel,aliases,same_as,note
`data/bureaus.csv`: district,name,aliases,roster_row
Every problem is reported with the file and line, so a clerk can fix it in Excel.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Campaign
from pipeline.domain.matching import NameIndex, normalise
from pipeline.errors import AmbiguousError, DataFileError, NotFoundError
from pipeline.vocab import Channel

DISTRICTS = ("越秀", "海珠", "荔湾", "天河", "白云", "黄埔", "番禺", "花都", "南沙", "从化", "增城")
CHANNELS = tuple(Channel)
ROSTER_COLUMNS = ("row", "name", "district", "channel", "aliases", "same_as", "note")
BUREAU_COLUMNS = ("district", "name", "aliases", "roster_row")


@dataclass(frozen=True, slots=True)
class Institution:
    row: int
    name: str  # exactly as printed in Annex 1: every output uses it
    district: str  # one of DISTRICTS or ""
    channel: str  # direct | bureau
    aliases: tuple[str, ...]
    same_as: int | None  # row number of the row this one duplicates
    note: str
    exempt: bool = False


@dataclass(frozen=True, slots=True)
class Bureau:
    district: str
    name: str
    aliases: tuple[str, ...]
    roster_row: int | None


class Roster:
    """The roster rows, the bureaus, and a name index over both."""

    def __init__(self, institutions: list[Institution], bureaus: list[Bureau]) -> None:
        self.institutions = institutions
        self.bureaus = bureaus
        self.by_name = {inst.name: inst for inst in institutions}
        self.by_row = {inst.row: inst for inst in institutions}
        self.bureau_by_district = {b.district: b for b in bureaus}
        self._groups = _group_rows(institutions)
        self.bureau_by_name = {b.name: b for b in bureaus}
        self.index = NameIndex()
        for inst in institutions:
            self.index.add(inst.name, inst.name, (*inst.aliases,))
        for bureau in bureaus:
            if bureau.roster_row is None:
                self.index.add(f"bureau:{bureau.district}", bureau.name, bureau.aliases)
            else:
                # A bureau that is itself on Annex 1 is known under both names.
                row_name = self.by_row[bureau.roster_row].name
                self.index.add(row_name, bureau.name, bureau.aliases)
        self.index.freeze()

    def __iter__(self) -> Iterator[Institution]:
        return iter(self.institutions)

    def __len__(self) -> int:
        return len(self.institutions)

    def group(self, name: str) -> tuple[str, ...]:
        """Names satisfied by one report of `name` (rows that are the same hospital), the first row first."""
        return self._groups.get(name, (name,))

    def bureau_for(self, key: str) -> Bureau | None:
        """The bureau behind an index key ("bureau:番禺" or a roster name that is a bureau)."""
        if key.startswith("bureau:"):
            return self.bureau_by_district.get(key.removeprefix("bureau:"))
        inst = self.by_name.get(key)
        if inst is None:
            return None
        return next((b for b in self.bureaus if b.roster_row == inst.row), None)

    def reporting_bureau(self, name: str) -> Bureau | None:
        """The bureau an institution reports through, or None when it reports directly."""
        inst = self.by_name.get(name)
        if inst is None or inst.channel != Channel.BUREAU:
            return None
        return self.bureau_by_district.get(inst.district)

    def resolve(self, text: str) -> list[str]:
        """Roster names (not bureaus) that `text` names as a whole: for clerks typing a name."""
        wanted = normalise(text)
        if not wanted:
            return []
        if text.strip().isdigit() and int(text) in self.by_row:
            return [self.by_row[int(text)].name]
        exact = self.index.lookup_exact(wanted)
        if exact:
            return [k for k in exact if not k.startswith("bureau:")]
        return [inst.name for inst in self.institutions if wanted in normalise(inst.name)]


def _group_rows(institutions: list[Institution]) -> dict[str, tuple[str, ...]]:
    """Every name -> the names of its `same_as` group, in roster order; built once (lookups are per mention)."""
    members: dict[int, list[str]] = {}
    for inst in institutions:
        members.setdefault(inst.same_as or inst.row, []).append(inst.name)
    return {inst.name: tuple(members[inst.same_as or inst.row]) for inst in institutions}


def load_roster(campaign: Campaign) -> Roster:
    """Load and validate both files; raises DataFileError naming file and line on the first problem."""
    institutions = _read_institutions(campaign.roster, set(campaign.exempt))
    bureaus = _read_bureaus(campaign.bureaus, {i.row for i in institutions})
    unknown_exempt = set(campaign.exempt) - {i.name for i in institutions}
    if unknown_exempt:
        raise DataFileError(campaign.roster, None, f"exempt names not in the roster: {', '.join(sorted(unknown_exempt))}")
    roster = Roster(institutions, bureaus)
    problems = roster.index.collisions()
    if problems:
        raise DataFileError(campaign.roster, None, "alias collision: " + "; ".join(problems[:5]))
    return roster


def check_roster(campaign: Campaign) -> list[str]:
    """Every problem in the roster files, as lines for a clerk (empty when all is well)."""
    try:
        load_roster(campaign)
    except DataFileError as err:
        return [str(err)]
    return []


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as err:
        raise DataFileError(path, None, "file not found") from err
    except UnicodeDecodeError as err:
        raise DataFileError(path, None, "not UTF-8 (save it from Excel as 'CSV UTF-8')") from err
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFileError(path, 1, f"missing columns: {', '.join(missing)}")
    for line_no, record in enumerate(reader, start=2):
        yield line_no, {k: (v or "").strip() for k, v in record.items() if k}


def _split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip() for a in value.replace("；", ";").split(";") if a.strip()))


def _read_institutions(path: Path, exempt: set[str]) -> list[Institution]:
    found: list[Institution] = []
    seen_names: dict[str, int] = {}
    seen_rows: set[int] = set()
    for line, rec in _rows(path, ROSTER_COLUMNS):
        if not rec["name"]:
            raise DataFileError(path, line, "name is empty")
        if not rec["row"].isdigit():
            raise DataFileError(path, line, f"row must be a number, not {rec['row']!r}")
        row = int(rec["row"])
        if row in seen_rows:
            raise DataFileError(path, line, f"row number {row} appears twice")
        if rec["name"] in seen_names:
            raise DataFileError(path, line, f"{rec['name']} already on line {seen_names[rec['name']]}")
        if rec["district"] and rec["district"] not in DISTRICTS:
            raise DataFileError(path, line, f"unknown district {rec['district']!r} (one of {' '.join(DISTRICTS)})")
        if rec["channel"] not in CHANNELS:
            raise DataFileError(path, line, f"channel must be direct or bureau, not {rec['channel']!r}")
        if rec["channel"] == Channel.BUREAU and not rec["district"]:
            raise DataFileError(path, line, "channel bureau needs a district")
        same_as = int(rec["same_as"]) if rec["same_as"].isdigit() else None
        if rec["same_as"] and same_as is None:
            raise DataFileError(path, line, f"same_as must be a row number, not {rec['same_as']!r}")
        seen_rows.add(row)
        seen_names[rec["name"]] = line
        found.append(
            Institution(
                row=row,
                name=rec["name"],
                district=rec["district"],
                channel=rec["channel"],
                aliases=_split(rec["aliases"]),
                same_as=same_as,
                note=rec["note"],
                exempt=rec["name"] in exempt,
            )
        )
    rows = {i.row for i in found}
    for inst in found:
        if inst.same_as is not None and (inst.same_as not in rows or inst.same_as == inst.row):
            raise DataFileError(path, None, f"{inst.name}: same_as {inst.same_as} is not another row")
    if not found:
        raise DataFileError(path, None, "the roster is empty")
    return sorted(found, key=lambda i: i.row)


def _read_bureaus(path: Path, roster_rows: set[int]) -> list[Bureau]:
    found: list[Bureau] = []
    for line, rec in _rows(path, BUREAU_COLUMNS):
        if rec["district"] not in DISTRICTS:
            raise DataFileError(path, line, f"unknown district {rec['district']!r}")
        if not rec["name"]:
            raise DataFileError(path, line, "name is empty")
        roster_row = int(rec["roster_row"]) if rec["roster_row"].isdigit() else None
        if roster_row is not None and roster_row not in roster_rows:
            raise DataFileError(path, line, f"roster_row {roster_row} is not in the roster")
        found.append(Bureau(rec["district"], rec["name"], _split(rec["aliases"]), roster_row))
    return found


def resolve_institution(roster: Roster, text: str) -> str:
    """The roster name a clerk means by a name, an alias or a row number.

    Raises NotFoundError (with close names as suggestions) or AmbiguousError (with candidates).
    """
    typed = text.strip()
    if not typed:
        raise NotFoundError("请输入机构名称、别名或名单序号")
    found = roster.resolve(typed)
    if len(found) > 1 and len({roster.group(name)[0] for name in found}) == 1:
        found = [roster.group(found[0])[0]]  # two rows that are one hospital: either name satisfies both
    if len(found) == 1:
        return found[0]
    if found:
        candidates = [f"{roster.by_name[n].row} {n}" for n in found]
        raise AmbiguousError(f"「{typed}」对应 {len(found)} 家机构，请写全称、别名或序号：", candidates)
    if any(key.startswith("bureau:") for key in roster.index.lookup_exact(normalise(typed))):
        raise NotFoundError(f"「{typed}」是区卫健局，不在附件1名单上；请指明报告属于哪家机构")
    if typed.isdigit():
        raise NotFoundError(f"名单中没有第 {typed} 行（共 {len(roster)} 行，用 intake roster 查看）")
    raise NotFoundError(f"名单中没有「{typed}」" + _suggest(roster, typed))


def _suggest(roster: Roster, typed: str) -> str:
    names: dict[str, str] = {}
    for inst in roster:
        for variant in (inst.name, *inst.aliases):
            names.setdefault(normalise(variant), inst.name)
    close = difflib.get_close_matches(normalise(typed), list(names), n=5, cutoff=0.5)
    picks = list(dict.fromkeys(names[c] for c in close))
    return "；是否指：" + "、".join(picks) if picks else "（用 intake roster 查看名单）"
