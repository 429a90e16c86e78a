"""Parse raw message bytes into a `ParsedMessage` with its attachment tree.

The stdlib's feed parser builds the message (a recursion bomb becomes a headers-only
message with a problem) and its MIME defects are reported; headers, bodies and
filenames are decoded from the stdlib `email.message` objects directly, because
mail-parser 4.8 garbles GBK-in-gb2312 subjects and raw-GBK filenames, and
double-counts attachments inside attached messages.  mail-parser reads the dates
(`headers.parse_date`); its whole-message parse is not run: it decoded every part a
second time (a quarter of the parse's CPU) for the defect list alone.  `parse_message` never raises: whatever it cannot
read becomes a `problems` entry or an unreadable `Part`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import quopri
import re
from dataclasses import replace
from email.feedparser import BytesFeedParser
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from . import documents, outlook
from .documents import sniff
from .documents.text import decode_text, html_to_text
from .headers import (
    clean_header,
    decode_header_text,
    parse_addresses,
    parse_date,
    part_filename,
    raw_value,
    raw_values,
    received_time,
    recover_raw,
)
from .links import find_linked_files
from .passwords import find_passwords
from .types import (
    DEFAULT_LIMITS,
    EMPTY_ADDRESS,
    ParsedMessage,
    ParseLimits,
    Part,
    PartKind,
    Problem,
    ProblemCode,
)

_AUTO_SUBJECT_PREFIXES = (
    "自动回复", "自动答复", "auto reply", "autoreply", "automatic reply", "out of office", "退信",
    "undeliverable", "undelivered mail", "delivery status notification", "mail delivery failed",
    "系统退信", "投递失败", "returned mail",
)  # fmt: skip
_BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")
_FEED_CHUNK = 1 << 16

# mail-parser logs a warning for every date it cannot read; what matters is recorded instead.
logging.getLogger("mailparser").setLevel(logging.ERROR)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MSG = sniff.MSG


def parse_message(
    raw: bytes, *, limits: ParseLimits = DEFAULT_LIMITS, depth: int = 0, path_prefix: str = ""
) -> ParsedMessage:
    """Decode one message.

    `depth` counts enclosing messages (an attached .eml is depth 1); `path_prefix`
    makes the parts of an attached message addressable from the outer one
    ("3/1" is the first attachment of the message attached as part 3).
    """
    problems: list[Problem] = []
    if raw[:8] == _OLE_MAGIC and documents.sniff_content_type(raw) == _MSG:
        raw = _outlook_mime(raw, limits, depth, problems)
    header_bytes = (
        raw.find(b"\r\n\r\n") if b"\r\n\r\n" in raw[: limits.max_header_bytes + 4] else raw.find(b"\n\n")
    )
    if header_bytes < 0:
        header_bytes = len(raw)
    oversized = header_bytes > limits.max_header_bytes
    if oversized:
        problems.append(
            Problem(
                ProblemCode.HEADER_TOO_LARGE,
                f"header section of {header_bytes} bytes exceeds the limit of {limits.max_header_bytes}",
            )
        )
    msg = _build_stdlib_message(raw, problems)

    walker = _Walker(limits, depth, problems, path_prefix)
    walker.passwords = _body_passwords(msg)
    if msg.is_multipart() or msg.get_content_maintype() != "text" or _is_attachment(msg):
        walker.visit(msg, mime_depth=0)
    else:
        walker.add_body(msg)

    from_values = raw_values(msg, "from")
    # Counted on the raw headers: a decoded display name may itself contain "x@y" text.
    from_addresses = parse_addresses(from_values)
    sender = from_addresses[0] if from_addresses else EMPTY_ADDRESS
    reply_to = parse_addresses(raw_values(msg, "reply-to"))
    subject = clean_header(decode_header_text(raw_value(msg, "subject")))
    headers = tuple((name, clean_header(decode_header_text(value))) for name, value in msg.raw_items())
    text_body = "\n\n".join(walker.plain_bodies)
    html_body = "\n".join(walker.html_bodies)
    if not text_body.strip() and html_body:
        text_body = html_to_text(html_body)
    from_count = max(len(from_values), len(from_addresses))
    if from_count > 1:
        problems.append(Problem(ProblemCode.MANY_FROM, f"{from_count} From: addresses"))
    return ParsedMessage(
        message_id=clean_header(recover_raw(raw_value(msg, "message-id"))).strip("<>"),
        subject=subject,
        sender=sender,
        from_count=from_count,
        reply_to=reply_to,
        to=parse_addresses(raw_values(msg, "to")),
        cc=parse_addresses(raw_values(msg, "cc")),
        date=parse_date(raw_value(msg, "date")),
        received_at=received_time(raw_values(msg, "received")),
        text_body=text_body,
        html_body=html_body,
        attachments=tuple(walker.parts),
        headers=headers,
        auto_reply=_auto_reply_reason(msg, sender.address, subject),
        authentication_results=tuple(
            clean_header(recover_raw(v)) for v in raw_values(msg, "authentication-results")
        ),
        problems=tuple(dict.fromkeys(problems)),
        header_bytes=header_bytes,
        linked_files=find_linked_files(text_body, html_body, path_prefix=path_prefix),
    )


def _body_passwords(msg: Message, max_parts: int = 50) -> tuple[str, ...]:
    """Archive passwords written in the message's text bodies (attachments are not searched).

    Read before the attachments, since a body may come after the zip in the MIME tree.
    """
    texts: list[str] = []
    try:
        for index, part in enumerate(msg.walk()):
            if index >= max_parts:
                break
            if part.get_content_maintype() != "text" or _is_attachment(part):
                continue
            data = part.get_payload(decode=True)
            if not isinstance(data, bytes):
                continue
            text, _ = decode_text(data[:200_000], part.get_content_charset() or "")
            texts.append(html_to_text(text) if part.get_content_subtype() == "html" else text)
    except (RecursionError, LookupError, ValueError, TypeError):  # hostile nesting or headers: no passwords
        pass
    return find_passwords("\n".join(texts))


def _outlook_mime(raw: bytes, limits: ParseLimits, depth: int, problems: list[Problem]) -> bytes:
    """An Outlook .msg file as MIME bytes (b"" when it cannot be read: the reason is in `problems`)."""
    try:
        return outlook.msg_to_mime(raw, max_depth=max(0, limits.max_message_depth - depth))
    except outlook.OutlookError as err:
        problems.append(err.problem)
        return b""


def _build_stdlib_message(raw: bytes, problems: list[Problem]) -> Message:
    """The stdlib message of `raw`, its MIME defects added to `problems` (one per kind)."""
    try:
        msg = _message_from_bytes(raw)
        defects = _defect_kinds(msg)
    except RecursionError:  # a multipart nested thousands deep
        problems.append(Problem(ProblemCode.MIME_DEFECT, "MIME structure nested too deep to parse; headers only"))
        return BytesHeaderParser(policy=compat32).parsebytes(raw)
    except Exception as err:  # a parser bug on hostile input: the headers still say who sent it
        problems.append(Problem(ProblemCode.MIME_DEFECT, f"MIME structure could not be parsed ({type(err).__name__}); headers only"))
        return BytesHeaderParser(policy=compat32).parsebytes(raw)
    problems.extend(Problem(ProblemCode.MIME_DEFECT, kind) for kind in defects)
    return msg


def _defect_kinds(msg: Message) -> list[str]:
    """The kinds of MIME defect the parser noted anywhere in the tree (e.g. StartBoundaryNotFoundDefect)."""
    kinds: dict[str, None] = {}
    for part in msg.walk():
        for defect in part.defects:
            kinds.setdefault(type(defect).__name__)
    return list(kinds)


def _message_from_bytes(raw: bytes) -> Message:
    """`email.message_from_bytes(raw)`, fed in chunks as the stdlib's own file parser does.

    The same Message, at a third of the peak memory: fed whole, the feed parser splits the
    entire text into lines at once (about 9x the message size: ~300 MB for a 34 MB mail).
    """
    parser = BytesFeedParser(policy=compat32)
    view = memoryview(raw)
    for start in range(0, len(view), _FEED_CHUNK):
        parser.feed(bytes(view[start : start + _FEED_CHUNK]))
    return parser.close()


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return (
        disposition == "attachment"
        or bool(part.get_param("filename", header="content-disposition"))
        or bool(part.get_param("name"))
    )


class _Walker:
    """Walks a stdlib message, collecting body texts and attachment Parts."""

    def __init__(self, limits: ParseLimits, depth: int, problems: list[Problem], path_prefix: str) -> None:
        self.limits = limits
        self.path_prefix = path_prefix
        self.depth = depth
        self.problems = problems
        self.plain_bodies: list[str] = []
        self.html_bodies: list[str] = []
        self.parts: list[Part] = []
        self.expanded = 0  # bytes of attachments read so far, members and attached messages included
        self.text_chars = 0  # document text extracted so far
        self.ocr = documents.OcrBudget(limits.max_message_ocr_s)
        self.passwords: tuple[str, ...] = ()  # archive passwords given in this message's body

    def visit(self, part: Message, *, mime_depth: int) -> None:
        if mime_depth > self.limits.max_mime_depth:
            self.problems.append(
                Problem(
                    ProblemCode.MIME_TOO_DEEP,
                    f"MIME nesting deeper than {self.limits.max_mime_depth} levels; inner parts not read",
                )
            )
            return
        ctype = part.get_content_type()
        if part.is_multipart() and ctype != "message/rfc822":
            payload = part.get_payload()
            for child in payload if isinstance(payload, list) else []:
                if isinstance(child, Message):
                    self.visit(child, mime_depth=mime_depth + 1)
            return
        if ctype == "message/rfc822" or (ctype.startswith("message/") and part.is_multipart()):
            self.add_attachment(part, _embedded_message_bytes(part, self.problems), "message/rfc822")
            return
        if part.get_content_maintype() == "text" and not _is_attachment(part):
            self.add_body(part)
            return
        payload = _payload_bytes(part, self.problems)
        if payload is None:
            return
        self.add_attachment(part, payload, ctype)

    def add_body(self, part: Message) -> None:
        data = _payload_bytes(part, self.problems) or b""
        text, notes = decode_text(data, part.get_content_charset() or "")
        self.problems.extend(Problem(ProblemCode.CHARSET_GUESSED, f"body: {note}") for note in notes)
        if part.get_content_subtype() == "html":
            self.html_bodies.append(text)
        else:
            self.plain_bodies.append(text)

    def add_attachment(self, part: Message, data: bytes, declared_type: str) -> None:
        index = len(self.parts) + 1
        path = f"{self.path_prefix}{index}"
        filename = part_filename(part)
        inline = (part.get_content_disposition() or "") == "inline" and not filename
        problem: Problem | None = None
        if index > self.limits.max_attachments:
            if index == self.limits.max_attachments + 1:
                self.problems.append(
                    Problem(
                        ProblemCode.ATTACHMENT_LIMIT,
                        f"more than {self.limits.max_attachments} attachments; the rest are listed, not read",
                    )
                )
            problem = Problem(ProblemCode.ATTACHMENT_LIMIT, f"over {self.limits.max_attachments} attachments")
        elif self.expanded > self.limits.max_message_expanded_bytes:
            problem = Problem(ProblemCode.WORK_LIMIT, f"over {self.limits.max_message_expanded_bytes} bytes read")
        elif self.text_chars > self.limits.max_message_text_chars:
            problem = Problem(
                ProblemCode.WORK_LIMIT, f"over {self.limits.max_message_text_chars} characters of text"
            )
        if problem is not None:
            if problem.code is ProblemCode.WORK_LIMIT:
                self.problems.append(Problem(problem.code, f"{problem.detail}; later attachments listed, not read"))
            self.parts.append(
                Part(
                    path=path, filename=filename, content_type="application/octet-stream",
                    declared_type=declared_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                    kind=PartKind.UNREADABLE, problem=problem, inline=inline,
                )
            )  # fmt: skip
            return
        node = documents.read_attachment(
            data,
            filename=filename,
            declared_type=declared_type,
            path=path,
            limits=self.limits,
            depth=self.depth,
            parse_message=lambda data, depth: parse_message(
                data, limits=self.limits, depth=depth, path_prefix=f"{path}/"
            ),
            ocr=self.ocr,
            passwords=self.passwords,
        )
        for sub in node.walk():
            self.expanded += sub.size
            if sub.document is not None:
                self.text_chars += len(sub.document.text)
        if inline and node.kind is PartKind.UNREADABLE and node.content_type.startswith("image/"):
            node = replace(node, inline=True)
        self.parts.append(node)


def _payload_bytes(part: Message, problems: list[Problem]) -> bytes | None:
    plain = _plain_base64(part)
    if plain is not None:
        return plain
    try:
        data = part.get_payload(decode=True)
    except Exception as err:  # broken transfer encodings: keep what we can
        problems.append(Problem(ProblemCode.MIME_DEFECT, f"payload could not be decoded: {err}"))
        raw = part.get_payload()
        return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else None
    if not isinstance(data, bytes):
        return None
    for defect in getattr(part, "defects", []):
        problems.append(Problem(ProblemCode.MIME_DEFECT, type(defect).__name__))
    return data


# Well-formed base64: the alphabet in lines, padding only at the end (what every mail client writes).
_PLAIN_BASE64 = re.compile(r"[A-Za-z0-9+/\r\n]*(?:=[\r\n]*){0,2}")


def _plain_base64(part: Message) -> bytes | None:
    """The decoded payload of a well-formed base64 part, or None to let the stdlib decode it.

    The same bytes as `get_payload(decode=True)` in one step: the stdlib first copies the text to
    bytes (twice: a surrogate check, then the encode), splits it into lines and joins them again,
    about five times the attachment's size at once (~180 MB for a 25 MB attachment).
    Anything else (stray characters, padding in the middle, a short last quantum) goes the
    stdlib's way, which repairs it and notes the defect.
    """
    if part.is_multipart() or str(part.get("content-transfer-encoding", "")).lower() != "base64":  # as the stdlib
        return None
    payload = part.get_payload()
    if not isinstance(payload, str) or _PLAIN_BASE64.fullmatch(payload) is None:
        return None
    padding = payload.count("=")
    quantum = (len(payload) - payload.count("\r") - payload.count("\n") - padding) % 4
    if (padding, quantum) not in ((0, 0), (1, 3), (2, 2)):
        return None
    return binascii.a2b_base64(payload)


def _embedded_message_bytes(part: Message, problems: list[Problem]) -> bytes:
    """The bytes of an attached message (message/rfc822), however the sender encoded it."""
    cte = (part.get("content-transfer-encoding") or "").lower()
    payload = part.get_payload()
    if isinstance(payload, list) and payload and cte not in ("base64", "quoted-printable") \
            and isinstance(payload[0], Message):
        inner = payload[0]
        try:
            return inner.as_bytes(policy=compat32)
        except Exception:  # as_bytes fails on some malformed headers: fall back to text
            try:
                return inner.as_string(policy=compat32).encode("utf-8", "surrogateescape")
            except Exception as err:
                problems.append(Problem(ProblemCode.MIME_DEFECT, f"attached message could not be re-serialised: {err}"))
                return b""
    # Some clients base64-encode message/rfc822 parts; the stdlib then parses garbage.
    if isinstance(payload, list) and payload:
        body = payload[0].get_payload() if isinstance(payload[0], Message) else None
        text = body if isinstance(body, str) else ""
    else:
        text = payload if isinstance(payload, str) else ""
    raw = text.encode("ascii", "surrogateescape")
    try:
        return base64.b64decode(raw) if cte == "base64" else quopri.decodestring(raw)
    except (binascii.Error, ValueError) as err:
        problems.append(Problem(ProblemCode.MIME_DEFECT, f"attached message has broken {cte}: {err}"))
        return raw


def _auto_reply_reason(msg: Message, sender: str, subject: str) -> str:
    auto = (raw_value(msg, "auto-submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"):
        if raw_value(msg, name) and name != "x-auto-response-suppress":
            return name
    precedence = (raw_value(msg, "precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if raw_value(msg, "list-id") or raw_value(msg, "list-unsubscribe"):
        return "mailing list"
    if msg.get_content_type() == "multipart/report":
        return "delivery report"
    if sender.startswith(_BOUNCE_SENDERS):
        return "bounce sender"
    lowered = subject.strip().lower()
    if lowered.startswith(_AUTO_SUBJECT_PREFIXES):
        return "automatic subject"
    return ""
