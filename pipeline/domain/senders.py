"""Who a sender is to the commission: one rule each, used by attribution, receipts and the clerks' actions."""

from __future__ import annotations


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
