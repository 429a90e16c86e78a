"""Who a sender is to the commission: one rule each, used by attribution, receipts and the clerks' actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from pipeline.domain.authenticity import SenderCheck
from pipeline.domain.roster import Roster
from storage.rows import Decision
from storage.vocab import Kind, SenderTrust


class SenderFacts(Protocol):
    """What the trust rules read about senders (`pipeline.domain.attribution.AttributionFacts` has it;
    attribution imports this module, so the type is named by its shape)."""

    @property
    def own_domains(self) -> tuple[str, ...]: ...
    @property
    def mailbox_address(self) -> str: ...
    @property
    def addresses(self) -> Mapping[str, str]: ...  # sender address -> roster name
    @property
    def bureau_addresses(self) -> Mapping[str, str]: ...  # sender address -> bureau name


def domain_of(address: str) -> str:
    """The lower-cased domain of an addr-spec ("" when there is none)."""
    local, at, domain = address.strip().lower().rpartition("@")
    return domain if at and local else ""


def is_own_address(address: str, *, own_domains: tuple[str, ...], mailbox: str = "") -> bool:
    """Whether `address` belongs to the commission itself: its mailbox, or a domain listed in `own_domains`.

    Only the listed domains count, never their subdomains: under a shared government
    domain (gz.gov.cn) a subdomain is often another body, a district bureau among them,
    whose mail must be attributed, answered and learned like anyone's.  A subdomain that
    is the commission's own is listed in `[campaign] own_domains` by name.
    """
    address = address.strip().lower()
    if not address:
        return False
    if mailbox and address == mailbox.strip().lower():
        return True
    domain = domain_of(address)
    return bool(domain) and domain in {d.strip().lower() for d in own_domains}


# -- sender trust ---------------------------------------------------------------------------------

TRUST_RANK = {
    SenderTrust.FAILED: -1,
    "": 0,  # not judged (decisions stored before trust existed): ranks with unknown
    SenderTrust.UNKNOWN: 0,
    SenderTrust.KNOWN: 1,
    SenderTrust.VERIFIED: 2,
}


def trust_rank(trust: str) -> int:
    """Order of trust levels, strongest highest; "" (not judged) ranks with unknown."""
    return TRUST_RANK.get(trust, 0)


def classify_sender(address: str, institution: str, *, check: SenderCheck, roster: Roster,
                    facts: SenderFacts) -> SenderTrust:  # fmt: skip
    """How far the sender of a report counted for `institution` is trusted.

    `failed`: our server (`[security] authserv_id`) said spf/dkim/dmarc=fail, or the mail has
    several From: addresses — never counted.  `verified`: our server stamped a pass aligned with
    the From: domain AND the address is a contact of the institution (or of the bureau it reports
    through, or a bureau that is that row).  `known`: such a contact without that pass.
    `unknown`: anyone else (personal mailboxes are common and legitimate: counted, but flagged).
    The commission's own addresses (colleagues forwarding) count as contacts.
    """
    if not check.address_usable:
        return SenderTrust.FAILED
    address = address.strip().lower()
    if not address:
        return SenderTrust.UNKNOWN
    own = is_own_address(address, own_domains=facts.own_domains, mailbox=facts.mailbox_address)
    if not (own or is_contact_of(address, institution, roster=roster, facts=facts)):
        return SenderTrust.UNKNOWN
    return SenderTrust.VERIFIED if check.authenticated(address) else SenderTrust.KNOWN


def is_contact_of(address: str, institution: str, *, roster: Roster, facts: SenderFacts) -> bool:
    """Whether `address` is a listed or learned contact of `institution`, its reporting bureau or the
    bureau that is that roster row."""
    if not institution:
        return False
    group = roster.group(institution)
    if facts.addresses.get(address) in group:
        return True
    bureau_name = facts.bureau_addresses.get(address)
    if not bureau_name:
        return False
    bureaus = {b.name for name in group for b in (roster.reporting_bureau(name), roster.bureau_for(name)) if b}
    return bureau_name in bureaus


def with_sender_trust(decisions: tuple[Decision, ...], *, address: str, check: SenderCheck, roster: Roster,
                      facts: SenderFacts) -> tuple[Decision, ...]:  # fmt: skip
    """Every report decision with its sender trust; a report from a `failed` sender is not counted.

    Such a report goes to review with our server's verdict as the reason (and keeps its suggested
    institution, so the clerk sees whose name it used).
    """
    result = []
    for d in decisions:
        if d.kind != Kind.REPORT or not d.institution:
            result.append(d)
            continue
        trust = classify_sender(address, d.institution, check=check, roster=roster, facts=facts)
        if trust == SenderTrust.FAILED:
            d = replace(d, kind=Kind.NEEDS_REVIEW, reason=check.reason or "发件人未通过校验，不计入报送")
        result.append(replace(d, sender_trust=trust))
    return tuple(result)
