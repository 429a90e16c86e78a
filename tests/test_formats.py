"""The format matrix: every format and layout a commission receives, each checked for the text it
must yield (the institution's name and the report title readable), plus the bad-input cases.

Scans are drawn with a CJK font (tests/scanfactory.py); legacy Office files were made by
LibreOffice (tests/fixtures/formats/, with the script that made them); OFD, .msg and TNEF
are built byte by byte here.
"""

from __future__ import annotations

import io
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parsers.documents import read_attachment
from parsers.documents.ocr import enough_text, page_order
from parsers.message import parse_message
from parsers.types import DEFAULT_LIMITS, ParseLimits, Part, PartKind, ProblemCode
from tests import docfactory as f
from tests import msgfactory as msgf
from tests import scanfactory as scan

UNIT = "广州市番禺区第二人民医院"
TITLE = "电子健康码平台应用自查情况报告"
FIRST_PAGE = [UNIT, TITLE, "一、基本情况", "我院于2024年7月开展自查工作。"]
LAST_PAGE = ["三、整改措施", f"报送单位（盖章）：{UNIT}", "2024年7月8日"]


# OCR time budgets are tested on their own (test_ocr_time_budget...); elsewhere they must not cut a
# page short on a busy CI machine, where one page can take 15 s.
LIMITS = replace(DEFAULT_LIMITS, ocr_timeout_s=600.0, max_message_ocr_s=600.0)


def read(data: bytes, filename: str = "attachment", limits: ParseLimits = LIMITS) -> Part:
    return read_attachment(data, filename=filename, declared_type="", path="1", limits=limits)


def texts(part: Part) -> list[str]:
    assert part.document is not None, part.problem
    return [p.text for p in part.document.paragraphs]


def codes(part: Part) -> set[ProblemCode]:
    return {w.code for w in part.warnings}


# --- OCR: scans, photos, pictures in Word ----------------------------------------------------


@pytest.fixture(scope="module")
def scanned_report() -> bytes:
    middle = scan.page(["二、存在问题", "无"])
    last = scan.page(LAST_PAGE, stamp=UNIT)
    return scan.scanned_pdf([scan.page(FIRST_PAGE), middle, last])


def test_scanned_pdf_is_read_first_and_last_page_by_ocr(scanned_report: bytes) -> None:
    """GIVEN a three-page scan (image-only PDF, rotated 1.2°, JPEG quality 55) with a stamp on the last page
    WHEN read
    THEN OCR reads page 1 and page 3, finds the title and the unit line there and skips page 2,
    the paragraphs are tagged ocr-page-N (the seal's ring text ocr-page-N-stamp) and the part says
    OCR was used."""
    part = read(scanned_report, "扫描件.pdf")
    assert part.kind is PartKind.DOCUMENT
    lines = texts(part)
    assert UNIT in lines and TITLE in lines
    assert f"报送单位（盖章）：{UNIT}" in lines  # the seal printed over it is taken out first
    wheres = {p.where for p in part.document.paragraphs}
    assert wheres == {"ocr-page-1", "ocr-page-3", "ocr-page-3-stamp"}
    (ring,) = [p.text for p in part.document.paragraphs if p.where == "ocr-page-3-stamp"]
    assert len(set(ring) & set(UNIT)) >= 7, ring  # the seal's ring text, unwrapped and read
    assert {ProblemCode.OCR_USED, ProblemCode.OCR_PAGES_CUT} <= codes(part)
    cut = next(w for w in part.warnings if w.code is ProblemCode.OCR_PAGES_CUT)
    assert "2 of 3" in cut.detail and "title and unit" in cut.detail


def test_photo_jpeg_and_png_scan_are_read(scanned_report: bytes) -> None:
    """GIVEN a JPEG photo of a page taken slightly askew, and the same page as a PNG
    WHEN read
    THEN both come back as documents whose OCR text holds the unit and the title (where=ocr-image)."""
    img = scan.page(FIRST_PAGE + LAST_PAGE[1:2], rotate=2.5)
    for data, name in ((scan.jpeg(img, 60), "照片.jpg"), (scan.png(img), "扫描.png")):
        part = read(data, name)
        assert part.kind is PartKind.DOCUMENT, (name, part.problem)
        assert UNIT in texts(part) and TITLE in texts(part), name
        assert {p.where for p in part.document.paragraphs} == {"ocr-image"}


