"""Byte-level construction of RFC 5322 / MIME messages, quirks included.

`email.message` normalises away exactly the things an intake pipeline must
survive, so this module writes header and body bytes itself:

* RFC 2047 encoded-words in any charset label, where the label and the bytes
  may disagree (``gb2312`` label over GBK bytes, as Foxmail and old Outlook do),
  optionally split in the middle of a multi-byte character (QQMail);
* attachment file names in the four styles seen in the wild: RFC 2231
  (``filename*=utf-8''%E5...``, with continuations when long), RFC 2047 inside
  quotes (``filename="=?gb2312?B?...?="``), raw 8-bit GBK bytes inside quotes,
  and plain ASCII;
* text bodies in base64, quoted-printable or 8bit, multipart containers,
  ``message/rfc822`` parts and ``multipart/report`` bounces;
* ``Received:`` trace headers and Chinese inline-forward blocks.

Everything returns ``bytes`` with CRLF line ends.  Nothing here is random: the
caller passes every choice in, so the output is a pure function of arguments.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import quote

CRLF = b"\r\n"

# The codec a client really uses for a charset label.  Clients that write
# "gb2312" emit GBK bytes, so characters outside GB2312 (喆, 镕, 珺) appear under
# a label that cannot represent them: the decoder has to widen the label.
_CODEC_FOR_LABEL = {
    "utf-8": "utf-8",
    "gb2312": "gbk",
    "gbk": "gbk",
    "gb18030": "gb18030",
    "us-ascii": "ascii",
}

# RFC 2047 section 5(3): characters allowed unencoded in a Q-encoded word in a phrase.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def codec_for(charset: str) -> str:
    """The Python codec that produces the bytes a client writes under `charset`."""
    return _CODEC_FOR_LABEL.get(charset.lower(), charset)


def encode_text(text: str, charset: str) -> bytes:
    """`text` as a client labelling it `charset` would write it (gb2312 -> GBK bytes)."""
    return text.encode(codec_for(charset))


# --------------------------------------------------------------------------- headers


def _q_encode(data: bytes) -> str:
    out = []
    for byte in data:
        if byte == 0x20:
            out.append("_")
        elif byte in _Q_SAFE:
            out.append(chr(byte))
        else:
            out.append(f"={byte:02X}")
    return "".join(out)


def _encoded_word(data: bytes, charset: str, encoding: str) -> str:
    if encoding.upper() == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="
    return f"=?{charset}?Q?{_q_encode(data)}?="


def encoded_words(
    text: str, charset: str = "utf-8", encoding: str = "B", *, split_mid_char: bool = False
) -> list[str]:
    """RFC 2047 encoded-words for `text`, each at most 75 characters.

    Chunks normally end on character boundaries.  With `split_mid_char` the
    byte stream is cut at fixed offsets regardless of characters, which is
    invalid per RFC 2047 section 5 yet produced by QQMail and some webmail; a
    decoder must join adjacent words' bytes before decoding.
    """
    overhead = len(charset) + 7
    if encoding.upper() == "B":
        max_bytes = (75 - overhead) // 4 * 3
    else:
        max_bytes = (75 - overhead) // 3  # worst case: every byte becomes =XX
    if split_mid_char:
        data = encode_text(text, charset)
        # A cut that is not a multiple of the character width lands inside a character.
        width = 3 if codec_for(charset) == "utf-8" else 2
        cut = max_bytes if max_bytes % width else max_bytes - 1
        return [_encoded_word(data[i : i + cut], charset, encoding) for i in range(0, len(data), cut)]
    words: list[str] = []
    chunk = b""
    for char in text:
        encoded = encode_text(char, charset)
        if chunk and len(chunk) + len(encoded) > max_bytes:
            words.append(_encoded_word(chunk, charset, encoding))
            chunk = b""
        chunk += encoded
    if chunk or not words:
        words.append(_encoded_word(chunk, charset, encoding))
    return words


def header(name: str, value: str | bytes) -> bytes:
    """One header line `Name: value` + CRLF.  A str value must already be ASCII-safe."""
    raw = value if isinstance(value, bytes) else value.encode("ascii")
    return name.encode("ascii") + b": " + raw + CRLF


def folded(name: str, parts: list[str], separator: str = "\r\n ") -> bytes:
    """A header whose value is `parts` joined by a fold (CRLF + whitespace)."""
    return header(name, separator.join(parts))


def text_header(
    name: str,
    text: str,
    charset: str = "utf-8",
    encoding: str = "B",
    *,
    raw_8bit: bool = False,
    split_mid_char: bool = False,
) -> bytes:
    """An unstructured header (Subject) holding `text`.

    ASCII text is written as is.  Otherwise encoded-words are folded one per
    line, or with `raw_8bit` the charset's bytes are written unencoded, as old
    clients and some Exchange relays do.
    """
    if text.isascii():
        return header(name, text)
    if raw_8bit:
        return header(name, encode_text(text, charset))
    return folded(name, encoded_words(text, charset, encoding, split_mid_char=split_mid_char))


def mailbox(
    display: str, address: str, charset: str = "utf-8", encoding: str = "B", style: str = "encoded"
) -> bytes:
    """An RFC 5322 mailbox ``display <address>`` as bytes.

    style: "encoded" (``=?..?= <a>``), "quoted-encoded" (``"=?..?=" <a>``,
    invalid but Outlook-typical), "raw" (8-bit bytes in quotes), "bare"
    (address only).  ASCII display names are quoted plainly.
    """
    if style == "bare" or not display:
        return address.encode("ascii")
    if display.isascii():
        return f'"{display}" <{address}>'.encode("ascii")
    if style == "raw":
        return b'"' + encode_text(display, charset) + b'" <' + address.encode("ascii") + b">"
    words = " ".join(encoded_words(display, charset, encoding))
    if style == "quoted-encoded":
        return f'"{words}" <{address}>'.encode("ascii")
    return f"{words} <{address}>".encode("ascii")


def address_header(name: str, mailboxes: list[bytes]) -> bytes:
    """`To:`/`Cc:`/`From:` with one mailbox per folded line."""
    return header(name, b",\r\n\t".join(mailboxes))


def rfc2822_date(moment: datetime) -> str:
    """``Wed, 10 Jul 2024 15:32:11 +0800`` for an aware datetime."""
    return format_datetime(moment)


def received(
    from_helo: str,
    from_ip: str,
    by_host: str,
    moment: datetime,
    smtp_id: str,
    *,
    protocol: str = "ESMTP",
    by_software: str = "",
    zone_comment: bool = True,
    envelope_for: str = "",
) -> bytes:
    """A ``Received:`` trace header as written by the receiving server at `moment`.

    The date follows the last semicolon; Coremail and Postfix append a
    ``(CST)`` comment which a naive parser must not choke on.
    """
    software = f" ({by_software})" if by_software else ""
    target = f"\r\n\tfor <{envelope_for}>" if envelope_for else ""
    stamp = rfc2822_date(moment) + (" (CST)" if zone_comment else "")
    return header(
        "Received",
        f"from {from_helo} (unknown [{from_ip}])\r\n\tby {by_host}{software} with {protocol} id {smtp_id}{target};\r\n\t{stamp}",
    )


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class Entity:
    """A MIME entity: its own header lines (each ending CRLF) and its body bytes."""

    headers: tuple[bytes, ...]
    body: bytes

    def to_bytes(self) -> bytes:
        return b"".join(self.headers) + CRLF + self.body


def _base64_body(data: bytes, line_length: int = 76) -> bytes:
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + line_length] for i in range(0, len(encoded), line_length)]
    return CRLF.join(lines) + CRLF


def _qp_body(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 6.7) with CRLF line ends, as clients put it on the wire."""
    encoded = quopri.encodestring(data.replace(b"\r\n", b"\n"))
    return encoded.replace(b"\n", CRLF) + (b"" if encoded.endswith(b"\n") else CRLF)


