"""Shared pieces of corpus generation: the campaign clock, the generation context
and `Composed`, one rendered mail together with the truth about it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone

from pipeline.demo.samples.catalog import COMMISSION, Catalog, Contact, Institution
from pipeline.demo.samples.clients import (
    ORGANISATION_CLIENTS,
    ClientStyle,
    Draft,
    Mailbox,
    client_style,
    render,
)

CST = timezone(timedelta(hours=8))
NOTICE_AT = datetime(2024, 7, 7, 16, 30, tzinfo=CST)  # the notice goes out on a Sunday afternoon
DEADLINE = datetime(2024, 7, 10, 23, 59, 59, tzinfo=CST)
DEFAULT_AS_OF = datetime(2024, 7, 12, 9, 0, tzinfo=CST)
LAST_MAIL_AT = DEFAULT_AS_OF - timedelta(minutes=2)
COMMISSION_MAILBOX = "xxb@gz.gov.cn"
# Colleagues in the commission who receive reports by mistake and forward them.
COLLEAGUES = (
    ("张建国", "zhangjg@gz.gov.cn", "张科长"),
    ("李晓红", "lixh@gz.gov.cn", "李科长"),
    ("陈志强", "chenzq@gz.gov.cn", "陈主任"),
)
_GB2312_GAPS_CACHE: dict[str, bool] = {}


@dataclass(frozen=True)
class Composed:
    """A rendered mail and what a correct pipeline must conclude from it."""

    raw: bytes
    received_at: datetime
    expected_kind: str  # "report" or "unrelated"
    expected_institutions: tuple[str, ...]
    trap: str
    channel: str  # direct | bureau | forward | personal | noise: used in the file name
    folder: str = "INBOX"


def has_gbk_only_chars(text: str) -> bool:
    """True when `text` has characters GBK can encode but GB2312 cannot (喆, 镕 ...)."""
    cached = _GB2312_GAPS_CACHE.get(text)
    if cached is None:
        try:
            text.encode("gb2312")
            cached = False
        except UnicodeEncodeError:
            cached = True
        _GB2312_GAPS_CACHE[text] = cached
    return cached


def moment_between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A uniformly random second in [start, end]."""
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randint(0, max(0, span)))


def office_moment(rng: random.Random, day: int, *, evening_share: float = 0.12) -> datetime:
    """A time on 2024-07-`day` shaped like office mail: mornings, afternoons, some evenings."""
    base = datetime(2024, 7, day, tzinfo=CST)
    part = rng.random()
    if part < evening_share:
        return moment_between(rng, base.replace(hour=19), base.replace(hour=23, minute=40))
    if part < evening_share + (1 - evening_share) * 0.42:
        return moment_between(rng, base.replace(hour=8, minute=20), base.replace(hour=12, minute=5))
    return moment_between(rng, base.replace(hour=14, minute=20), base.replace(hour=18, minute=40))


def on_time_moment(rng: random.Random, *, earliest_day: int = 7) -> datetime:
    """A receipt time before the deadline, weighted to the last day as real campaigns are."""
    days = [day for day in (7, 8, 9, 10) if day >= earliest_day]
    weights = {7: 3, 8: 20, 9: 32, 10: 45}
    day = rng.choices(days, [weights[day] for day in days])[0]
    moment = office_moment(rng, day)
    if day == 7:
        moment = moment_between(rng, NOTICE_AT + timedelta(minutes=40), NOTICE_AT.replace(hour=22))
    return min(moment, DEADLINE - timedelta(seconds=30))


def late_moment(rng: random.Random) -> datetime:
    """A receipt time after the deadline but before the default as-of time."""
    if rng.random() < 0.82:
        return office_moment(rng, 11, evening_share=0.08)
    return moment_between(rng, datetime(2024, 7, 12, 7, 30, tzinfo=CST), LAST_MAIL_AT - timedelta(minutes=5))


def sender_clock(rng: random.Random, received_at: datetime) -> datetime | None:
    """The sender's Date: header: usually seconds before receipt, sometimes skewed or absent."""
    roll = rng.random()
    if roll < 0.03:
        return None
    if roll < 0.07:
        # A PC clock off by hours, or by a whole day (a +1 day Date on an on-time mail looks late).
        return received_at + timedelta(hours=rng.choice((-8, -3, 1, 2, -24, 24)), minutes=rng.randint(0, 59))
    if roll < 0.10:
        # Right digits, wrong zone: a PC set to UTC writes local wall time with +0000.
        return received_at.replace(tzinfo=UTC) - timedelta(seconds=rng.randint(5, 90))
    return received_at - timedelta(seconds=rng.randint(3, 120))


@dataclass
class Context:
    """Catalog, randomness and per-run memory (each sender keeps one mail client)."""

    catalog: Catalog
    rng: random.Random
    styles: dict[str, str] = field(default_factory=dict)

    def contact(self, name: str) -> Contact:
        return self.rng.choice(self.catalog.contacts_of(name))

    def mailbox(self, contact: Contact, organisation: str) -> Mailbox:
        """The From: of a contact: a person, an office, or the organisation's name."""
        display = self.rng.choice(
            (contact.person, contact.person, contact.person, organisation, f"{contact.role}")
        )
        return Mailbox(display, contact.address)

    def style_for(self, address: str, choices: tuple[str, ...] = ORGANISATION_CLIENTS) -> ClientStyle:
        """The client a sender uses: fixed per address for the run, varied per mail in detail."""
        name = self.styles.setdefault(address, self.rng.choice(choices))
        return client_style(name, self.rng)

    def commission(self) -> tuple[Mailbox, ...]:
        display = self.rng.choice(("市卫健委信息科", "广州市卫生健康委员会", "xxb", "", "信息科"))
        return (Mailbox(display, COMMISSION_MAILBOX),)

    def compose(
        self,
        draft: Draft,
        *,
        kind: str,
        institutions: tuple[str, ...] = (),
        trap: str,
        channel: str,
        style: ClientStyle | None = None,
        folder: str = "INBOX",
    ) -> Composed:
        """Render `draft` with the sender's client (or `style`) and attach the truth."""
        chosen = style or self.style_for(draft.sender.address)
        if self.rng.random() < 0.05:
            draft = replace(draft, with_message_id=False)  # some relays and scripts send none
        raw = render(draft, chosen, self.rng)
        return Composed(raw, draft.received_at, kind, institutions, trap, channel, folder)


def noise_moment(ctx: Context, *, earliest: datetime = NOTICE_AT) -> datetime:
    """Any office-shaped time from the notice to the as-of morning."""
    rng = ctx.rng
    day = rng.choices((7, 8, 9, 10, 11, 12), (6, 22, 22, 22, 20, 5))[0]
    moment = (
        office_moment(rng, day)
        if day < 12
        else moment_between(rng, datetime(2024, 7, 12, 7, 0, tzinfo=CST), LAST_MAIL_AT)
    )
    return min(max(moment, earliest + timedelta(minutes=rng.randint(3, 120))), LAST_MAIL_AT)


def any_institution(ctx: Context) -> Institution:
    """A random listed institution other than the commission itself."""
    return ctx.rng.choice([item for item in ctx.catalog.institutions if item.name != COMMISSION])


def institution_sender(
    ctx: Context, institution: Institution | None = None
) -> tuple[Institution, Mailbox, str]:
    """(institution, its From: mailbox, the contact person) for `institution` or a random one."""
    institution = institution or any_institution(ctx)
    contact = ctx.contact(institution.name)
    return institution, ctx.mailbox(contact, institution.name), contact.person
