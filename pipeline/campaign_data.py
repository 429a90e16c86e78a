"""What a job knows about the campaign, loaded once per job and passed down explicitly.

The roster and bureaus (data files), the contacts (contacts.csv plus addresses the
clerks confirmed, from the database), the sender facts attribution reads, and the
recogniser compiled from the campaign's rules in config.toml.  A job
that changes contacts (a clerk's confirmation) loads a fresh `CampaignData` for the
work that follows; nothing is cached behind the caller's back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from pipeline.context import Context
from pipeline.domain.attribution import AttributionFacts
from pipeline.domain.contacts import Contact, build_facts, read_contacts
from pipeline.domain.recognition import Recognizer
from pipeline.domain.roster import Roster, load_roster
from pipeline.errors import ConfigError
from storage.schema import learned_contacts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignData:
    roster: Roster
    contacts: tuple[Contact, ...]  # the file's first, then learned ones (source "learned")
    facts: AttributionFacts
    recognizer: Recognizer  # the campaign's report rules, compiled once
    problems: tuple[str, ...] = ()  # Chinese, one per bad line of a data file (contacts.csv): recorded, not raised

    def require_clean(self) -> None:
        """Raise the data-file problems (for work that must not run on a half-read file: reminders)."""
        if self.problems:
            raise ConfigError("数据文件有错误，请先改正：\n" + "\n".join(self.problems))


def load_campaign_data(ctx: Context, roster: Roster | None = None) -> CampaignData:
    """Roster, contacts and sender facts as they are now (pass `roster` to reuse one already loaded)."""
    campaign = ctx.config.campaign
    roster = roster or load_roster(campaign)
    # A bad line in contacts.csv never stops mail from being taken in: the good lines are used and
    # each bad one is a recorded problem (shown by `intake health`; reminders refuse to run on it).
    contacts_file = read_contacts(ctx.config.reminders.contacts, roster)
    contacts = contacts_file.contacts
    with ctx.db.connect() as conn:
        contacts += load_learned(conn, roster)
    facts = build_facts(
        contacts,
        roster,
        own_domains=campaign.own_domains,
        mailbox=campaign.mailbox_address,
        exempt=frozenset(roster.exempt_names),
        authserv_id=ctx.config.authserv_id,
    )
    problems = tuple(str(p) for p in contacts_file.problems)
    for problem in problems:
        log.warning("data file problem: %s", problem)
    return CampaignData(roster, tuple(contacts), facts, Recognizer(campaign.rules), problems)


def load_learned(conn, roster: Roster) -> list[Contact]:  # noqa: ANN001 - a SQLAlchemy Connection
    """Addresses clerks confirmed for a roster institution."""
    rows = conn.execute(select(learned_contacts).order_by(learned_contacts.c.id))
    return [
        Contact(r.institution, r.address, "", "", "learned") for r in rows if r.institution in roster.by_name
    ]