def test_image_only_docx_is_read_from_its_picture() -> None:
    """GIVEN a .docx whose only content is a pasted scan (no text of its own)
    WHEN read
    THEN the picture is OCR'd and its text is the document's text (where=ocr-image-1)."""
    picture = scan.jpeg(scan.page(FIRST_PAGE, rotate=0.8))
    data = f.minimal_docx("<w:p/>", extra={"word/media/image1.jpeg": picture})
    part = read(data, "自查报告.docx")
    assert part.kind is PartKind.DOCUMENT
    assert UNIT in texts(part) and TITLE in texts(part)
    assert {p.where for p in part.document.paragraphs} == {"ocr-image-1"}


def test_small_images_are_not_ocrd() -> None:
    """GIVEN a small picture (a logo in a signature)
    WHEN read
    THEN it is not OCR'd: UNREADABLE IMAGE_NO_TEXT."""
    logo = scan.png(scan.page(["广州市卫生健康委员会"], size=(300, 120), font_px=20, rotate=0))
    started = time.monotonic()
    part = read(logo, "logo.png")
    assert part.problem is not None and part.problem.code is ProblemCode.IMAGE_NO_TEXT
    assert time.monotonic() - started < 5.0  # no OCR ran (a page takes 4 s and more)


@pytest.mark.parametrize(("width", "height"), [(30_000, 30_000), (8_000, 8_000)])
def test_huge_image_refused_from_its_header(width: int, height: int) -> None:
    """GIVEN a PNG whose header claims 30,000 x 30,000 (and one of 8,000 x 8,000, over the 40 MP limit
    but under PIL's own bomb check)
    WHEN read
    THEN it is refused as IMAGE_TOO_LARGE at once, nothing decoded."""
    started = time.monotonic()
    part = read(scan.huge_png_header(width, height), "巨图.png")
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.IMAGE_TOO_LARGE
    assert time.monotonic() - started < 2.0  # decoding 900 megapixels would take far longer (and 2.7 GB)


def test_500_page_scan_is_cut_at_the_page_budget() -> None:
    """GIVEN a 500-page image-only PDF with nothing legible on it
    WHEN read with max_ocr_pages = 2
    THEN OCR stops after 2 pages with OCR_PAGES_CUT saying so, and the part is SCAN_NO_TEXT."""
    limits = replace(LIMITS, max_ocr_pages=2)
    started = time.monotonic()
    part = read(scan.blank_pdf(500), "500页.pdf", limits)
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.SCAN_NO_TEXT
    cut = [w for w in part.warnings if w.code is ProblemCode.OCR_PAGES_CUT]
    assert cut and "2 of 500" in cut[0].detail and "page budget" in cut[0].detail
    assert time.monotonic() - started < 120


def test_ocr_time_budget_stops_before_the_next_page(scanned_report: bytes) -> None:
    """GIVEN the three-page scan and an OCR time budget of 0 s
    WHEN read
    THEN no page is OCR'd, the cut is recorded with its reason and the part is SCAN_NO_TEXT."""
    part = read(scanned_report, "扫描件.pdf", replace(LIMITS, ocr_timeout_s=0.0))
    assert part.problem is not None and part.problem.code is ProblemCode.SCAN_NO_TEXT
    cut = [w for w in part.warnings if w.code is ProblemCode.OCR_PAGES_CUT]
    assert cut and "0 of 3" in cut[0].detail and "time budget" in cut[0].detail


def test_page_order_first_last_then_the_rest() -> None:
    assert page_order(1, 5) == [1]
    assert page_order(2, 5) == [1, 2]
    assert page_order(6, 4) == [1, 6, 2, 3]
    assert page_order(500, 5) == [1, 500, 2, 3, 4]
    assert page_order(3, 0) == []


def test_enough_text_needs_a_title_and_a_unit_line() -> None:
    assert enough_text(f"{UNIT}\n{TITLE}\n报送单位（盖章）：{UNIT}")
    assert enough_text(f"关于自查工作的情况报告\n{UNIT}\n2024年7月8日")
    assert not enough_text(f"{TITLE}\n一、基本情况")  # a title, no unit
    assert not enough_text(f"{UNIT}\n一、基本情况")  # a unit, no title


def test_ocr_fits_the_parse_sandbox_memory_cap(scanned_report: bytes) -> None:
    """GIVEN the parse sandbox with the configured caps (parse_memory_mb = 1536, address space)
    WHEN a mail carrying the three-page scan is parsed there
    THEN OCR completes inside the cap and the unit's name comes back."""
    from email.message import EmailMessage
    from pathlib import Path

    from pipeline.config import load_config
    from pipeline.inbound.sandbox import ParseSandbox

    msg = EmailMessage()
    msg["From"] = "it@py2h.example"
    msg["Subject"] = "自查报告"
    msg.set_content("见附件")
    msg.add_attachment(scanned_report, maintype="application", subtype="pdf", filename="扫描件.pdf")
    config = load_config(Path(__file__).resolve().parent.parent / "config.toml")
    box = ParseSandbox(timeout_s=120, memory_mb=config.parse_memory_mb)
    try:
        parsed = box.parse(msg.as_bytes(), LIMITS)
    finally:
        box.close()
    (part,) = parsed.attachments
    assert part.kind is PartKind.DOCUMENT, part.problem
    assert UNIT in texts(part)


