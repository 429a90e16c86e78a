"""Decoding bytes of unreliable charset into text, and HTML into readable text.

Chinese mail clients label GBK (and GB18030) text as gb2312 routinely; a strict
gb2312 codec turns characters such as 喆 or 镕 into garbage or errors.  Every
GB-family label is therefore decoded as GB18030, a superset of both.
"""

from __future__ import annotations

import codecs
import html
import re
from html.parser import HTMLParser

_GB_LABELS = {
    "gb2312",
    "gb_2312",
    "gb_2312-80",
    "gbk",
    "x-gbk",
    "cp936",
    "ms936",
    "euc-cn",
    "csgb2312",
    "gb18030",
    "chinese",
    "hz-gb-2312",
}
_ALIASES = {"big5": "big5hkscs", "x-unknown": "", "unknown-8bit": "", "us-ascii": "utf-8", "ascii": "utf-8"}


def normalise_charset(label: str | None) -> str:
    """Map a MIME charset label to the codec that really decodes such text ("" when unusable)."""
    if not label:
        return ""
    name = label.strip().strip('"').lower()
    if name in _GB_LABELS:
        return "gb18030"
    name = _ALIASES.get(name, name)
    if not name:
        return ""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return ""
    return "gb18030" if codec in {"gb2312", "gbk"} else codec


def decode_bytes(data: bytes, label: str | None = None) -> tuple[str, str]:
    """Decode `data`, trusting `label` only as far as it decodes cleanly.

    Returns (text, note): `note` is "" when the label decoded strictly, else a
    short English description of the repair that was needed.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace"), ""
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return data.decode("utf-16", "replace"), ""
    codec = normalise_charset(label)
    if codec:
        try:
            return data.decode(codec), ""
        except UnicodeDecodeError:
            pass
    for fallback in ("utf-8", "gb18030"):
        if fallback == codec:
            continue
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        note = f"labelled {label!r} but decoded as {fallback}" if label else ""
        return text, note
    guess = _detect(data)
    if guess:
        return data.decode(guess, "replace"), f"charset {label or 'unlabelled'} undecodable; detected {guess}"
    return data.decode(
        codec or "utf-8", "replace"
    ), f"charset {label or 'unlabelled'} undecodable; replaced bad bytes"


def _detect(data: bytes) -> str:
    from charset_normalizer import from_bytes  # imported lazily: only garbled text needs it

    best = from_bytes(data[:200_000]).best()
    return normalise_charset(best.encoding) if best is not None else ""


class _HtmlText(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK:
            self.out.append("\n")
        elif tag in {"td", "th"}:
            self.out.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


_BLANKS = re.compile(r"[ \t\u00a0\u3000]*\n[ \t\u00a0\u3000\n]*")


def html_to_text(markup: str) -> str:
    """A plain-text rendering of an HTML body: block elements become line breaks."""
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # HTMLParser is lenient, but never let a rendering stop the parse
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    text = "".join(parser.out).replace("\u00a0", " ")
    return _BLANKS.sub("\n", text).strip()