def transfer_encode(data: bytes, transfer: str) -> bytes:
    """Body bytes in the given Content-Transfer-Encoding (base64, quoted-printable, 8bit, 7bit)."""
    if transfer == "base64":
        return _base64_body(data)
    if transfer == "quoted-printable":
        return _qp_body(data)
    body = data.replace(b"\r\n", b"\n").replace(b"\n", CRLF)
    return body if body.endswith(CRLF) else body + CRLF


def text_entity(
    text: str, subtype: str = "plain", charset: str = "utf-8", transfer: str = "base64"
) -> Entity:
    """A text/plain or text/html part in `charset` (label; gb2312 writes GBK bytes)."""
    return Entity(
        (
            header("Content-Type", f'text/{subtype}; charset="{charset}"'),
            header("Content-Transfer-Encoding", transfer),
        ),
        transfer_encode(encode_text(text, charset), transfer),
    )


def multipart(
    subtype: str, parts: list[Entity], boundary: str, *, params: str = "", preamble: str = ""
) -> Entity:
    """A multipart/`subtype` entity holding `parts` (in order) separated by `boundary`."""
    pieces = [preamble.encode("ascii") + CRLF] if preamble else []
    for part in parts:
        pieces.append(b"--" + boundary.encode("ascii") + CRLF + part.to_bytes() + CRLF)
    pieces.append(b"--" + boundary.encode("ascii") + b"--" + CRLF)
    extra = f"; {params}" if params else ""
    return Entity(
        (header("Content-Type", f'multipart/{subtype};\r\n\tboundary="{boundary}"{extra}'),),
        b"".join(pieces),
    )


