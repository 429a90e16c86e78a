"""Who reports, when, and how: the plan of the campaign.

`plan_units` groups roster rows into reporting units (rows marked same_as are
one hospital), then decides each unit's fate: on_time, late or overdue, with
near-identical names deliberately split across fates.  `assign_recipes` gives
each directly-reporting unit one way of submitting (abbreviated name,
colleague forward, personal mailbox, resubmission ...).  The mails themselves
are built in direct.py (institutions' own) and districts.py (bureaus').
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.demo.samples.catalog import COMMISSION, Institution
from pipeline.demo.samples.common import Context, late_moment, on_time_moment

NEAR_GROUPS = (
    (
        "广州市番禺区第二人民医院",
        "广州市番禺区第三人民医院",
        "广州市番禺区第六人民医院",
        "广州市番禺区第七人民医院",
        "广州市番禺区第八人民医院",
    ),
    (
        "广州医科大学附属第一医院",
        "广州医科大学附属第二医院",
        "广州医科大学附属第三医院",
        "广州医科大学附属第五医院",
    ),
    ("广东省第二人民医院", "广东省第二中医院"),
    ("广东省妇幼保健院", "广东省妇幼保健院互联网医院"),
)
TWO_IN_ONE = ("广东省妇幼保健院", "广东省妇幼保健院互联网医院")  # one mail, both reports

# (recipe, how many per corpus as (low, high), which fates may take it)
_QUOTAS = (
    ("deadline-edge", (2, 2), ("on_time", "late")),
    ("wrong-date", (2, 2), ("late",)),
    ("colleague-forward-rfc822", (2, 2), ("on_time",)),
    ("colleague-forward-inline", (2, 2), ("on_time",)),
    ("forgot-attachment", (2, 2), ("on_time", "late")),
    ("unreadable-rar", (1, 1), ("on_time", "late")),
    ("unreadable-doc", (1, 1), ("on_time", "late")),
    ("scan-pdf", (1, 1), ("on_time", "late")),
    ("personal-mailbox", (3, 3), ("on_time", "late")),
    ("inline-report", (2, 2), ("on_time", "late")),
    ("resubmission", (3, 4), ("on_time", "late")),
    ("duplicate-send", (2, 2), ("on_time", "late")),
    ("bracket-width", (1, 1), ("on_time", "late")),
    ("abbrev", (3, 4), ("on_time", "late")),
    ("template-placeholder", (2, 2), ("on_time", "late")),
    ("partner-mention", (2, 3), ("on_time", "late")),
    ("pdf-only", (2, 2), ("on_time", "late")),
    ("docx-and-pdf", (2, 2), ("on_time", "late")),
    ("spaced-name", (2, 2), ("on_time", "late")),
    ("prefix-variant", (2, 3), ("on_time", "late")),
)


@dataclass
class Unit:
    """Roster rows that are one reporting hospital, and what happens to them."""

    members: tuple[Institution, ...]
    fate: str = "on_time"  # on_time | late | overdue
    recipe: str = "plain"
    moment: datetime | None = None  # receipt time of its first report

    @property
    def primary(self) -> Institution:
        return self.members[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(member.name for member in self.members)


def plan_units(ctx: Context) -> list[Unit]:
    """Every non-exempt reporting unit with a fate; ~6 overdue, ~8 late, the rest on time."""
    rng = ctx.rng
    units: list[Unit] = []
    seen: set[int] = set()
    for institution in ctx.catalog.institutions:
        if institution.name == COMMISSION or institution.row in seen:
            continue
        group = ctx.catalog.same_hospital(institution)
        seen |= {member.row for member in group}
        units.append(Unit(group))
    by_name = {name: unit for unit in units for name in unit.names}
    protected = {id(unit) for unit in units if len(unit.members) > 1}
    protected |= {id(by_name[name]) for name in TWO_IN_ONE if name in by_name}

    def split(names: tuple[str, ...], fate: str) -> None:
        candidates = [by_name[name] for name in names if name in by_name]
        candidates = [unit for unit in candidates if unit.fate == "on_time" and id(unit) not in protected]
        if candidates:
            rng.choice(candidates).fate = fate

    # The protected units always report, but not always on time.
    pair_units = [unit for unit in units if len(unit.members) > 1]
    two_in_one = [by_name[name] for name in TWO_IN_ONE if name in by_name]
    for chosen, chance in ((pair_units, 0.25), (two_in_one, 0.2)):
        if rng.random() < chance:
            for unit in chosen:
                unit.fate = "late"
    # Near-identical names must not share a fate, or a matcher that confuses them passes.
    split(NEAR_GROUPS[0], "overdue")
    split(NEAR_GROUPS[0], "late")
    split(NEAR_GROUPS[1], rng.choice(("late", "overdue")))
    split(NEAR_GROUPS[2], "late")
    free = [unit for unit in units if unit.fate == "on_time" and id(unit) not in protected]
    rng.shuffle(free)
    # The direct recipes need a few late and one overdue direct unit of their own (wrong
    # Date:, just after midnight, a forgotten attachment never resent).
    for fate, needed in (("late", 3), ("overdue", 1)):
        have = sum(unit.fate == fate and is_direct(unit) and id(unit) not in protected for unit in units)
        spare = [unit for unit in free if unit.fate == "on_time" and is_direct(unit)]
        for unit in spare[: max(0, needed - have)]:
            unit.fate = fate
    for fate, target in (("overdue", rng.randint(5, 7)), ("late", rng.randint(7, 9))):
        spare = [unit for unit in free if unit.fate == "on_time"]
        for unit in spare[: max(0, target - sum(unit.fate == fate for unit in units))]:
            unit.fate = fate
    for unit in units:
        if unit.fate == "on_time":
            unit.moment = on_time_moment(rng)
        elif unit.fate == "late":
            unit.moment = late_moment(rng)
    return units


def is_direct(unit: Unit) -> bool:
    """Reports by its own mail (bureaus on the roster report inside their district's mails)."""
    return unit.primary.channel == "direct" and not unit.primary.is_bureau


def assign_recipes(ctx: Context, units: list[Unit]) -> None:
    """Give each reporting direct unit one submission recipe, honouring the quotas."""
    rng = ctx.rng
    direct = [unit for unit in units if is_direct(unit) and unit.fate != "overdue"]
    for unit in direct:
        if len(unit.members) > 1:
            unit.recipe = "same-hospital-pair"
        elif unit.primary.name in TWO_IN_ONE:
            unit.recipe = "two-institutions"
    open_units = [unit for unit in direct if unit.recipe == "plain"]
    rng.shuffle(open_units)
    for recipe, (low, high), fates in _QUOTAS:
        wanted = rng.randint(low, high)
        eligible = [
            unit
            for unit in open_units
            if unit.recipe == "plain" and unit.fate in fates and _fits(unit, recipe)
        ]
        if recipe == "deadline-edge":
            # one just before midnight, one just after
            chosen = [
                unit for fate in ("on_time", "late") for unit in [u for u in eligible if u.fate == fate][:1]
            ]
        else:
            chosen = eligible[:wanted]
        for unit in chosen:
            unit.recipe = recipe


def _fits(unit: Unit, recipe: str) -> bool:
    name = unit.primary.name
    if recipe == "abbrev":
        return bool(unit.primary.aliases)
    if recipe == "prefix-variant":
        return name.startswith(("广州市", "广东省"))
    if recipe == "bracket-width":
        return "（" in name or unit.primary.row % 3 == 0
    return True
