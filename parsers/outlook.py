"""Outlook .msg files and TNEF (winmail.dat) turned into what the MIME parser already reads.

A .msg ([MS-OXMSG], an OLE2 file) is read with extract-msg and rebuilt as a MIME message:
its transport headers when Outlook kept them (Received, Message-ID, From... of the mail as it
arrived), else headers made from the message's properties; the plain and HTML bodies; each
attachment as a MIME part with its name and type; an attached Outlook message as a
message/rfc822 part built the same way (to `max_depth`).  `parse_message` dispatches here on
the bytes, so a stored .msg is reparsed from its original bytes like any mail.

A winmail.dat (application/ms-tnef) is unpacked with tnefparse into (name, bytes) files, read
by the caller like the members of a zip.
"""

from __future__ import annotations

import contextlib
import logging
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser
from email.utils import format_datetime, formataddr

from parsers.types import Problem, ProblemCode

# These libraries log fragments of the files they read: no mail content may reach the logs.
for _name in ("extract_msg", "tnefparse", "olefile", "RTFDE"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

_MIN_OLE_SIZE = 1536  # olefile.MINIMAL_OLEFILE_SIZE: a header and two sectors
_SKIP_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version", "content-disposition"})


class OutlookError(Exception):
    """The file could not be read; `problem` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def msg_to_mime(data: bytes, *, max_depth: int = 5) -> bytes:
    """The MIME bytes of an Outlook .msg file.  Raises OutlookError."""
    try:
        import extract_msg
    except ImportError as exc:
        raise OutlookError(Problem(ProblemCode.UNSUPPORTED, "Outlook .msg: extract-msg not installed")) from exc
    if len(data) < _MIN_OLE_SIZE:  # olefile would take shorter bytes for a file name
        raise OutlookError(Problem(ProblemCode.TRUNCATED, f"Outlook .msg of {len(data)} bytes"))
    try:
        msg = extract_msg.openMsg(data, delayAttachments=False)
    except Exception as exc:  # extract-msg raises its own errors, olefile's, struct's...
        raise OutlookError(Problem(ProblemCode.CORRUPT, f"Outlook .msg: {type(exc).__name__}: {str(exc)[:100]}")) from exc
    try:
        return _mime(msg, max_depth).as_bytes(policy=policy.SMTP)
    except OutlookError:
        raise
    except Exception as exc:
        raise OutlookError(Problem(ProblemCode.CORRUPT, f"Outlook .msg: {type(exc).__name__}: {str(exc)[:100]}")) from exc
    finally:
        msg.close()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _mime(msg, depth_left: int) -> EmailMessage:  # noqa: ANN001 - an extract_msg Message
    out = EmailMessage(policy=policy.SMTP)
    transport = _text(getattr(msg, "headerText", None))
    if transport.strip():
        for name, value in HeaderParser(policy=policy.compat32).parsestr(transport, headersonly=True).items():
            if name.lower() in _SKIP_HEADERS:
                continue
            try:
                out[name] = str(value)
            except (ValueError, TypeError):  # a header the email package refuses: the others still count
                continue
    else:
        _headers_from_properties(out, msg)
    body = _text(msg.body)
    html = msg.htmlBody
    out.set_content(body or "", charset="utf-8")
    if isinstance(html, bytes) and html.strip():
        out.add_alternative(html.decode("utf-8", "replace"), subtype="html")
    for att in msg.attachments:
        _attach(out, att, depth_left)
    return out


def _headers_from_properties(out: EmailMessage, msg) -> None:  # noqa: ANN001
    sender = _text(msg.sender)
    if sender:
        out["From"] = sender
    by_type: dict[int, list[str]] = {1: [], 2: []}  # MAPI_TO, MAPI_CC
    for recipient in getattr(msg, "recipients", None) or ():
        address = _text(getattr(recipient, "email", None)) or _text(getattr(recipient, "smtpAddress", None))
        name = _text(getattr(recipient, "name", None))
        kind = int(getattr(recipient, "type", 1) or 1)
        if address and kind in by_type:
            by_type[kind].append(formataddr(("" if name == address else name, address)))
    for header, kind in (("To", 1), ("Cc", 2)):
        if by_type[kind]:
            out[header] = ", ".join(by_type[kind])
    out["Subject"] = _text(msg.subject)
    date = getattr(msg, "date", None)
    if date is not None and hasattr(date, "tzinfo"):
        with contextlib.suppress(TypeError, ValueError):
            out["Date"] = format_datetime(date)
    if _text(msg.messageId):
        out["Message-ID"] = _text(msg.messageId)


def _attach(out: EmailMessage, att, depth_left: int) -> None:  # noqa: ANN001 - an extract_msg attachment
    name = _text(getattr(att, "longFilename", None)) or _text(getattr(att, "shortFilename", None))
    name = name or _text(getattr(att, "displayName", None)) or "attachment"
    data = att.data
    if data is not None and not isinstance(data, (bytes, bytearray)):  # an attached Outlook message
        if depth_left <= 0:
            raise OutlookError(Problem(ProblemCode.MESSAGE_TOO_DEEP, "Outlook messages nested too deeply"))
        inner = _mime(data, depth_left - 1)
        out.add_attachment(inner, filename=name if name.lower().endswith(".msg") else name)
        return
    maintype, _, subtype = (_text(getattr(att, "mimetype", None)) or "application/octet-stream").partition("/")
    if not subtype or maintype == "text":  # text parts would be re-encoded: keep the bytes as they are
        maintype, subtype = "application", "octet-stream"
    out.add_attachment(bytes(data or b""), maintype=maintype, subtype=subtype, filename=name)


def tnef_files(data: bytes, *, max_files: int) -> list[tuple[str, bytes]]:
    """The attached files of a winmail.dat, in order (at most `max_files`).  Raises OutlookError."""
    try:
        from tnefparse import TNEF
    except ImportError as exc:
        raise OutlookError(Problem(ProblemCode.UNSUPPORTED, "TNEF: tnefparse not installed")) from exc
    try:
        tnef = TNEF(data)
    except Exception as exc:  # ValueError on a bad signature, struct/index errors on damaged files
        raise OutlookError(Problem(ProblemCode.CORRUPT, f"TNEF: {type(exc).__name__}: {str(exc)[:100]}")) from exc
    files: list[tuple[str, bytes]] = []
    for att in tnef.attachments[:max_files]:
        files.append((_tnef_name(att, tnef.codepage), bytes(att.data or b"")))
    return files


def _tnef_name(att, codepage: str | None) -> str:  # noqa: ANN001 - a tnefparse attachment
    """The long (MAPI) file name, else the 8-bit title in the message's code page (GBK in China)."""
    try:
        long_name = [a.data for a in att.mapi_attrs if a.name == 0x3707]  # PR_ATTACH_LONG_FILENAME
    except Exception:
        long_name = []
    if long_name and isinstance(long_name[0], str) and long_name[0].strip("\0"):
        return long_name[0].strip("\0")
    raw = getattr(att, "_name", b"")  # tnefparse's own `name` decodes it as UTF-8 and raises on GBK
    if isinstance(raw, str):
        return raw.strip("\0") or "attachment"
    raw = bytes(raw).split(b"\0", 1)[0]
    for encoding in ("utf-8", codepage or "gbk", "gb18030"):
        try:
            return raw.decode(encoding) or "attachment"
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("latin-1") or "attachment"
