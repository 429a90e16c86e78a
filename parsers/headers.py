"""Decoding of header values, addresses, dates and attachment filenames.

Works on header values as Python's compat32 parser leaves them: raw 8-bit
bytes survive there as surrogate escapes, so the original bytes can always be
recovered and decoded with the right charset (GB18030 for the GB family).
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses

from mailparser.dates import parse_mail_date

from .documents.text import decode_text, normalize_charset
from .types import Address

_SURROGATES = re.compile(r"[\udc80-\udcff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_WS_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# email.header.decode_header is quadratic in the number of encoded-words: longer values are cut.
MAX_DECODED_HEADER_CHARS = 65_536


def recover_raw(value: str) -> str:
    """Undo the ascii/surrogateescape decoding of 8-bit header bytes (raw GBK or UTF-8)."""
    if not _SURROGATES.search(value):
        return value
    raw = value.encode("ascii", "surrogateescape")
    text, _ = decode_text(raw)
    return text


def decode_header_text(value: object) -> str:
    """Decode a header value: RFC 2047 encoded-words, raw 8-bit bytes, folding."""
    if value is None:
        return ""
    text = recover_raw(str(value)[:MAX_DECODED_HEADER_CHARS])
    if "=?" not in text:
        return _unfold(text)
    try:
        chunks = decode_header(text)
    except (ValueError, binascii.Error, AssertionError, HeaderParseError):
        return _unfold(_decode_words_leniently(text))
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_text(chunk, charset or "")[0])
    decoded = "".join(out)
    if "=?" in decoded:  # encoded-words glued to other text, which decode_header leaves alone
        decoded = _decode_words_leniently(decoded)
    return _unfold(decoded)


def _decode_words_leniently(text: str) -> str:
    """Decode encoded-words wherever they are (inside quotes, glued to text, bad padding)."""
    text = _WS_BETWEEN_WORDS.sub(r"\1\2", text)

    def one(match: re.Match[str]) -> str:
        charset, enc, payload = match.groups()
        try:
            if enc in "bB":
                raw = base64.b64decode(payload + "=" * (-len(payload) % 4))
            else:
                raw = quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=True)
        except (binascii.Error, ValueError):
            return match.group(0)
        return decode_text(raw, charset.split("*")[0])[0]

    return _ENCODED_WORD.sub(one, text)


def _unfold(text: str) -> str:
    return (
        " ".join(text.replace("\r", " ").replace("\n", " ").split())
        if "\n" in text or "\r" in text
        else text.strip()
    )


def clean_header(value: str) -> str:
    """A header value safe to show or reuse: no control characters, no CR/LF."""
    return _CONTROL.sub(" ", value.replace("\r", " ").replace("\n", " ")).strip()


def parse_addresses(values: list[str] | None) -> tuple[Address, ...]:
    """Parse address headers, decoding display names after splitting (names may contain commas)."""
    if not values:
        return ()
    found: list[Address] = []
    for name, addr in getaddresses([recover_raw(str(v)) for v in values]):
        name = clean_header(decode_header_text(name))
        addr = clean_header(addr).lower()
        if "@" not in addr:
            addr = ""
        if name or addr:
            found.append(Address(name, addr))
    return tuple(found)


def parse_date(value: str | None) -> datetime | None:
    """An aware datetime from an RFC 5322 date, or None when it cannot be read."""
    if not value:
        return None
    try:
        result = parse_mail_date(str(value))
    except Exception:  # mail-parser's date parser must never stop a parse
        return None
    return result.value


def received_time(received_headers: list[str] | None) -> datetime | None:
    """Timestamp of the topmost Received: header (the one our own server added last)."""
    if not received_headers:
        return None
    top = str(received_headers[0])
    if ";" not in top:
        return None
    return parse_date(top.rsplit(";", 1)[1].strip())


def raw_values(msg: Message, name: str) -> list[str]:
    """Every value of a header exactly as parsed (8-bit bytes still surrogate-escaped).

    `Message.get` would turn such values into `Header` objects whose str() is
    replacement characters; reading the raw items keeps the bytes recoverable.
    """
    lname = name.lower()
    return [str(v) for k, v in msg.raw_items() if k.lower() == lname]


def raw_value(msg: Message, name: str) -> str:
    values = raw_values(msg, name)
    return values[0] if values else ""


def _param(part: Message, header: str, param: str) -> object:
    raw = raw_value(part, header)
    if not raw:
        return None
    if _SURROGATES.search(raw):
        # Re-host the header with its 8-bit bytes decoded, so get_param sees real text.
        holder = Message()
        holder[header] = recover_raw(raw)
        part = holder
    try:
        return part.get_param(param, header=header)
    except Exception:  # malformed parameters: the caller tries the next source
        return None


def part_filename(part: Message) -> str:
    """The attachment's filename, from Content-Disposition or Content-Type, decoded.

    Handles RFC 2231 (`filename*=`, with any charset label), RFC 2047 words
    inside quotes (Outlook, Foxmail) and raw 8-bit GBK bytes (old clients).
    """
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = _param(part, header, param)
        if not value:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, text with surrogates)
            charset, _lang, text = value
            # email.utils percent-decodes RFC 2231 values as latin-1: recover the bytes that way.
            try:
                raw = str(text or "").encode("latin-1", "surrogateescape")
            except UnicodeEncodeError:  # raw 8-bit bytes already recovered as text (_param): keep them
                decoded = str(text)
            else:
                decoded = decode_text(raw, normalize_charset(charset or "") or "utf-8")[0]
        else:
            decoded = decode_header_text(str(value).strip('"'))
            if "=?" in decoded:
                decoded = _decode_words_leniently(decoded)
        name = clean_header(decoded)
        if name:
            return name
    return ""
