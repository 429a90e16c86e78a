"""Is the sender address of a message trustworthy enough to attribute a report by it?

Anyone can write `From: xxk@hospital.example`.  The commission's own mail server checks
SPF, DKIM and DMARC and stamps its verdicts in an `Authentication-Results` header
(RFC 8601) that begins with its authserv-id (`[security] authserv_id`).  Only those
headers are believed: a sender can add Authentication-Results of its own, so any
other authserv-id is ignored.  The address is not used as evidence when a trusted
header says spf, dkim or dmarc = fail (any one of them, in any trusted header: a forged
"pass" added by the sender cannot outvote our server's "fail"), or when the message
has more than one From: header or From: address (a known way to show one sender to
people and another to filters).  SPF "softfail" is not a failure here: many hospital
domains publish "~all" while still sending from unlisted relays.  A message our server
did not judge at all (no trusted header) keeps its address evidence, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.types import ParsedMessage

CHECKED_METHODS = ("spf", "dkim", "dmarc")
FAILING = frozenset({"fail"})
_METHOD = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:/\s*\d+\s*)?=\s*([A-Za-z0-9_.-]+)")
# The identity a pass is for: smtp.mailfrom (SPF), header.d / header.i (DKIM), header.from (DMARC).
_PROPERTY = re.compile(r"(?:^|\s)(smtp\.mailfrom|header\.d|header\.i|header\.from)\s{0,8}=\s{0,8}([^\s;]{1,320})")


@dataclass(frozen=True, slots=True)
class AuthResults:
    """One Authentication-Results header: who stamped it and its method verdicts."""

    authserv_id: str  # lower-case
    results: tuple[tuple[str, str], ...]  # (method, result), lower-case, in order
    identities: tuple[tuple[str, str], ...] = ()  # (method, domain the result is for), lower-case


@dataclass(frozen=True, slots=True)
class SenderCheck:
    """The verdict on a message's sender address."""

    trusted: tuple[AuthResults, ...]  # headers stamped by our own server
    ignored: int  # headers stamped by anyone else
    failed: tuple[str, ...]  # e.g. ("spf=fail", "dmarc=fail")
    from_addresses: int  # From: headers, or addresses in the one From: header

    def authenticated(self, from_address: str) -> bool:
        """Whether our server stamped a pass aligned with the From: domain (relaxed alignment).

        dmarc=pass (DMARC checks alignment itself), or dkim=pass / spf=pass for the From domain or
        a parent/child of it.  Never when anything failed or there are several From: addresses.
        """
        if not self.address_usable:
            return False
        domain = from_address.strip().lower().rpartition("@")[2]
        if not domain:
            return False
        for header in self.trusted:
            identities = dict(header.identities)
            for method, result in header.results:
                if result != "pass":
                    continue
                if method == "dmarc" and identities.get("dmarc", domain) == domain:
                    return True
                if method in ("dkim", "spf") and _aligned(identities.get(method, ""), domain):
                    return True
        return False

    @property
    def address_usable(self) -> bool:
        return not self.failed and self.from_addresses <= 1

    @property
    def reason(self) -> str:
        """Why the address is not used ("" when it is), in the clerks' language."""
        if self.from_addresses > 1:
            return f"邮件有 {self.from_addresses} 个发件人（From）地址，可能伪造，未按发件人地址归属"
        if self.failed:
            return f"发件人地址未通过 SPF/DKIM/DMARC 校验（{', '.join(self.failed)}），未按地址归属"
        return ""


def parse_authentication_results(value: str) -> AuthResults | None:
    """Parse one header value (RFC 8601); None when it has no authserv-id at all."""
    pieces = _split_semicolons(_strip_comments(value))
    head = pieces[0].split() if pieces else []
    if not head:
        return None
    results: list[tuple[str, str]] = []
    identities: list[tuple[str, str]] = []
    for piece in pieces[1:]:
        match = _METHOD.match(piece)
        if match:
            method = match.group(1).lower()
            results.append((method, match.group(2).lower()))
            for prop in _PROPERTY.finditer(piece[:2000]):
                identity = prop.group(2).strip('"<>').lower().rpartition("@")[2]
                if identity:
                    identities.append((method, identity))
                    break
    return AuthResults(head[0].lower(), tuple(results), tuple(identities))


def _aligned(identity: str, domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other."""
    return bool(identity) and (identity == domain or identity.endswith("." + domain) or domain.endswith("." + identity))


def check_sender(parsed: ParsedMessage, authserv_id: str) -> SenderCheck:
    """Judge the sender address of `parsed`, believing only headers stamped by `authserv_id`."""
    own = authserv_id.strip().lower()
    trusted: list[AuthResults] = []
    ignored = 0
    for value in parsed.authentication_results:
        found = parse_authentication_results(value)
        if found is not None and own and found.authserv_id == own:
            trusted.append(found)
        else:
            ignored += 1
    failed = tuple(
        dict.fromkeys(
            f"{method}={result}"
            for header in trusted
            for method, result in header.results
            if method in CHECKED_METHODS and result in FAILING
        )
    )
    return SenderCheck(tuple(trusted), ignored, failed, parsed.from_count)


def _strip_comments(value: str) -> str:
    """Remove RFC 5322 comments (nested parentheses), leaving quoted strings alone."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if quoted:
            quoted = ch != '"'
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            quoted = ch == '"'
            out.append(ch)
    return "".join(out)


def _split_semicolons(value: str) -> list[str]:
    """Split on ";" outside quoted strings."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    pieces.append("".join(current))
    return [p.strip() for p in pieces]