def _rfc2231_params(param: str, filename: str) -> str:
    """``param*=utf-8''%..`` or, when long, ``param*0*=...; param*1*=...`` continuations."""
    encoded = quote(filename.encode("utf-8"), safe="")
    if len(encoded) <= 60:
        return f"{param}*=utf-8''{encoded}"
    # Tokens are single characters or whole %XX escapes, so no escape is ever split.
    tokens: list[str] = []
    index = 0
    while index < len(encoded):
        step = 3 if encoded[index] == "%" else 1
        tokens.append(encoded[index : index + step])
        index += step
    segments: list[str] = [""]
    for token in tokens:
        if len(segments[-1]) + len(token) > 60:
            segments.append("")
        segments[-1] += token
    return ";\r\n\t".join(
        f"{param}*{number}*=utf-8''{segment}" if number == 0 else f"{param}*{number}*={segment}"
        for number, segment in enumerate(segments)
    )


def filename_params(filename: str, style: str, charset: str = "utf-8") -> tuple[bytes, bytes]:
    """(Content-Type ``name`` parameter, Content-Disposition ``filename`` parameter) bytes.

    style: "rfc2231" (Thunderbird, Outlook.com), "rfc2047" (Foxmail, Outlook desktop,
    encoded-words inside quotes, folded when long), "raw" (8-bit bytes of `charset`
    inside quotes, old Chinese clients; default GBK), "ascii" (name is ASCII).
    """
    if style == "ascii" or filename.isascii():
        plain = f'"{filename}"'.encode("ascii")
        return b"name=" + plain, b"filename=" + plain
    if style == "rfc2231":
        # Outlook pairs the RFC 2231 disposition with an RFC 2047 name= for old readers.
        name_value = '"' + "\r\n\t".join(encoded_words(filename, "utf-8", "B")) + '"'
        return b"name=" + name_value.encode("ascii"), _rfc2231_params("filename", filename).encode("ascii")
    if style == "rfc2047":
        quoted = ('"' + "\r\n ".join(encoded_words(filename, charset, "B")) + '"').encode("ascii")
        return b"name=" + quoted, b"filename=" + quoted
    if style == "raw":
        raw = b'"' + encode_text(filename, charset if charset != "utf-8" else "gbk") + b'"'
        return b"name=" + raw, b"filename=" + raw
    raise ValueError(f"unknown filename style {style!r}")


def attachment_entity(
    data: bytes,
    filename: str,
    content_type: str,
    *,
    style: str = "rfc2231",
    charset: str = "utf-8",
    transfer: str = "base64",
    disposition: str = "attachment",
) -> Entity:
    """An attachment part whose file name is written in `style` (see `filename_params`)."""
    name_param, filename_param = filename_params(filename, style, charset)
    return Entity(
        (
            b"Content-Type: " + content_type.encode("ascii") + b";\r\n\t" + name_param + CRLF,
            header("Content-Transfer-Encoding", transfer),
            b"Content-Disposition: " + disposition.encode("ascii") + b";\r\n\t" + filename_param + CRLF,
        ),
        transfer_encode(data, transfer),
    )


