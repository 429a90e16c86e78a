"""How a mail asks: 请 to units the commission leads, 烦请 to those it does not.

The commission directs the municipal institutions (名称以「广州市」开头) and, through the district
bureaus, the district-run ones; it does not direct provincial hospitals (广东省…), university
hospitals (…大学…), military hospitals and private ones, which report to it by courtesy of
the notice.  The rule reads the roster: a unit that reports through its district bureau, or
is a district bureau, is subordinate; otherwise it is subordinate when its name (after a leading
广东省 before 广州市) starts with 广州市 and names no university.  Everything else gets 烦请.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.domain.roster import Roster
from pipeline.vocab import Channel

_NOT_DIRECTED_WORDS = ("大学", "解放军", "战区", "武警", "集团军", "军区")


def is_subordinate(roster: Roster | None, name: str) -> bool:
    """True when the commission directs `name` (a roster name or a bureau name)."""
    if roster is not None:
        if name in roster.bureau_by_name:
            return True
        inst = roster.by_name.get(name)
        if inst is not None and inst.channel == Channel.BUREAU:
            return True
        if inst is not None and roster.bureau_for(inst.name) is not None:
            return True
    plain = name.removeprefix("广东省") if name.startswith("广东省广州市") else name
    return plain.startswith("广州市") and not any(word in plain for word in _NOT_DIRECTED_WORDS)


def request_word(roster: Roster | None, names: Iterable[str]) -> str:
    """"请" when the commission directs every unit addressed, else "烦请"."""
    return "请" if all(is_subordinate(roster, n) for n in names) else "烦请"