# --- Legacy and Chinese formats: .doc, .wps, RTF (LibreOffice-made fixtures), OFD (built here) ---

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"
FIXTURE_UNIT_LINE = f"报送单位（盖章）：{UNIT}"
GBK_ONLY_LINE = "我院已按要求完成自查。联系人：陈喆、朱镕（GBK 字符），English words 123。"


@pytest.mark.parametrize("name", ["report.doc", "report.wps", "report.rtf"])
def test_legacy_word_files_made_by_libreoffice(name: str) -> None:
    """GIVEN a Word 97 .doc, the same binary saved as .wps, and an RTF, all written by LibreOffice
    (tests/fixtures/formats/make_fixtures.py)
    WHEN read (typed by their bytes, the name does not matter)
    THEN every line comes back exactly, GBK-only characters (喆, 镕) and the page header included."""
    part = read((FIXTURES / name).read_bytes(), "附件.bin")
    assert part.kind is PartKind.DOCUMENT, part.problem
    lines = texts(part)
    assert lines[lines.index(UNIT) + 1] == TITLE
    assert FIXTURE_UNIT_LINE in lines and GBK_ONLY_LINE in lines and "增配扫码终端20台" in lines
    assert "番禺区卫生健康系统文件" in lines  # the header


def test_rtf_in_the_gbk_code_page_and_with_unicode_escapes() -> None:
    """GIVEN RTF as WPS/Word write it in China: \\ansicpg936 with GBK bytes as \\'xx (a font with
    \\fcharset134), and RTF with \\uN escapes and their \\uc1 fallback characters
    WHEN read
    THEN both decode to the same Chinese text, fallbacks and the font table dropped."""
    gbk = "".join(f"\\'{b:02x}" for b in f"{UNIT}{TITLE}".encode("gbk"))
    font = "".join(f"\\'{b:02x}" for b in "宋体".encode("gbk"))
    ansi = (r"{\rtf1\ansi\ansicpg936\deff0{\fonttbl{\f0\fnil\fcharset134 " + font + r";}}"
            r"{\*\generator WPS Office;}\f0 " + gbk + r"\par " + r"\'b1\'a8\'cb\'cd\'b5\'a5\'ce\'bb\par}")  # fmt: skip
    escaped = "".join(f"\\u{ord(c) if ord(c) < 32768 else ord(c) - 65536}?" for c in f"{UNIT}{TITLE}")
    uni = r"{\rtf1\ansi\uc1{\fonttbl{\f0 Arial;}}\f0 " + escaped + r"\par 报送单位\par}"
    assert texts(read(ansi.encode("ascii"))) == [f"{UNIT}{TITLE}", "报送单位"]
    assert texts(read(uni.encode("utf-8")))[0] == f"{UNIT}{TITLE}"


OFD_NS = "http://www.ofdspec.org/2016"


