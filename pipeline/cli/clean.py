"""Mail-derived text made safe for a terminal: no control characters, no rich markup.

A subject, a sender name or a filename is written by a stranger.  Printed as is, an ESC
sequence can recolour, retitle or rewrite the clerk's terminal, and a `[/]` in a subject
crashes rich's markup parser.  `shown(text)` is for text put into a rich markup string or a
table cell; `plain(text)` is for CSV/JSON output (controls removed, nothing escaped).
"""

from __future__ import annotations

import re

# C0 (except tab and newline, handled below), DEL, C1, and the bidi controls that reorder what is shown.
_CONTROLS = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]")
_LINE_BREAKS = re.compile("[\\t\\n\\u2028\\u2029]")


def plain(value: object, *, lines: bool = False) -> str:
    """`str(value)` without control characters; tabs (and newlines unless `lines`) become spaces."""
    text = _CONTROLS.sub("", str(value))
    if lines:
        return text.replace("\t", " ").replace("\u2028", "\n").replace("\u2029", "\n")
    return _LINE_BREAKS.sub(" ", text)


def shown(value: object, *, lines: bool = False) -> str:
    """`plain(value)` with rich markup escaped: safe inside `console.print(f"...{shown(x)}...")`."""
    from rich.markup import escape  # here, not at import: `intake --help` never prints mail

    return escape(plain(value, lines=lines))
