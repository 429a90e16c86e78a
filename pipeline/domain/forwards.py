"""Recognise a message forwarded inline ("-------- 转发的邮件 --------", "---原始邮件---").

Foxmail, QQ Mail, Coremail and Outlook quote the forwarded mail's sender,
time and subject in a small header block; the text below it is the original
mail's body.  Attribution reads that block as the real sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

_MARKER = re.compile(
    # `[^\S\n]` (white space but not a line break): with MULTILINE a `\s*` after `^` ran over every
    # following blank line, and 40,000 blank lines made the search quadratic.
    r"^[^\S\n]*[-—=_]{2,}[^\S\n]*(转发的邮件|转发的消息|转发邮件|原始邮件|原始消息|回复的邮件|Forwarded message|Original Message|Forwarded Message)[^\S\n]*[-—=_]{2,}[^\S\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_FIELD = re.compile(r"^\s*(发件人|From|主题|Subject|发送时间|Sent|Date|时间|日期|收件人|To|抄送|Cc)\s*[:：]\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class InlineForward:
    sender_name: str
    sender_address: str
    subject: str
    body: str


def split_inline_forward(text: str) -> tuple[str, InlineForward | None]:
    """(the forwarder's own text, the forwarded mail) — or (text, None) when nothing is forwarded."""
    match = _MARKER.search(text)
    if match is None:
        return text, None
    own = text[: match.start()]
    rest = text[match.end() :].lstrip("\r\n").splitlines()
    fields: dict[str, str] = {}
    body_start = 0
    for index, line in enumerate(rest[:12]):
        found = _FIELD.match(line)
        if found:
            fields.setdefault(found.group(1).lower(), found.group(2).strip())
            body_start = index + 1
        elif line.strip() and fields:
            break
    sender_field = fields.get("发件人") or fields.get("from") or ""
    name, address = parseaddr(sender_field.replace("&lt;", "<").replace("&gt;", ">"))
    if not address and "@" in sender_field:
        address = sender_field.strip("<> \"")
    subject = fields.get("主题") or fields.get("subject") or ""
    body = "\n".join(rest[body_start:])
    return own, InlineForward(name.strip('" '), address.lower(), subject, body)
