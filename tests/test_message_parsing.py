"""Parsing real-world Chinese mail: each test builds the exact bytes of one quirk."""

from __future__ import annotations

import base64
import io
import quopri
from datetime import UTC, datetime

import mailparser
from docx import Document

from parsers.message import parse_message
from parsers.types import PartKind, ProblemCode

CRLF = b"\r\n"


def b64word(text: str, charset: str = "gb2312", codec: str = "gbk") -> bytes:
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(text.encode(codec)) + b"?="


def docx_bytes(*paragraphs: str) -> bytes:
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def message(headers: list[bytes], body: bytes) -> bytes:
    return CRLF.join(headers) + CRLF + CRLF + body


def attachment(disposition: bytes, payload: bytes, ctype: bytes = b"application/octet-stream") -> bytes:
    return CRLF.join(
        [
            b"Content-Type: " + ctype,
            b"Content-Transfer-Encoding: base64",
            b"Content-Disposition: " + disposition,
            b"",
            base64.encodebytes(payload).replace(b"\n", CRLF),
        ]
    )


def multipart(headers: list[bytes], parts: list[bytes], boundary: bytes = b"==b1==") -> bytes:
    body = b""
    for part in parts:
        body += b"--" + boundary + CRLF + part + CRLF
    body += b"--" + boundary + b"--" + CRLF
    return message([*headers, b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="' + boundary + b'"'], body)


TEXT_PART = b"Content-Type: text/plain; charset=utf-8" + CRLF + CRLF + "请查收附件。".encode()


def test_gb2312_labelled_subject_with_gbk_only_characters():
    """GIVEN a subject labelled gb2312 whose bytes contain GBK-only 喆 and 镕
    WHEN parsed
    THEN it decodes exactly (mail-parser 4.8 alone returns garbage)."""
    subject = "王喆、朱镕报送自查情况报告"
    raw = message([b"From: a@b.example", b"Subject: " + b64word(subject)], b"hi")
    assert mailparser.parse_from_bytes(raw).subject != subject  # the library trap this guards against
    assert parse_message(raw).subject == subject


def test_gb2312_labelled_body_decodes_as_gb18030_without_replacement_characters():
    body = "联系人：王喆\n电话：020-1234".encode("gbk")
    raw = message([b"From: a@b.example", b"Subject: x", b"Content-Type: text/plain; charset=gb2312",
                   b"Content-Transfer-Encoding: 8bit"], body)  # fmt: skip
    parsed = parse_message(raw)
    assert "王喆" in parsed.text_body
    assert "\ufffd" not in parsed.text_body


def test_raw_8bit_gbk_filename_is_recovered():
    """Old clients put raw GBK bytes in the quoted filename; mail-parser gives U+FFFD."""
    name = "番禺区第二人民医院自查报告.docx"
    raw = multipart(
        [b"From: a@b.example", b"Subject: x"],
        [TEXT_PART, attachment(b'attachment; filename="' + name.encode("gbk") + b'"', docx_bytes("x"))],
    )
    parsed = parse_message(raw)
    assert [p.filename for p in parsed.attachments] == [name]


def test_rfc2047_inside_quoted_filename_outlook_style():
    name = "广州市红十字会医院电子健康码平台应用自查情况报告.docx"
    raw = multipart(
        [b"From: a@b.example", b"Subject: x"],
        [TEXT_PART, attachment(b'attachment; filename="' + b64word(name) + b'"', docx_bytes("x"))],
    )
    assert parse_message(raw).attachments[0].filename == name


def test_rfc2231_filename_with_gb2312_label():
    name = "王喆提交的报告.docx"
    encoded = "".join(f"%{b:02X}" for b in name.encode("gbk")).encode()
    raw = multipart(
        [b"From: a@b.example", b"Subject: x"],
        [TEXT_PART, attachment(b"attachment; filename*=gb2312''" + encoded, docx_bytes("x"))],
    )
    assert parse_message(raw).attachments[0].filename == name


def test_quoted_printable_utf8_body_and_display_name():
    body = quopri.encodestring("一、基本情况\n我院已完成整改。".encode())
    raw = message(
        [b"From: " + b64word("信息科 王喆", "utf-8", "utf-8") + b" <XXK@Hospital.example>", b"Subject: x",
         b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: quoted-printable"],
        body,
    )  # fmt: skip
    parsed = parse_message(raw)
    assert parsed.sender.name == "信息科 王喆"
    assert parsed.sender.address == "xxk@hospital.example"
    assert "我院已完成整改" in parsed.text_body


def test_html_only_body_gets_a_text_rendering():
    html = "<html><body><p>一、基本情况</p><p>二、整改措施</p><script>x()</script></body></html>"
    raw = message([b"From: a@b.example", b"Subject: x", b"Content-Type: text/html; charset=gbk"], html.encode("gbk"))
    parsed = parse_message(raw)
    assert parsed.text_body.splitlines() == ["一、基本情况", "二、整改措施"]


def test_docx_inside_attached_message_is_counted_once():
    """mail-parser#103 counts it twice; our tree holds it once, under the attached message."""
    inner = multipart([b"From: inner@h.example", b"Subject: inner"],
                      [TEXT_PART, attachment(b'attachment; filename="r.docx"', docx_bytes("报告"))], b"==inner==")  # fmt: skip
    outer = multipart(
        [b"From: colleague@gz.gov.cn", b"Subject: Fw: inner"],
        [TEXT_PART, b"Content-Type: message/rfc822" + CRLF + b"Content-Disposition: attachment" + CRLF + CRLF + inner],
    )
    parsed = parse_message(outer)
    docx_nodes = [p for p in parsed.walk_parts() if p.filename == "r.docx"]
    assert len(docx_nodes) == 1
    assert docx_nodes[0].path == "1/1"
    assert parsed.attachments[0].kind is PartKind.MESSAGE
    assert parsed.attachments[0].message.sender.address == "inner@h.example"


def test_missing_message_id_is_empty_and_receipt_time_comes_from_top_received():
    raw = message(
        [b"Received: from mx.example by mail.gz.gov.cn; Wed, 10 Jul 2024 23:58:00 +0800",
         b"Received: from client by mx.example; Wed, 10 Jul 2024 23:57:00 +0800",
         b"From: a@b.example", b"Subject: x", b"Date: Mon, 8 Jul 2024 09:00:00 +0800"],
        b"body",
    )  # fmt: skip
    parsed = parse_message(raw)
    assert parsed.message_id == ""
    assert parsed.received_at == datetime(2024, 7, 10, 15, 58, tzinfo=UTC)
    assert parsed.date == datetime(2024, 7, 8, 1, 0, tzinfo=UTC)


def test_auto_reply_and_bounce_are_recognised():
    auto = message([b"From: a@b.example", b"Subject: " + b64word("自动回复：收到"), b"Auto-Submitted: auto-replied"], b"x")
    assert parse_message(auto).auto_reply.startswith("Auto-Submitted")
    bounce = message([b"From: MAILER-DAEMON@mx.example", b"Subject: Undelivered Mail Returned to Sender"], b"x")
    assert parse_message(bounce).auto_reply


def test_garbage_bytes_never_raise():
    for raw in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n", b"From:\r\n\r\n"):
        parsed = parse_message(raw)
        assert parsed.subject == "" or isinstance(parsed.subject, str)


def test_two_from_headers_are_reported():
    raw = message([b"From: a@b.example", b"From: c@d.example", b"Subject: x"], b"x")
    parsed = parse_message(raw)
    assert parsed.from_count == 2
    assert any(p.code is ProblemCode.MANY_FROM for p in parsed.problems)
