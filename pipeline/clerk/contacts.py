"""Contacts as the clerks see them (with delivery health), and learning a sender's address on a clerk's confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.context import Context
from pipeline.domain.contacts import Contact
from pipeline.vocab import AddressHealth
from storage.ledger import fetch_failing_addresses, fetch_last_use
from storage.schema import learned_contacts, now_utc


@dataclass(frozen=True, slots=True)
class ContactUse:
    """A contact with its delivery health and the last mail we actually sent to it."""

    contact: Contact
    status: AddressHealth
    last_error: str
    last_used_at: datetime | None
    last_occasion: str


def list_contacts(ctx: Context, data: CampaignData | None = None) -> list[ContactUse]:
    """Every contact with its delivery health (the one failing-address query) and its last use."""
    data = data or load_campaign_data(ctx)
    with ctx.db.connect() as conn:
        failing = fetch_failing_addresses(conn)
        last_use = fetch_last_use(conn)
    result = []
    for contact in data.contacts:
        used = last_use.get(contact.address)
        error = failing.get(contact.address)
        result.append(ContactUse(contact, AddressHealth.FAILING if error is not None else AddressHealth.OK,
                                 error or "", used[0] if used else None, used[1] if used else ""))  # fmt: skip
    return result


def save_learned_contact(conn, institution: str, address: str, message_id: int | None) -> bool:  # noqa: ANN001
    """Remember that `address` sent a confirmed report of `institution`; False when already known."""
    address = address.strip().lower()
    exists = conn.execute(
        select(learned_contacts.c.id).where(
            (learned_contacts.c.institution == institution) & (learned_contacts.c.address == address)
        )
    ).first()
    if exists or "@" not in address:
        return False
    conn.execute(insert(learned_contacts).values(institution=institution, address=address, learned_from=message_id,
                                                 learned_at=now_utc(), status=AddressHealth.OK, last_error=""))  # fmt: skip
    return True