def ofd_bytes(pages: list[list[tuple[float, float, str]]], *, title: str = "", extra: dict | None = None,
              document_xml: str | None = None) -> bytes:  # fmt: skip
    """A minimal OFD package: OFD.xml -> Doc_0/Document.xml -> Pages/Page_N/Content.xml.

    Each page is a list of (x mm, y mm, text) text objects; a line split into two TextCodes
    (as OFD writers do for runs) is given as two objects on the same y.
    """
    ofd = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.0" DocType="OFD">'
           f"<ofd:DocBody><ofd:DocInfo><ofd:DocID>1</ofd:DocID><ofd:Title>{title}</ofd:Title></ofd:DocInfo>"
           "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>")  # fmt: skip
    page_refs = "".join(f'<ofd:Page ID="{i + 1}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages)))
    document = document_xml or (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{OFD_NS}"><ofd:CommonData>'
        '<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea><ofd:MaxUnitID>99</ofd:MaxUnitID>'
        f"</ofd:CommonData><ofd:Pages>{page_refs}</ofd:Pages></ofd:Document>"
    )
    members = {"OFD.xml": ofd.encode(), "Doc_0/Document.xml": document.encode()}
    for i, objects in enumerate(pages):
        body = "".join(
            f'<ofd:TextObject ID="{n + 10}" Boundary="{x} {y} 150 8" Font="3" Size="4.2">'
            f'<ofd:TextCode X="0" Y="6">{text}</ofd:TextCode></ofd:TextObject>'
            for n, (x, y, text) in enumerate(objects)
        )
        members[f"Doc_0/Pages/Page_{i}/Content.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content>'
            f'<ofd:Layer ID="2">{body}</ofd:Layer></ofd:Content></ofd:Page>'
        ).encode()
    members.update(extra or {})
    return f.zip_bytes(members)


def test_ofd_text_in_page_and_line_order() -> None:
    """GIVEN a two-page OFD whose title line is written as two text objects on one baseline and whose
    objects are stored out of reading order
    WHEN read
    THEN lines come top to bottom, each joined left to right, tagged page-1 / page-2."""
    data = ofd_bytes(
        [
            [(25, 60, "一、基本情况"), (70, 40, "自查情况报告"), (25, 40, "电子健康码平台应用"), (25, 25, UNIT)],
            [(25, 30, FIXTURE_UNIT_LINE), (25, 45, "2024年7月8日")],
        ],
        title="自查报告",
    )
    part = read(data, "报告.ofd")
    assert part.content_type == "application/ofd" and part.kind is PartKind.DOCUMENT, part.problem
    assert texts(part) == [UNIT, TITLE, "一、基本情况", FIXTURE_UNIT_LINE, "2024年7月8日"]
    assert [p.where for p in part.document.paragraphs] == ["page-1"] * 3 + ["page-2"] * 2
    assert part.document.title == "自查报告"


# --- Bad input: each refused or cut at its bound, the code recorded, never an exception ----------


def _encrypted_doc() -> bytes:
    """The LibreOffice .doc with the FIB's fEncrypted bit set (WordDocument starts on a sector)."""
    data = bytearray((FIXTURES / "report.doc").read_bytes())
    start = next(i for i in range(512, len(data), 512) if data[i : i + 2] == b"\xec\xa5")
    data[start + 0x0B] |= 0x01  # fEncrypted is bit 8 of the little-endian 16-bit flags at 0x0A
    return bytes(data)


def _ofd_with(**members: bytes) -> bytes:
    return ofd_bytes([[(25, 25, UNIT)]], extra=members)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ((FIXTURES / "report.doc").read_bytes()[:3000], ProblemCode.CORRUPT),
        (f.fake_ole("WordDocument"), ProblemCode.CORRUPT),
        (_encrypted_doc(), ProblemCode.ENCRYPTED_OFFICE),
        (_ofd_with(**{"Doc_0/Document.xml": b"<ofd:Document xmlns:ofd='x'><ofd:Pages><unclosed>"}), ProblemCode.CORRUPT),
        (f.zip_bytes({"OFD.xml": b"<OFD><DocBody/></OFD>"}), ProblemCode.CORRUPT),
        (_ofd_with(**{"Doc_0/Pages/Page_0/Content.xml": b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "b">]><p>&a;</p>'}),
         ProblemCode.UNSAFE_XML),
        (_ofd_with(**{"Doc_0/Res/zeros.bin": b"\0" * 50_000_000}), ProblemCode.ZIP_BOMB),
        (b"{\\rtf1" + b"{" * 200_000 + b"x" + b"}" * 200_000 + b"}", ProblemCode.SCAN_NO_TEXT),
    ],
    ids=["doc-truncated", "doc-no-fib", "doc-encrypted", "ofd-malformed-xml", "ofd-no-docroot", "ofd-dtd",
         "ofd-bomb", "rtf-deep-nesting"],
)  # fmt: skip
def test_malformed_legacy_files_are_refused_with_a_code(data: bytes, code: ProblemCode) -> None:
    """GIVEN a broken, encrypted, hostile or bomb-carrying .doc / OFD / RTF
    WHEN read
    THEN the part is UNREADABLE with the named code, quickly, and nothing raises."""
    started = time.monotonic()
    part = read(data, "坏文件")
    assert part.kind is PartKind.UNREADABLE and part.problem is not None, part
    assert part.problem.code is code, part.problem
    assert time.monotonic() - started < 5


# --- Outlook: .msg files and winmail.dat ---------------------------------------------------------


