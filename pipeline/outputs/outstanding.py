"""The 未报送名单 sheet: who has not submitted (overdue first, then pending), with whom to phone.

For a unit that reports through its district bureau, the bureau's contacts are listed when
the unit has none of its own (the bureau is who the reminder goes to).  Contacts come from
the snapshot (contacts.csv and the addresses clerks confirmed); a unit nobody has a contact
for shows 「无联系人」 so the gap is visible on paper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

from pipeline.domain.contacts import Contact
from pipeline.labels_zh import label
from pipeline.outputs.sheets import Table
from pipeline.outputs.snapshot import CampaignSnapshot
from pipeline.vocab import Channel, Status

OUTSTANDING_COLUMNS = ["序号", "机构", "区", "报送渠道", "状态", "联系单位", "联系人", "邮箱", "电话", "已发催报次数"]


@dataclass(frozen=True, slots=True)
class ContactLine:
    """Whom to contact about one unit (the sheet's and the console's 未报送 lists)."""

    via: str  # the unit, or its bureau; "" when nobody has a contact
    people: tuple[str, ...]
    addresses: tuple[str, ...]
    phones: tuple[str, ...]


def contact_lines(snapshot: CampaignSnapshot) -> Callable[[str], ContactLine]:
    """A lookup roster name -> its ContactLine: the unit's own contacts, else its bureau's."""
    by_unit: dict[str, list[Contact]] = {}
    for contact in snapshot.contacts:
        by_unit.setdefault(contact.institution, []).append(contact)

    def line(name: str) -> ContactLine:
        contacts, via = by_unit.get(name, []), name
        bureau = snapshot.roster.reporting_bureau(name)
        if not contacts and bureau is not None:
            contacts = by_unit.get(bureau.name, [])
            if not contacts and bureau.roster_row is not None:
                contacts = by_unit.get(snapshot.roster.by_row[bureau.roster_row].name, [])
            via = bureau.name
        return ContactLine(via if contacts else "", tuple(dict.fromkeys(c.person for c in contacts if c.person)),
                           tuple(dict.fromkeys(c.address for c in contacts)),
                           tuple(dict.fromkeys(c.phone for c in contacts if c.phone)))  # fmt: skip

    return line


def outstanding_table(snapshot: CampaignSnapshot, tz: tzinfo, reminders_sent: dict[str, object]) -> Table:
    """Overdue and pending roster rows, overdue first, each in roster order."""
    lines = contact_lines(snapshot)
    table = Table("未报送名单", list(OUTSTANDING_COLUMNS), widths={"邮箱": 30, "联系单位": 26, "电话": 16})
    for wanted in (Status.OVERDUE, Status.PENDING):
        for s in snapshot.with_status(wanted):
            inst = s.institution
            c = lines(inst.name)
            table.rows.append([
                inst.row, inst.name, inst.district, label(inst.channel, Channel), label(s.status, Status),
                c.via or "无联系人", "、".join(c.people), "；".join(c.addresses), "、".join(c.phones),
                reminders_sent.get(inst.name, 0),
            ])  # fmt: skip
    return table
