"""What a mail SAYS about reports, as opposed to what it carries (issue 13, item 6).

- "代××报送" / "代××上报" (subject or the sender's own words): the report is ××'s, sent by another
  unit.  A claim, not proof: it is weighed like the subject (`W_PROXY`), it silences the sending
  unit's own signals (its address, its signature) for the reports of that mail, and the sender's
  trust is judged against ×× as for any report — so a stranger's claim is counted but stays
  "发件人待确认" (`pipeline.domain.senders`), and a claim never outweighs a document that names
  another unit in its title and 报送单位 line.
- "我院已于7月8日报送" / "我单位已按时报送": a reply disputing the status.  Without a report in the
  same mail it goes to review with the claim quoted; with one, the report counts and the claim is
  kept in its evidence.
- a "超大附件" download link (`parsers.links`): counted by its file name like an unreadable
  attachment, flagged "请下载后核对" with the link and its expiry; never fetched.

Only the sender's own words are read: quoted and forwarded text (a reminder being replied to,
"原始邮件") is cut off first, and every pattern is a bounded repetition (linear on hostile text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.types import LinkedFile
from pipeline.domain.forwards import split_inline_forward
from pipeline.domain.roster import Roster

W_PROXY = 3.0  # as much as the subject naming the unit
OWN_WORDS_CHARS = 5_000
QUOTE_CHARS = 60

_PROXY = re.compile(r"代\s{0,2}([^\s，。,；;：:、！？!?“”\"]{2,40}?)\s{0,2}(?:报送|上报|填报|提交|报)")
_US = r"(?:我院|我单位|我中心|我局|我站|我所|我司|本院|本单位|本中心|我们)"
_STATUS = re.compile(
    _US + r"[^。！？!?\n]{0,8}?已(?:经|于|在)?[^。！？!?\n，,；;]{0,16}?(?:按时|按期|如期|按要求)?"
    r"(?:报送|上报|提交|发送|报过|发过)"
)
_REPLY_HEAD = re.compile(r"写道\s{0,3}[:：]\s{0,3}$|wrote\s{0,3}:\s{0,3}$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ProxyClaim:
    """"代××报送": `key` is the roster key the ×× resolved to; `text` the claim as written."""

    key: str
    text: str


def own_words(body: str) -> str:
    """The sender's own text: before a forwarded or quoted mail, without "> " lines, bounded."""
    own, _ = split_inline_forward(body[: OWN_WORDS_CHARS * 4])
    kept = []
    for line in own.splitlines():
        if _REPLY_HEAD.search(line[-40:]):
            break  # "在 2024年7月10日，xxb@gz.gov.cn 写道：" — the quoted reminder follows
        if not line.lstrip().startswith(">"):
            kept.append(line)
    return "\n".join(kept)[:OWN_WORDS_CHARS]


def proxy_claims(subject: str, body: str, roster: Roster) -> tuple[ProxyClaim, ...]:
    """Each distinct unit a "代××报送" in the subject or the sender's own words names (roster-resolved)."""
    found: dict[str, ProxyClaim] = {}
    for text in (subject[:500], own_words(body)):
        for match in _PROXY.finditer(text):
            for mention in roster.index.find(match.group(1)):
                found.setdefault(mention.key, ProxyClaim(mention.key, _quote(match.group(0))))
    return tuple(found.values())


def status_claim(subject: str, body: str) -> str:
    """The first "我院已于…报送" of the subject or the sender's own words, quoted ("" when none)."""
    for text in (subject[:500], own_words(body)):
        match = _STATUS.search(text)
        if match:
            end = next((i for i in range(match.end(), min(len(text), match.end() + 30)) if text[i] in "。！？!?\n"),
                       min(len(text), match.end() + 30))  # fmt: skip
            return _quote(text[match.start() : end])
    return ""


def linked_note(link: LinkedFile) -> str:
    """The clerk's note on a linked file: its name, expiry and link (the link is never fetched)."""
    name = link.filename or "（未写文件名）"
    expiry = f"，链接{link.expires}到期" if link.expires else "，链接有效期未写明"
    size = f"（{link.size}）" if link.size else ""
    return f"超大附件 {name}{size} 只有下载链接，系统不下载{expiry}。请下载后核对：{link.url}"


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