def _report_msg(*, headers: str = "", extra: list | None = None) -> bytes:
    inner = msgf.msg_streams(subject="转发：自查报告", sender_name="越秀区卫健局", sender_address="yx@yuexiu.example",
                             to=["wjw@gz.gov.cn"], body="转发下属单位报告", embedded=True,
                             attachments=[msgf.MsgAttachment("越秀报告.rtf", (FIXTURES / "report.rtf").read_bytes())])  # fmt: skip
    return msgf.msg_bytes(
        subject="番禺二院电子健康码平台应用自查情况报告", sender_name="番禺二院信息科", sender_address="it@py2h.example",
        to=["wjw@gz.gov.cn"], body="您好，附件是我院的自查报告，请查收。", headers=headers,
        attachments=[msgf.MsgAttachment("自查报告.doc", (FIXTURES / "report.doc").read_bytes(), "application/msword"),
                     msgf.MsgAttachment("转发.msg", embedded=inner), *(extra or [])],
    )  # fmt: skip


def test_outlook_msg_parses_like_mime_mail() -> None:
    """GIVEN an Outlook .msg (a CFB file built by tests/msgfactory.py) without transport headers, carrying a
    Word 97 report and an attached Outlook message that carries an RTF report
    WHEN parse_message is given its bytes
    THEN subject, sender, recipients and body come from the message's properties, the .doc is read,
    and the attached message is a MESSAGE part with its own sender and its RTF read."""
    parsed = parse_message(_report_msg())
    assert parsed.subject == "番禺二院电子健康码平台应用自查情况报告"
    assert (parsed.sender.name, parsed.sender.address) == ("番禺二院信息科", "it@py2h.example")
    assert [a.address for a in parsed.to] == ["wjw@gz.gov.cn"] and not parsed.problems
    assert "请查收" in parsed.text_body
    doc, forwarded = parsed.attachments
    assert doc.filename == "自查报告.doc" and FIXTURE_UNIT_LINE in texts(doc)
    assert forwarded.kind is PartKind.MESSAGE and forwarded.message.sender.address == "yx@yuexiu.example"
    (rtf,) = forwarded.message.attachments
    assert rtf.path == "2/1" and FIXTURE_UNIT_LINE in texts(rtf)


def test_outlook_msg_keeps_its_transport_headers() -> None:
    """GIVEN a received .msg whose transport headers Outlook kept (Received, Message-ID, Date)
    WHEN parsed
    THEN those headers are the message's: received time and Message-ID come from them."""
    headers = ("Received: from mx.py2h.example by mail.gz.gov.cn; Mon, 8 Jul 2024 10:00:00 +0800\r\n"
               "Message-ID: <r1@py2h.example>\r\nFrom: =?utf-8?b?55Wq56a65LqM6Zmi?= <it@py2h.example>\r\n"
               "Subject: =?utf-8?b?6Ieq5p+l5oql5ZGK?=\r\nDate: Mon, 8 Jul 2024 09:59:00 +0800\r\n\r\n")  # fmt: skip
    parsed = parse_message(_report_msg(headers=headers))
    assert parsed.message_id == "r1@py2h.example" and parsed.subject == "自查报告"
    assert parsed.received_at == datetime(2024, 7, 8, 2, 0, tzinfo=UTC)
    assert parsed.sender.name == "番禺二院"


def test_msg_attached_to_a_mime_mail_is_an_attached_message() -> None:
    """GIVEN a MIME mail forwarding an Outlook .msg as an attachment
    WHEN parsed
    THEN the .msg is a MESSAGE part whose own attachments are read (paths 1/1, 1/2...)."""
    from email.message import EmailMessage

    outer = EmailMessage()
    outer["From"] = "clerk@gz.gov.cn"
    outer["Subject"] = "转发"
    outer.set_content("见附件")
    outer.add_attachment(_report_msg(), maintype="application", subtype="vnd.ms-outlook", filename="报告.msg")
    (part,) = parse_message(outer.as_bytes()).attachments
    assert part.kind is PartKind.MESSAGE and part.content_type == "application/vnd.ms-outlook"
    assert part.message.attachments[0].path == "1/1" and FIXTURE_UNIT_LINE in texts(part.message.attachments[0])


def test_winmail_dat_files_are_read_like_attachments() -> None:
    """GIVEN an Outlook RTF-mode mail whose files travel inside winmail.dat (application/ms-tnef),
    the file titles in GBK
    WHEN parsed
    THEN winmail.dat is an ARCHIVE whose children are the files, each read (the .doc's unit line)."""
    from email.message import EmailMessage

    tnef = msgf.tnef_bytes([("自查报告.doc", (FIXTURES / "report.doc").read_bytes()), ("说明.txt", "联系人：陈伟".encode("gbk"))])
    mail = EmailMessage()
    mail["From"] = "it@py2h.example"
    mail["Subject"] = "自查报告"
    mail.set_content("见附件")
    mail.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    (part,) = parse_message(mail.as_bytes()).attachments
    assert part.content_type == "application/ms-tnef" and part.kind is PartKind.ARCHIVE
    assert [c.filename for c in part.children] == ["自查报告.doc", "说明.txt"]
    assert FIXTURE_UNIT_LINE in texts(part.children[0]) and texts(part.children[1]) == ["联系人：陈伟"]


