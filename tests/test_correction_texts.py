"""Correction mails (补正通知) that are right: they say what is wrong in Chinese and ask only for what helps.

Every problem kind is rendered through the real template; four real files (an encrypted PDF made by
reportlab, a damaged PDF, a RAR archive, an empty attachment) go the whole way: ingest, receipts, the
mail on a real aiosmtpd server.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from parsers.documents import sniff as ct
from parsers.types import ProblemCode
from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.courtesy import request_word
from pipeline.domain.roster import load_roster
from pipeline.outbound.compose import render
from pipeline.outbound.corrections import correction_for
from pipeline.outbound.receipts import send_receipts
from tests.conftest import write_config
from tests.docfactory import pdf_bytes
from tests.smtp import SmtpServer, record_report, simple_mail, smtp_config

TZ = ZoneInfo("Asia/Shanghai")
SYS = "中山大学孙逸仙纪念医院"
# Problems the sender can fix; each with the file types it happens to, as the parsers sniff them.
FIXABLE: dict[ProblemCode, tuple[str, ...]] = {
    ProblemCode.EMPTY: (ct.EMPTY,),
    ProblemCode.UNSUPPORTED: (ct.PPTX, ct.OCTET, "application/vnd.apple.pages"),
    ProblemCode.EXECUTABLE: (ct.EXE,),
    ProblemCode.IMAGE_NO_TEXT: ("image/jpeg", ct.HEIC),
    ProblemCode.SCAN_NO_TEXT: (ct.PDF,),
    ProblemCode.IMAGE_TOO_LARGE: ("image/png",),
    ProblemCode.ENCRYPTED_ZIP: (ct.ZIP,),
    ProblemCode.ENCRYPTED_PDF: (ct.PDF,),
    ProblemCode.ENCRYPTED_OFFICE: (ct.OLE_ENCRYPTED, ct.DOC),
    ProblemCode.ZIP_BOMB: (ct.ZIP,),
    ProblemCode.ARCHIVE_TOO_DEEP: (ct.ZIP,),
    ProblemCode.ARCHIVE_TOO_MANY: (ct.ZIP,),
    ProblemCode.ARCHIVE_UNSUPPORTED: (ct.RAR, ct.SEVEN_Z),
    ProblemCode.TRUNCATED: (ct.DOCX, ct.PDF, ct.ZIP),
    ProblemCode.CORRUPT: (ct.PDF, ct.DOCX, ct.DOC, ct.XLSX),
    ProblemCode.UNSAFE_XML: (ct.DOCX, ct.OFD),
    ProblemCode.TOO_LARGE: (ct.PDF, ct.DOCX),
}
CASES = [(code, ctype) for code, types in FIXABLE.items() for ctype in types]
# Latin words a Chinese mail may carry: product and format names, and the mailbox address.
ALLOWED_LATIN = {"Word", "docx", "PDF", "RAR", "ZIP", "dpi", "PowerPoint", "pptx", "xxb", "gov"}


@pytest.fixture
def config(tmp_path: Path):  # noqa: ANN201
    path = write_config(tmp_path, {"campaign": {"contact_person": "李文", "contact_phone": "020-83000000"}})
    return load_config(path)


@pytest.mark.parametrize(("code", "content_type"), CASES, ids=[f"{c.value}-{t.rsplit('/', 1)[-1]}" for c, t in CASES])
def test_each_problem_is_named_in_chinese_and_asks_for_what_helps(config, code: ProblemCode, content_type: str) -> None:
    """GIVEN a report file the sender can fix, of a given type WHEN the correction mail is rendered
    THEN it says what is wrong and what to send, in Chinese; a PDF sender is never asked for a PDF nor a Word
    sender for a Word file; nothing forbids a scan; the closing asks for the stamp and accepts a stamped scan."""
    fix = correction_for(code, content_type)
    assert fix is not None
    if content_type == ct.PDF:
        assert "PDF" not in fix.send, fix.line
    if content_type in (ct.DOCX, ct.DOC):
        assert "Word" not in fix.send, fix.line
    name = "广东省人民医院"
    roster = load_roster(config.campaign)
    subject, body = render(config, "correction.txt.j2", greeting=name, institutions=[name], file_count=0,
                           problems=[fix.line], received_at="2024年7月9日 10:00", now="2024年7月9日 10:05",
                           ask=request_word(roster, [name]))  # fmt: skip
    assert subject.startswith("【请补正】")
    assert f"· {fix.line}" in body and "需要重新发送：" in fix.line
    assert set(re.findall(r"[A-Za-z]{3,}", body)) <= ALLOWED_LATIN, body
    for forbidden in ("勿用", "扫描图片", "转换为", "不要扫描"):
        assert forbidden not in body, (forbidden, body)
    assert "加盖单位公章" in body and "盖章后的扫描件我委同样可以读取" in body and "烦请" in body


@pytest.mark.parametrize("code", [ProblemCode.READER_FAILED, ProblemCode.PARSE_STOPPED, ProblemCode.WORK_LIMIT,
                                  ProblemCode.ATTACHMENT_LIMIT, ProblemCode.OCR_USED, "", "a_code_from_the_future"])  # fmt: skip
def test_problems_of_our_own_ask_nothing_of_the_sender(code: str) -> None:
    """GIVEN a file our reader or limit failed on (or a code this version does not know) THEN no request."""
    assert correction_for(code, ct.DOCX) is None


def test_every_unreadable_code_is_decided() -> None:
    """GIVEN every problem code that marks a file unread THEN it is either fixable above or knowingly ours."""
    ours = {ProblemCode.READER_FAILED, ProblemCode.PARSE_STOPPED, ProblemCode.WORK_LIMIT, ProblemCode.ATTACHMENT_LIMIT,
            ProblemCode.MESSAGE_TOO_DEEP, ProblemCode.MESSAGE_UNPARSEABLE}  # fmt: skip
    unread = [c for c in ProblemCode if list(ProblemCode).index(c) < list(ProblemCode).index(ProblemCode.MACRO)]
    assert set(unread) == set(FIXABLE) | ours


# -- the whole way: real files, ingest, receipts, a real SMTP server ---------------------------------


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2024, 7, day, hour, tzinfo=TZ)


REAL_FILES = {
    "encrypted-pdf": ("报告.pdf", pdf_bytes([["自查报告"]], user_password="123456"),
                      "无法读取：设有打开密码。需要重新发送：取消打开密码后的同一文件"),
    "damaged-pdf": ("报告.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n" + bytes(range(256)) * 4,
                    "需要重新发送：报告的 Word（.docx）电子版"),
    "rar": ("报告.rar", b"Rar!\x1a\x07\x01\x00" + bytes(range(256)) * 4,
            "无法读取：在我委无法解压的压缩包（如 RAR、7z）中。需要重新发送：不压缩、直接作为邮件附件的报告文件"),
    "empty": ("报告.docx", b"", "无法读取：是空文件（0 字节）"),
}


@pytest.mark.parametrize("case", list(REAL_FILES))
def test_a_real_unreadable_file_gets_the_right_correction(tmp_path: Path, smtp_server: SmtpServer, case: str) -> None:
    """GIVEN a hospital's mail whose only report file is unreadable in a given way WHEN receipts run
    THEN the correction mail on the SMTP server names that problem and asks for what helps, in Chinese."""
    filename, data, expected = REAL_FILES[case]
    ctx = open_context(load_config(write_config(tmp_path, smtp_config(smtp_server))))
    try:
        raw = simple_mail(sender="xxk@syshosp.example", sender_name="周霞", subject="自查报告",
                          attachment=(filename, data))  # fmt: skip
        record_report(ctx, raw, at(8), (SYS,), item_path="1", readable=False)
        summary = send_receipts(ctx, at(8, 11))
    finally:
        ctx.close()
    assert [d.kind for d in summary.deliveries.values()] == ["correction"]
    body = smtp_server.captured[0].message.get_content()
    assert expected in body, body
    if filename.endswith(".pdf"):
        assert "PDF" not in body.split("需要重新发送：", 1)[1].split("\n", 1)[0]
    assert filename not in body