def message_entity(
    raw_message: bytes, filename: str = "", *, style: str = "rfc2047", charset: str = "gb2312"
) -> Entity:
    """A ``message/rfc822`` part carrying `raw_message` unchanged (an attached forward)."""
    headers = [header("Content-Type", "message/rfc822"), header("Content-Transfer-Encoding", "8bit")]
    if filename:
        _, filename_param = filename_params(filename, style, charset)
        headers.append(b"Content-Disposition: attachment;\r\n\t" + filename_param + CRLF)
    body = raw_message if raw_message.endswith(CRLF) else raw_message + CRLF
    return Entity(tuple(headers), body)


def delivery_status_entity(
    reporting_mta: str, recipient: str, status: str, diagnostic: str, arrival: datetime
) -> Entity:
    """The ``message/delivery-status`` part of a bounce (RFC 3464)."""
    lines = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {rfc2822_date(arrival)}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        f"Status: {status}",
        f"Diagnostic-Code: smtp; {diagnostic}",
    ]
    return Entity(
        (header("Content-Type", "message/delivery-status"),), "\r\n".join(lines).encode("ascii") + CRLF
    )


def headers_entity(raw_headers: bytes) -> Entity:
    """A ``text/rfc822-headers`` part: the returned headers of a bounced message."""
    return Entity((header("Content-Type", "text/rfc822-headers"),), raw_headers)


def build_message(top_headers: list[bytes], entity: Entity, *, mime_version: bool = True) -> bytes:
    """The whole message: trace and envelope headers, MIME-Version, then `entity`."""
    version = [header("MIME-Version", "1.0")] if mime_version else []
    return b"".join(top_headers) + b"".join(version) + entity.to_bytes()


# --------------------------------------------------------------------------- inline forwards


def _chinese_weekday(moment: datetime) -> str:
    return "一二三四五六日"[moment.weekday()]


def forward_block(style: str, *, sender: str, sent_at: datetime, to: str, subject: str) -> str:
    """The header block a client writes above an inline-forwarded or quoted mail.

    style: "foxmail", "qqmail", "coremail", "outlook", "thunderbird".  Each
    client words the separator and the date differently; the sender, time and
    subject lines are what attribution has to read.
    """
    hour = sent_at.hour
    if style == "qqmail":
        half = "上午" if hour < 12 else "下午"
        twelve = hour if hour <= 12 else hour - 12
        when = f"{sent_at.year}年{sent_at.month}月{sent_at.day}日(星期{_chinese_weekday(sent_at)}) {half}{twelve}:{sent_at.minute:02d}"
        return (
            "\n\n------------------ 原始邮件 ------------------\n"
            f"发件人: {sender}\n发送时间: {when}\n收件人: {to}\n主题: {subject}\n\n"
        )
    if style == "coremail":
        return (
            "\n\n-----原始邮件-----\n"
            f"发件人:{sender}\n发送时间:{sent_at:%Y-%m-%d %H:%M:%S}\n收件人:{to}\n主题:{subject}\n\n"
        )
    if style == "outlook":
        when = f"{sent_at.year}年{sent_at.month}月{sent_at.day}日 {hour}:{sent_at.minute:02d}"
        return f"\n\n---原始邮件---\n发件人: {sender}\n发送时间: {when}\n收件人: {to}\n主题: {subject}\n\n"
    if style == "thunderbird":
        return (
            "\n\n-------- 转发的消息 --------\n"
            f"主题: \t{subject}\n日期: \t{rfc2822_date(sent_at)}\n发件人: \t{sender}\n收件人: \t{to}\n\n"
        )
    # Foxmail
    return (
        "\n\n-------- 转发的邮件 --------\n"
        f"发件人: {sender}\n发送时间: {sent_at:%Y-%m-%d %H:%M}\n收件人: {to}\n主题: {subject}\n\n"
    )
