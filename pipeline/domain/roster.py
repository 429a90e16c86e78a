"""The Annex 1 roster and the district health bureaus, loaded from clerk-maintained CSV files.

`data/roster.csv`: row,name,district,channel,aliases,same_as,note
`data/bureaus.csv`: district,name,aliases,roster_row
Every problem is reported with the file and line, so a clerk can fix it in Excel.
"""

from __future__ import annotations

import copy
import csv
import difflib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.config import Campaign
from pipeline.domain.matching import NameIndex, normalise
from pipeline.errors import AmbiguousError, ConfigError, DataFileError, NotFoundError
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
        self.exempt_names: tuple[str, ...] = tuple(i.name for i in institutions if i.exempt)  # canonical
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

    def marked_exempt(self, names: tuple[str, ...]) -> Roster:
        """This roster with exactly `names` (canonical) exempt.  Names do not change, so the name index
        and the row groups are shared, not rebuilt (seconds for a large roster)."""
        marked = copy.copy(self)
        marked.institutions = [replace(i, exempt=i.name in names) for i in self.institutions]
        marked.by_name = {inst.name: inst for inst in marked.institutions}
        marked.by_row = {inst.row: inst for inst in marked.institutions}
        marked.exempt_names = names
        return marked

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
    institutions = _read_institutions(campaign.roster, set())
    bureaus = _read_bureaus(campaign.bureaus, {i.row for i in institutions})
    roster = Roster(institutions, bureaus)
    problems = roster.index.collisions()
    if problems:
        raise DataFileError(campaign.roster, None, "别名冲突（同一名称指向两个单位）：" + "; ".join(problems[:5]))
    exempt = _resolve_exempt(roster, campaign)
    if not exempt:
        return roster
    # [campaign] exempt may use any documented name: the roster keeps the canonical ones.
    return roster.marked_exempt(exempt)


def _resolve_exempt(roster: Roster, campaign: Campaign) -> tuple[str, ...]:
    names: list[str] = []
    for text in campaign.exempt:
        unit = resolve_unit(roster, text, bureaus=False)
        if unit.name is None:
            raise ConfigError(f"[campaign] exempt（免报名单）：{unit.problem}")
        names.append(unit.name)
    return tuple(dict.fromkeys(names))


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
        raise DataFileError(path, None, "文件不存在") from err
    except UnicodeDecodeError as err:
        raise DataFileError(path, None, "不是 UTF-8 编码（请在 Excel 中另存为「CSV UTF-8」）") from err
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFileError(path, 1, f"缺少列：{'、'.join(missing)}")
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
            raise DataFileError(path, line, "name（名称）为空")
        if not rec["row"].isdigit():
            raise DataFileError(path, line, f"row（序号）应为数字，而不是「{rec['row']}」")
        row = int(rec["row"])
        if row in seen_rows:
            raise DataFileError(path, line, f"序号 {row} 重复出现")
        if rec["name"] in seen_names:
            raise DataFileError(path, line, f"{rec['name']} 已在第 {seen_names[rec['name']]} 行出现")
        if rec["district"] and rec["district"] not in DISTRICTS:
            raise DataFileError(path, line, f"未知的区「{rec['district']}」（应为 {' '.join(DISTRICTS)} 之一）")
        if rec["channel"] not in CHANNELS:
            raise DataFileError(path, line, f"channel（报送渠道）应为 direct 或 bureau，而不是「{rec['channel']}」")
        if rec["channel"] == Channel.BUREAU and not rec["district"]:
            raise DataFileError(path, line, "channel 为 bureau（经区卫健局报送）时必须填写 district（区）")
        same_as = int(rec["same_as"]) if rec["same_as"].isdigit() else None
        if rec["same_as"] and same_as is None:
            raise DataFileError(path, line, f"same_as 应为名单序号，而不是「{rec['same_as']}」")
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
            raise DataFileError(path, None, f"{inst.name}：same_as {inst.same_as} 不是名单中的另一行")
    if not found:
        raise DataFileError(path, None, "名单为空")
    return sorted(found, key=lambda i: i.row)


def _read_bureaus(path: Path, roster_rows: set[int]) -> list[Bureau]:
    found: list[Bureau] = []
    for line, rec in _rows(path, BUREAU_COLUMNS):
        if rec["district"] not in DISTRICTS:
            raise DataFileError(path, line, f"未知的区「{rec['district']}」（应为 {' '.join(DISTRICTS)} 之一）")
        if not rec["name"]:
            raise DataFileError(path, line, "name（名称）为空")
        roster_row = int(rec["roster_row"]) if rec["roster_row"].isdigit() else None
        if roster_row is not None and roster_row not in roster_rows:
            raise DataFileError(path, line, f"roster_row {roster_row} 不在名单中")
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


# -- names in the clerks' data files ------------------------------------------------------------
# Any documented name of a roster row or a bureau: the roster name, aliases and derived variants
# (without 广州市/广东省, other spacing, brackets, widths), resolved by the roster's NameIndex; an
# unknown name gets the nearest valid one as a hint, an ambiguous one is refused with both.


@dataclass(frozen=True)
class Resolved:
    """`name` is the canonical unit (a roster name, or a bureau's name when the bureau is no roster row)."""

    name: str | None
    problem: str  # Chinese, empty when `name` is set


def resolve_unit(roster: Roster, text: str, *, bureaus: bool = True) -> Resolved:
    """The unit `text` names as a whole, or why not (unknown: with the nearest name; ambiguous: both)."""
    wanted = normalise(text)
    if not wanted:
        return Resolved(None, "单位名称为空")
    names: list[str] = []
    for key in roster.index.lookup_exact(wanted):
        if key.startswith("bureau:"):
            if not bureaus:
                continue
            name = roster.bureau_by_district[key.removeprefix("bureau:")].name
        else:
            name = roster.group(key)[0]  # two rows that are one hospital: the first row
        if name not in names:
            names.append(name)
    if len(names) == 1:
        return Resolved(names[0], "")
    if names:
        return Resolved(None, f"「{text}」可能指多个单位：{'、'.join(names)}，请写全称")
    hint = nearest_name(roster, text, bureaus=bureaus)
    where = "名单（roster.csv）和区卫健局（bureaus.csv）" if bureaus else "名单（roster.csv）"
    return Resolved(None, f"「{text}」不在{where}中" + (f"，是否想写「{hint}」？" if hint else ""))


def nearest_name(roster: Roster, text: str, *, bureaus: bool = True) -> str:
    """The closest roster (or bureau) name or alias to `text`, as printed; "" when none is close."""
    candidates: dict[str, str] = {}
    for inst in roster:
        for name in (inst.name, *inst.aliases):
            candidates.setdefault(normalise(name), inst.name)
    if bureaus:
        for bureau in roster.bureaus:
            for name in (bureau.name, *bureau.aliases):
                candidates.setdefault(normalise(name), bureau.name)
    match = difflib.get_close_matches(normalise(text), list(candidates), n=1, cutoff=0.5)
    return candidates[match[0]] if match else ""
