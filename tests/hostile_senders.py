"""The hostile-sender corpus: mail a stranger can send to change who has submitted, silence
reminders, or aim our mail at others (issue 12, items 1–4 and 7).  Built in memory, byte by
byte, from text; nothing is checked in.  Used by tests/test_trust.py.

Every sender here is either a stranger (an address on no contact list, with no
authentication verdict from our server) or a forgery of something a stranger cannot be:
a display name, a typed forward header, a delivery report.
"""

from __future__ import annotations

import functools
import io
from datetime import datetime

from docx import Document

from tests.hostile import CRLF, SECTIONS, TITLE, attachment, encoded_word, text_part

AUTHSERV_ID = "mail.gz.gov.cn"  # config.toml [security] authserv_id
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCM = "application/vnd.ms-word.document.macroEnabled.12"


def raw_mail(*, sender: bytes | str, when: datetime, subject: str, parts: list[bytes] | None = None,
             body: str = "请查收附件。", message_id: str, extra: list[bytes] | None = None) -> bytes:  # fmt: skip
    """One message; `when` goes into the topmost Received: line (the receipt time of a file)."""
    stamp = when.strftime("%a, %d %b %Y %H:%M:%S %z").encode()
    headers = [b"Received: from mx.stranger.example by mail.gz.gov.cn; " + stamp]
    headers.append(b"From: " + (sender if isinstance(sender, bytes) else sender.encode()))
    headers += [b"To: xxb@gz.gov.cn", b"Subject: " + encoded_word(subject), b"Date: " + stamp,
                b"Message-ID: <" + message_id.encode() + b">", *(extra or []), b"MIME-Version: 1.0"]  # fmt: skip
    if parts is None:
        headers += [b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: 8bit"]
        return CRLF.join(headers) + CRLF + CRLF + body.encode("utf-8") + CRLF
    boundary = b"==sender-" + message_id.encode().split(b"@")[0][-24:] + b"=="
    headers.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"')
    out = CRLF.join(headers) + CRLF + CRLF
    for part in [text_part(body), *parts]:
        out += b"--" + boundary + CRLF + part + CRLF
    return out + b"--" + boundary + b"--" + CRLF


@functools.cache
def titled_docx(institution: str, *, marker: str = "") -> bytes:
    """A complete report whose title and 报送单位 line name `institution` (anyone can type them)."""
    doc = Document()
    doc.add_paragraph(f"{institution}{TITLE}", style="Title")
    for line in SECTIONS:
        doc.add_paragraph(line)
    if marker:
        doc.add_paragraph(marker)
    doc.add_paragraph(f"报送单位（盖章）：{institution}")
    doc.add_paragraph("2024年7月8日")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


@functools.cache
def mentioning_docx(institution: str) -> bytes:
    """A report-shaped file that names nobody as its author and merely mentions `institution`."""
    doc = Document()
    doc.add_paragraph(TITLE, style="Title")
    for line in SECTIONS:
        doc.add_paragraph(line)
    doc.add_paragraph(f"我单位与{institution}组建医联体，数据共享。")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def forged_stranger_docx(institution: str, when: datetime, *, stranger: str = "someone@stranger.example") -> bytes:
    """Hole: a stranger's docx titled for `institution` made it on_time with nothing to review."""
    return raw_mail(sender=stranger, when=when, subject=f"{institution}自查报告", message_id=f"forged-1@{stranger.split('@')[1]}",
                    parts=[attachment(titled_docx(institution), f"{institution}自查报告.docx", DOCX)])  # fmt: skip


def genuine_report(institution: str, contact: str, when: datetime) -> bytes:
    """The institution's real report, from its listed contact."""
    return raw_mail(sender=contact, when=when, subject=f"{institution}自查报告", message_id="genuine-1@hospital.example",
                    parts=[attachment(titled_docx(institution), f"{institution}自查报告.docx", DOCX)])  # fmt: skip


def docm_impostor(institution: str, when: datetime, *, stranger: str = "impostor@evil.example") -> bytes:
    """Hole: a day after the genuine report, a stranger's macro file became the current version."""
    data = titled_docx(institution, marker="更正版")
    return raw_mail(sender=stranger, when=when, subject=f"{institution}自查报告（更正版）",
                    message_id="docm-1@evil.example",
                    parts=[attachment(data, f"{institution}自查报告（更正版）.docm", DOCM)])  # fmt: skip


def forged_dsn(quoted_message_id: str, victims: list[str], when: datetime) -> bytes:
    """Hole: a delivery failure report quoting our receipt's Message-ID, naming contacts that
    were never its recipients (and sent with a non-null envelope)."""
    blocks = b"".join(
        CRLF + b"Final-Recipient: rfc822; " + v.encode() + CRLF + b"Action: failed" + CRLF + b"Status: 5.1.1"
        + CRLF + b"Diagnostic-Code: smtp; 550 5.1.1 User unknown" + CRLF
        for v in victims
    )  # fmt: skip
    stamp = when.strftime("%a, %d %b %Y %H:%M:%S %z").encode()
    return CRLF.join([
        b"Received: from mx.evil.example by mail.gz.gov.cn; " + stamp,
        b"Return-Path: <attacker@evil.example>",
        b"From: Mail Delivery System <MAILER-DAEMON@evil.example>",
        b"To: xxb@gz.gov.cn",
        b"Subject: Undelivered Mail Returned to Sender",
        b"Date: " + stamp,
        b"Message-ID: <forged-dsn-1@evil.example>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"',
        b"",
        b"--DSN",
        b"Content-Type: text/plain; charset=us-ascii",
        b"",
        b"Delivery failed.",
        b"--DSN",
        b"Content-Type: message/delivery-status",
        b"",
        b"Reporting-MTA: dns; mx.evil.example",
        blocks,
        b"--DSN",
        b"Content-Type: text/rfc822-headers",
        b"",
        b"Message-ID: " + quoted_message_id.encode(),
        b"From: xxb@gz.gov.cn",
        b"",
        b"--DSN--",
        b"",
    ])  # fmt: skip


def many_mentions(names: list[str], when: datetime) -> bytes:
    """Hole: one mail with a small docx per institution, each merely mentioning it, froze every reminder."""
    parts = [attachment(mentioning_docx(name), f"附件{n:02d}.docx", DOCX) for n, name in enumerate(names, start=1)]
    return raw_mail(sender="bulk@stranger.example", when=when, subject="资料", parts=parts, message_id="many-1@stranger.example")


def display_name_and_typed_forward(bureau_name: str, contact: str, when: datetime) -> bytes:
    """Hole: a bureau's name as display name plus a forward header typed into the body, naming a
    contact's address, attributed an anonymous report to that contact's hospital."""
    body = "\n".join([
        "请查收。", "", "-------- 转发的邮件 --------", f"发件人: 信息科 <{contact}>",
        "发送时间: 2024年7月8日 09:00", "收件人: xxb@gz.gov.cn", "主题: 自查报告", "",
        f"我院{TITLE}", *SECTIONS, "2024年7月8日",
    ])  # fmt: skip
    sender = encoded_word(bureau_name) + b" <anyone@evil.example>"
    return raw_mail(sender=sender, when=when, subject="转发：自查报告", body=body, message_id="typed-fwd-1@evil.example")


def anonymous_report(when: datetime, *, stranger: str = "stranger@evil.example") -> bytes:
    """A report naming nobody, from a stranger: a clerk may assign it — and must not teach the address."""
    doc = Document()
    doc.add_paragraph(f"我单位{TITLE}", style="Title")
    for line in SECTIONS:
        doc.add_paragraph(line)
    buf = io.BytesIO()
    doc.save(buf)
    return raw_mail(sender=stranger, when=when, subject="自查报告", message_id="anon-1@evil.example",
                    parts=[attachment(buf.getvalue(), "自查报告.docx", DOCX)])  # fmt: skip


def authenticated(domain: str) -> list[bytes]:
    """An Authentication-Results header our own server would stamp for a pass aligned with `domain`."""
    return [b"Authentication-Results: " + AUTHSERV_ID.encode() + b"; spf=pass smtp.mailfrom=" + domain.encode()
            + b"; dkim=pass header.d=" + domain.encode() + b"; dmarc=pass header.from=" + domain.encode()]  # fmt: skip
