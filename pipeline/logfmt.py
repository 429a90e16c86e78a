"""Structured log lines (`key=value`), as the worker writes them to the journal."""

from __future__ import annotations

import json


def logfmt(event: str, **fields: object) -> str:
    """A structured log line: `event=poll_done folder="垃圾邮件" new=3`."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = "" if value is None else str(value)
        if not text or any(c in text for c in ' ="') or not text.isascii():
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)