def test_intake_ingest_takes_msg_files(ctx, tmp_path: Path) -> None:
    """GIVEN a folder holding an Outlook .msg report (beside nothing else)
    WHEN `intake ingest` takes the folder
    THEN the .msg is stored as its original bytes, parsed, and the report attributed to its unit."""
    from pipeline.inbound.ingest import ingest_paths
    from pipeline.outputs.views import message_views

    data = _report_msg()
    folder = tmp_path / "outlook"
    folder.mkdir()
    (folder / "番禺二院.msg").write_bytes(data)
    summary = ingest_paths(ctx, [folder])
    assert (summary.new, summary.duplicates) == (1, 0) and not summary.unreadable_sources
    (view,) = message_views(ctx)
    assert UNIT in view.institutions
    stored = [p.read_bytes() for p in (ctx.data_dir / "raw").rglob("*") if p.is_file()]
    assert stored == [data]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (msgf.cfb({"__substg1.0_0037001F": "无属性流".encode("utf-16-le")}), ProblemCode.CORRUPT),
        (msgf.tnef_bytes([("a.txt", b"x")])[:50], ProblemCode.TRUNCATED),
    ],
    ids=["msg-without-property-stream", "tnef-truncated"],
)
def test_malformed_outlook_files_are_recorded(data: bytes, code: ProblemCode) -> None:
    """GIVEN a .msg without the streams Outlook writes, and a winmail.dat cut short
    WHEN parsed as a mail / read as an attachment
    THEN the reason is recorded with its code, nothing raises."""
    if data.startswith(b"\xd0\xcf"):
        parsed = parse_message(data)
        assert [p.code for p in parsed.problems][:1] == [code] and not parsed.attachments
    else:
        part = read(data, "winmail.dat")
        assert part.kind is PartKind.UNREADABLE and part.problem.code is code


# --- Layouts: wrapped PDF titles, 红头 text boxes, headers, nested tables, tracked changes ---------


