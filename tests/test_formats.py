"""The format matrix: every format and layout a commission receives, each checked for the text it
must yield (the institution's name and the report title readable), plus the bad-input cases.

Scans are drawn with a CJK font (tests/scanfactory.py); legacy Office files were made by
LibreOffice (tests/fixtures/formats/, with the script that made them); OFD, .msg and TNEF
are built byte by byte here.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from parsers.documents import read_attachment
from parsers.documents.ocr import enough_text, page_order
from parsers.types import DEFAULT_LIMITS, ParseLimits, Part, PartKind, ProblemCode
from tests import docfactory as f
from tests import scanfactory as scan

UNIT = "广州市番禺区第二人民医院"
TITLE = "电子健康码平台应用自查情况报告"
FIRST_PAGE = [UNIT, TITLE, "一、基本情况", "我院于2024年7月开展自查工作。"]
LAST_PAGE = ["三、整改措施", f"报送单位（盖章）：{UNIT}", "2024年7月8日"]


def read(data: bytes, filename: str = "attachment", limits: ParseLimits = DEFAULT_LIMITS) -> Part:
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
    the paragraphs are tagged ocr-page-N and the part says OCR was used."""
    part = read(scanned_report, "扫描件.pdf")
    assert part.kind is PartKind.DOCUMENT
    lines = texts(part)
    assert UNIT in lines and TITLE in lines
    assert any(line.startswith("报送单位") and "番禺区" in line for line in lines)
    wheres = {p.where for p in part.document.paragraphs}
    assert wheres == {"ocr-page-1", "ocr-page-3"}
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
    THEN it is not OCR'd: UNREADABLE IMAGE_NO_TEXT, at once."""
    logo = scan.png(scan.page(["广州市卫生健康委员会"], size=(300, 120), font_px=20, rotate=0))
    started = time.monotonic()
    part = read(logo, "logo.png")
    assert part.problem is not None and part.problem.code is ProblemCode.IMAGE_NO_TEXT
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(("width", "height"), [(30_000, 30_000), (8_000, 8_000)])
def test_huge_image_refused_from_its_header(width: int, height: int) -> None:
    """GIVEN a PNG whose header claims 30,000 x 30,000 (and one of 8,000 x 8,000, over the 40 MP limit
    but under PIL's own bomb check)
    WHEN read
    THEN it is refused as IMAGE_TOO_LARGE within a fraction of a second, nothing decoded."""
    started = time.monotonic()
    part = read(scan.huge_png_header(width, height), "巨图.png")
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.IMAGE_TOO_LARGE
    assert time.monotonic() - started < 0.5


def test_500_page_scan_is_cut_at_the_page_budget() -> None:
    """GIVEN a 500-page image-only PDF with nothing legible on it
    WHEN read with max_ocr_pages = 2
    THEN OCR stops after 2 pages with OCR_PAGES_CUT saying so, and the part is SCAN_NO_TEXT."""
    limits = replace(DEFAULT_LIMITS, max_ocr_pages=2)
    started = time.monotonic()
    part = read(scan.blank_pdf(500), "500页.pdf", limits)
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.SCAN_NO_TEXT
    cut = [w for w in part.warnings if w.code is ProblemCode.OCR_PAGES_CUT]
    assert cut and "2 of 500" in cut[0].detail and "page budget" in cut[0].detail
    assert time.monotonic() - started < 30


def test_ocr_time_budget_stops_before_the_next_page(scanned_report: bytes) -> None:
    """GIVEN the three-page scan and an OCR time budget of 0 s
    WHEN read
    THEN no page is OCR'd, the cut is recorded with its reason and the part is SCAN_NO_TEXT."""
    part = read(scanned_report, "扫描件.pdf", replace(DEFAULT_LIMITS, ocr_timeout_s=0.0))
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
    from pipeline.sandbox import ParseSandbox

    msg = EmailMessage()
    msg["From"] = "it@py2h.example"
    msg["Subject"] = "自查报告"
    msg.set_content("见附件")
    msg.add_attachment(scanned_report, maintype="application", subtype="pdf", filename="扫描件.pdf")
    config = load_config(Path(__file__).resolve().parent.parent / "config.toml")
    box = ParseSandbox(timeout_s=120, memory_mb=config.parse_memory_mb)
    try:
        parsed = box.parse(msg.as_bytes(), DEFAULT_LIMITS)
    finally:
        box.close()
    (part,) = parsed.attachments
    assert part.kind is PartKind.DOCUMENT, part.problem
    assert UNIT in texts(part)
