"""Archive passwords a sender wrote in the mail body ("解压密码：2024gz", "密码为 abc123").

Only what the sender wrote is used, never a guess.  The pattern has no nested or unbounded
quantifiers and the scan is limited to the first `_SCAN_CHARS` characters, so hostile bodies
cost linear time.
"""

from __future__ import annotations

import re

_SCAN_CHARS = 20_000
_MAX_PASSWORDS = 5
# A label (解压密码 / 压缩包密码 / 附件密码 / 密码 / password), an optional 是/为/: and the password:
# ASCII letters, digits and common symbols, 1-32 of them, ended by anything else.
_PASSWORD = re.compile(
    r"(?:解压缩?密码|压缩包?密码|附件密码|文件密码|打开密码|密码|password|pwd)"
    r"[ \t\u3000]{0,3}(?:是|为|[:：=])?[ \t\u3000]{0,3}[\"“'‘「]?"
    r"([A-Za-z0-9!@#$%^&*_+\-.~]{1,32})",
    re.IGNORECASE,
)


def find_passwords(text: str) -> tuple[str, ...]:
    """Distinct passwords given in `text`, in order of appearance (at most five)."""
    found: list[str] = []
    for match in _PASSWORD.finditer(text[:_SCAN_CHARS]):
        value = match.group(1).rstrip(".")
        if value and value not in found:
            found.append(value)
        if len(found) >= _MAX_PASSWORDS:
            break
    return tuple(found)