def test_pdf_title_wrapped_over_two_lines_reads_as_one() -> None:
    """GIVEN a text PDF whose centred 18 pt title wraps ("…自查情况" / "报告") and whose first body
    sentence runs over two lines, then a signature block
    WHEN read
    THEN the title is one paragraph, the sentence one paragraph, and the heading, signature and date
    lines stay separate."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    f.pdf_bytes([[]])  # registers the CID font
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setFont("STSong-Light", 18)
    pdf.drawCentredString(297, 760, f"{UNIT}电子健康码平台应用自查情况")
    pdf.drawCentredString(297, 736, "报告")
    pdf.setFont("STSong-Light", 12)
    body = ["番禺区卫生健康局：", "一、基本情况",
            "我院已按要求完成电子健康码平台应用情况自查，现将有关情况报告如下，全院共有门诊诊室八十六间，",
            "已全部配备扫码终端。", FIXTURE_UNIT_LINE, "2024年7月8日"]  # fmt: skip
    for i, line in enumerate(body):
        pdf.drawString(72, 700 - 20 * i, line)
    pdf.showPage()
    pdf.save()
    assert texts(read(buf.getvalue(), "报告.pdf")) == [
        f"{UNIT}电子健康码平台应用自查情况报告",
        "番禺区卫生健康局：",
        "一、基本情况",
        "我院已按要求完成电子健康码平台应用情况自查，现将有关情况报告如下，全院共有门诊诊室八十六间，已全部配备扫码终端。",
        FIXTURE_UNIT_LINE,
        "2024年7月8日",
    ]


def test_red_header_docx_layout() -> None:
    """GIVEN a 红头 report: the unit's name only in a DrawingML text box (with its VML fallback copy),
    the header naming the bureau, a nested table holding the contact, a sentence adapted from a
    sister hospital (its name in a tracked deletion, ours inserted), a content control, and a
    comment naming a third hospital
    WHEN read
    THEN the text box is read once, the header and nested cell are read, the deletion and the
    comment are not."""
    mc = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    wps = "http://schemas.microsoft.com/office/word/2010/wordprocessingShape"
    box = (f'<w:r><mc:AlternateContent xmlns:mc="{mc}"><mc:Choice Requires="wps"><w:drawing><wps:wsp xmlns:wps="{wps}">'
           f"<wps:txbx><w:txbxContent>{f.paragraph_xml(UNIT)}</w:txbxContent></wps:txbx></wps:wsp></w:drawing></mc:Choice>"
           f'<mc:Fallback><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml"><v:textbox><w:txbxContent>'
           f"{f.paragraph_xml(UNIT)}</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>")  # fmt: skip
    body = (
        f"<w:p>{box}</w:p>" + f.paragraph_xml(TITLE)
        + '<w:p><w:r><w:t>本报告由</w:t></w:r><w:del w:id="1" w:author="x"><w:r><w:delText>广州市越秀区儿童医院</w:delText></w:r></w:del>'
        f'<w:ins w:id="2" w:author="y"><w:r><w:t>{UNIT}</w:t></w:r></w:ins><w:r><w:t>编制。</w:t></w:r></w:p>'
        f"<w:sdt><w:sdtContent>{f.paragraph_xml(FIXTURE_UNIT_LINE)}</w:sdtContent></w:sdt>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>联系方式</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>陈伟明 020-84512345</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        "</w:tc></w:tr></w:tbl>"
        '<w:p><w:commentRangeStart w:id="0"/><w:r><w:t>正文</w:t></w:r><w:commentRangeEnd w:id="0"/>'
        '<w:r><w:commentReference w:id="0"/></w:r></w:p>'
    )  # fmt: skip
    comments = (f'<w:comments xmlns:w="{f.W_NS}"><w:comment w:id="0" w:author="z"><w:p><w:r>'
                "<w:t>参照广东省第二人民医院模板</w:t></w:r></w:p></w:comment></w:comments>")  # fmt: skip
    rels = ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rIdC" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments" '
            'Target="comments.xml"/></Relationships>')  # fmt: skip
    data = f.minimal_docx(body, extra={"word/comments.xml": comments.encode(), "word/_rels/document.xml.rels": rels.encode()})
    part = read(data, "红头文件.docx")
    lines = texts(part)
    assert lines == [UNIT, TITLE, f"本报告由{UNIT}编制。", FIXTURE_UNIT_LINE, "正文"]
    assert part.document.tables == ((("联系方式\n陈伟明 020-84512345",),),)
    assert "越秀区儿童医院" not in part.document.text and "第二人民医院模板" not in part.document.text


def test_docx_headers_and_footers_are_read() -> None:
    """GIVEN the python-docx report with a page header (the unit's 文件 line) and a footer
    WHEN read
    THEN both come out, tagged header / footer, after the body."""
    part = read(f.docx_report(), "report.docx")
    tagged = [(p.where, p.text) for p in part.document.paragraphs if p.where != "body"]
    assert tagged == [("header", f.HEADER_TEXT), ("footer", f.FOOTER_TEXT)]


# --- Encrypted zip, password in the mail body ----------------------------------------------------


def _aes_zip(password: bytes) -> bytes:
    import pyzipper

    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as az:
        az.setpassword(password)
        az.writestr("自查报告.docx", f.docx_report())
    return buf.getvalue()


def _mail_with_zip(body: str, password: bytes, *, aes: bool = False) -> bytes:
    from email.message import EmailMessage

    encrypted = _aes_zip(password) if aes else f.raw_zip(
        [f.RawEntry("自查报告.docx".encode("gbk"), f.docx_report(), password=password)]
    )
    mail = EmailMessage()
    mail["From"] = "it@py2h.example"
    mail["Subject"] = "自查报告（加密）"
    mail.add_attachment(encrypted, maintype="application", subtype="zip", filename="报告.zip")
    mail.add_attachment(body.encode("gbk"), maintype="text", subtype="plain", disposition="inline")
    return mail.as_bytes()  # the body comes after the zip: passwords are found before reading


@pytest.mark.parametrize(
    ("body", "aes", "readable", "detail"),
    [
        ("您好，附件为我院自查报告，解压密码：gz2024，请查收。", False, True, ""),
        ("附件密码是 “gz2024”", False, True, ""),
        ("解压密码：wrong99", False, False, "the 1 password(s) in the mail did not open it"),
        ("附件为我院自查报告。", False, False, "no password in the mail"),
        ("解压密码：gz2024", True, True, ""),
        ("解压密码：wrong99", True, False, "the 1 password(s) in the mail did not open it"),
    ],
    ids=["colon", "quoted", "wrong-password", "no-password", "aes", "aes-wrong-password"],
)
def test_encrypted_zip_opened_with_the_password_in_the_mail(body: str, aes: bool, readable: bool, detail: str) -> None:
    """GIVEN a ZipCrypto- or AES-encrypted zip (password gz2024) and a GBK body after it in the MIME tree
    WHEN parsed
    THEN the password the body gives opens the member and the report is read; a wrong or missing
    password leaves it ENCRYPTED_ZIP with the reason — and no other password is ever tried."""
    (archive,) = parse_message(_mail_with_zip(body, b"gz2024", aes=aes)).attachments
    (member,) = archive.children
    if readable:
        assert member.kind is PartKind.DOCUMENT and UNIT in member.document.text
    else:
        assert member.problem is not None and member.problem.code is ProblemCode.ENCRYPTED_ZIP
        assert member.problem.detail == detail


def test_password_scan_is_linear_on_hostile_bodies() -> None:
    """GIVEN a 2 MB body of repeated "密码：" labels with no end
    WHEN the passwords are looked for
    THEN the scan stops at its bound quickly and finds at most five."""
    from parsers.passwords import find_passwords

    started = time.monotonic()
    found = find_passwords("密码：" * 700_000 + "x")
    assert time.monotonic() - started < 1 and len(found) <= 5


# --- Bad input inside the new containers; mutated files never raise -----------------------------


def test_zip_bomb_inside_msg_and_winmail_dat_is_refused() -> None:
    """GIVEN a zip bomb (3 GB declared) attached inside an Outlook .msg, and the same inside a winmail.dat
    WHEN parsed / read
    THEN the bomb is refused as ZIP_BOMB where it sits; the rest of the message is read."""
    bomb = f.raw_zip([f.RawEntry(b"zeros.bin", b"\0" * 1000, declared_size=3_000_000_000)])
    parsed = parse_message(_report_msg(extra=[msgf.MsgAttachment("材料.zip", bomb, "application/zip")]))
    assert parsed.attachments[0].kind is PartKind.DOCUMENT
    assert parsed.attachments[2].problem is not None and parsed.attachments[2].problem.code is ProblemCode.ZIP_BOMB
    part = read(msgf.tnef_bytes([("材料.zip", bomb), ("说明.txt", "正文".encode("gbk"))]), "winmail.dat")
    assert part.kind is PartKind.ARCHIVE and part.children[0].problem.code is ProblemCode.ZIP_BOMB
    assert texts(part.children[1]) == ["正文"]


@pytest.mark.parametrize("name", ["report.doc", "report.rtf", "ofd", "msg", "tnef", "scan-png"])
def test_mutated_files_never_raise(name: str) -> None:
    """GIVEN 40 randomly damaged copies of a .doc, RTF, OFD, .msg, winmail.dat and a PNG scan
    (bytes flipped, runs zeroed, the file cut short)
    WHEN each is read as an attachment (and the .msg parsed as a mail)
    THEN every one yields a Part (or a ParsedMessage), never an exception, each within seconds."""
    import random

    sources = {
        "ofd": lambda: ofd_bytes([[(25, 25, UNIT), (25, 40, TITLE)]]),
        "msg": lambda: _report_msg(),
        "tnef": lambda: msgf.tnef_bytes([("a.txt", "广州".encode("gbk"))]),
        "scan-png": lambda: scan.png(scan.page([UNIT], size=(620, 877), font_px=20, rotate=0)),
    }
    original = sources[name]() if name in sources else (FIXTURES / name).read_bytes()
    rng = random.Random(name)
    limits = replace(DEFAULT_LIMITS, max_ocr_pages=1, ocr_timeout_s=5.0)
    for _ in range(40):
        data = bytearray(original)
        kind = rng.choice(("flip", "zero", "cut"))
        if kind == "flip":
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == "zero":
            start = rng.randrange(len(data))
            data[start : start + rng.randint(1, 512)] = bytes(min(512, len(data) - start))
        else:
            del data[rng.randint(1, len(data) - 1) :]
        started = time.monotonic()
        part = read(bytes(data), name, limits)
        assert isinstance(part, Part)
        if name == "msg":
            parse_message(bytes(data), limits=limits)
        assert time.monotonic() - started < 20


def test_heic_photo_is_read() -> None:
    """GIVEN an iPhone-style HEIC photo of a report page (written with pillow-heif)
    WHEN read
    THEN it is typed image/heic by its bytes and its OCR text holds the unit and the title."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    scan.page(FIRST_PAGE, rotate=1.5).save(buf, "HEIF", quality=60)
    part = read(buf.getvalue(), "IMG_0001.HEIC")
    assert part.content_type == "image/heic" and part.kind is PartKind.DOCUMENT, part.problem
    assert UNIT in texts(part) and TITLE in texts(part)
