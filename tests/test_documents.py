"""Tests of the document-reading layer (parsers.documents): bytes in, typed Part out."""

from __future__ import annotations

import datetime as dt
import io
import os
import time
import zipfile

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.documents import decode_text, read_attachment, sniff_content_type
from parsers.types import (
    DEFAULT_LIMITS,
    EMPTY_ADDRESS,
    ParsedMessage,
    ParseLimits,
    Part,
    PartKind,
    Problem,
    ProblemCode,
)
from tests import docfactory as f

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def read(data: bytes, filename: str = "attachment", limits: ParseLimits = DEFAULT_LIMITS, **kw) -> Part:
    return read_attachment(
        data, filename=filename, declared_type=kw.pop("declared_type", ""), path="1", limits=limits, **kw
    )


def texts(part: Part) -> list[str]:
    assert part.document is not None, part.problem
    return [p.text for p in part.document.paragraphs]


def fake_message(data: bytes, depth: int) -> ParsedMessage:
    """Stands in for parsers.message (written elsewhere): records what it was given."""
    return ParsedMessage(
        message_id=f"depth={depth}",
        subject=data.split(b"\n", 1)[0].decode(),
        sender=EMPTY_ADDRESS,
        from_count=1,
        reply_to=(),
        to=(),
        cc=(),
        date=None,
        received_at=None,
        text_body="",
        html_body="",
        attachments=(),
        headers=(),
    )


# --- docx -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report() -> Part:
    return read(f.docx_report(), "自查报告.docx")


def test_report_docx_body_paragraphs_in_order_with_styles(report: Part) -> None:
    """GIVEN the Chinese self-check report docx
    WHEN it is read
    THEN the title, the three section headings and the signature line come out in body order
    with their style names."""
    assert report.kind is PartKind.DOCUMENT and report.problem is None
    assert report.content_type == DOCX
    body = [p for p in report.document.paragraphs if p.where == "body"]
    order = [p.text for p in body]
    wanted = [f.REPORT_TITLE, *f.SECTIONS, f.SIGNATURE]
    assert [t for t in order if t in wanted] == wanted
    styles = {p.text: p.style for p in body}
    assert styles[f.REPORT_TITLE] == "Title"
    assert all(styles[s] == "Heading 1" for s in f.SECTIONS)
    assert styles[f.SIGNATURE] == "Normal"


def test_report_docx_title_is_bold_centered_and_metadata_title_read(report: Part) -> None:
    """GIVEN a title paragraph with bold runs and centered alignment, and a core-properties title
    WHEN the report is read
    THEN the paragraph is bold and centered (headings bold through their style) and `title` is set."""
    by_text = {p.text: p for p in report.document.paragraphs}
    assert by_text[f.REPORT_TITLE].bold and by_text[f.REPORT_TITLE].centered
    assert by_text[f.SECTIONS[0]].bold  # Heading 1 is bold in the style, not the runs
    assert not by_text[f.SIGNATURE].bold and not by_text[f.SIGNATURE].centered
    assert report.document.title == f.REPORT_TITLE


def test_report_docx_tables_and_nested_cells_are_findable(report: Part) -> None:
    """GIVEN a rectification table with a table nested in one cell
    WHEN the report is read
    THEN the table rows are in `tables` and all cell text, nested included, is in `.text`."""
    (table,) = report.document.tables
    assert table[0] == f.TABLE_ROWS[0]
    assert table[2] == f.TABLE_ROWS[2]
    assert f.NESTED_CELL_TEXT in table[1][2]
    text = report.document.text
    assert "增配扫码终端20台" in text and f.NESTED_CELL_TEXT in text


def test_report_docx_header_and_footer_paragraphs(report: Part) -> None:
    """GIVEN a section header and footer
    WHEN the report is read
    THEN their text appears as paragraphs marked where="header"/"footer" after the body."""
    wheres = {p.text: p.where for p in report.document.paragraphs}
    assert wheres[f.HEADER_TEXT] == "header"
    assert wheres[f.FOOTER_TEXT] == "footer"
    assert report.document.paragraphs[-1].where == "footer"


def test_part_identity_fields() -> None:
    """GIVEN any attachment
    WHEN it is read
    THEN path, filename, size, sha256 of the bytes and the declared type are recorded as given."""
    import hashlib

    data = f.docx_report()
    part = read_attachment(
        data, filename="a.doc", declared_type="application/msword", path="2/3", limits=DEFAULT_LIMITS
    )
    assert (part.path, part.filename, part.size) == ("2/3", "a.doc", len(data))
    assert part.sha256 == hashlib.sha256(data).hexdigest()
    assert part.declared_type == "application/msword" and part.content_type == DOCX


def test_docx_content_controls_tracked_insertions_and_text_boxes() -> None:
    """GIVEN body text inside a content control, a tracked insertion (with a deletion) and a text box
    WHEN the docx is read
    THEN the visible text is read once and deleted text is not."""
    body = (
        "<w:sdt><w:sdtContent>" + f.paragraph_xml("控件内文字") + "</w:sdtContent></w:sdt>"
        '<w:p><w:ins w:id="1" w:author="a"><w:r><w:t>插入</w:t></w:r></w:ins>'
        '<w:del w:id="2" w:author="a"><w:r><w:delText>删除</w:delText></w:r></w:del></w:p>'
        "<w:p><w:r><w:t>锚点</w:t></w:r><w:r><w:pict><w:txbxContent>"
        + f.paragraph_xml("文本框内容")
        + "</w:txbxContent></w:pict></w:r></w:p>"
    )
    part = read(f.minimal_docx(body))
    assert texts(part) == ["控件内文字", "插入", "锚点", "文本框内容"]


def test_docm_is_flagged_and_read() -> None:
    """GIVEN a macro-enabled Word document (macroEnabled main type and vbaProject.bin)
    WHEN it is read
    THEN it is typed docm, its text is read, and a warning says macros were not run."""
    data = f.minimal_docx(
        f.paragraph_xml("宏文档正文"), main_type=f.DOCM_MAIN, extra={"word/vbaProject.bin": b"\x00" * 64}
    )
    part = read(data, "report.docx")
    assert part.content_type == "application/vnd.ms-word.document.macroEnabled.12"
    assert part.kind is PartKind.DOCUMENT and texts(part) == ["宏文档正文"]
    assert Problem(ProblemCode.MACRO) in part.warnings


def test_truncated_docx_is_unreadable_with_reason() -> None:
    """GIVEN a docx cut off half way (no central directory)
    WHEN it is read
    THEN it is still typed docx, UNREADABLE, and the reason says truncated / bad zip."""
    data = f.docx_report()
    part = read(data[: len(data) // 2], "report.docx")
    assert part.content_type == DOCX
    assert part.kind is PartKind.UNREADABLE
    assert part.problem.code is ProblemCode.TRUNCATED and "bad zip" in part.problem.detail


def test_xxe_docx_does_not_leak_file_content(tmp_path) -> None:
    """GIVEN a docx whose document.xml declares an external entity pointing at a local file
    WHEN it is read (and, for the record, when bare python-docx reads it)
    THEN the part is refused quickly and no text anywhere contains the file's content."""
    secret = tmp_path / "hostname"
    secret.write_text("SECRET-HOSTNAME-4711")
    doctype = f'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    data = f.minimal_docx(f.paragraph_xml("前 &xxe; 后"), doctype=doctype)
    started = time.perf_counter()
    part = read(data, "xxe.docx")
    assert time.perf_counter() - started < 2
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.UNSAFE_XML and "DTD" in part.problem.detail
    assert part.document is None
    # python-docx 1.2 parses with resolve_entities=False: the entity stays unexpanded.
    bare = docx.Document(io.BytesIO(data))
    assert "SECRET-HOSTNAME" not in "".join(p.text for p in bare.paragraphs)


def test_billion_laughs_docx_is_refused_quickly() -> None:
    """GIVEN a docx with nested internal entities expanding to a billion "lol"s
    WHEN it is read
    THEN it is refused before parsing, fast and without expanding anything."""
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    data = f.minimal_docx(
        f.paragraph_xml("&lol9;"), doctype=f'<!DOCTYPE w:document [<!ENTITY lol0 "lol">{entities}]>'
    )
    started = time.perf_counter()
    part = read(data, "lol.docx")
    assert time.perf_counter() - started < 2
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.UNSAFE_XML


def test_utf16_docx_part_is_read_but_utf16_dtd_refused() -> None:
    """GIVEN docx packages whose document.xml is UTF-16 (allowed), once with a DTD
    WHEN read
    THEN the plain one is read and the one with a DTD is refused: the guard is not UTF-8-only."""
    xml = (
        f'<?xml version="1.0" encoding="UTF-16"?><w:document xmlns:w="{f.W_NS}"><w:body>'
        f"{f.paragraph_xml('宽字符')}</w:body></w:document>"
    )
    with_dtd = xml.replace("?>", '?><!DOCTYPE w:document [<!ENTITY a "b">]>', 1)
    base = zipfile.ZipFile(io.BytesIO(f.minimal_docx("")))
    members = {name: base.read(name) for name in ("[Content_Types].xml", "_rels/.rels")}

    def package(text: str) -> bytes:
        return f.zip_bytes({**members, "word/document.xml": b"\xff\xfe" + text.encode("utf-16-le")})

    assert texts(read(package(xml))) == ["宽字符"]
    refused = read(package(with_dtd))
    assert refused.kind is PartKind.UNREADABLE and refused.problem.code is ProblemCode.UNSAFE_XML


def test_docx_xml_part_over_limit_is_refused() -> None:
    """GIVEN a docx whose document.xml is larger than max_document_xml_bytes
    WHEN it is read with that small limit
    THEN it is UNREADABLE naming the part, before python-docx parses it."""
    data = f.minimal_docx(f.paragraph_xml("大" * 50_000))
    part = read(data, limits=ParseLimits(max_document_xml_bytes=10_000))
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.TOO_LARGE and "word/document.xml" in part.problem.detail


def test_text_is_capped_with_warning() -> None:
    """GIVEN a document with more text than max_text_chars
    WHEN it is read
    THEN the text is cut at the limit and a warning says so."""
    body = "".join(f.paragraph_xml(f"第{i}段" + "字" * 50) for i in range(100))
    part = read(f.minimal_docx(body), limits=ParseLimits(max_text_chars=500))
    assert sum(len(t) for t in texts(part)) == 500
    assert any(w.code is ProblemCode.TEXT_TRUNCATED for w in part.warnings)


# --- pdf --------------------------------------------------------------------------------


def test_pdf_chinese_text_by_page() -> None:
    """GIVEN a two-page PDF with Chinese text
    WHEN it is read
    THEN each non-empty line is a paragraph tagged with its page."""
    data = f.pdf_bytes([[f.REPORT_TITLE, f.SECTIONS[0]], [f.SIGNATURE]])
    part = read(data, "报告.pdf")
    assert part.content_type == "application/pdf" and part.kind is PartKind.DOCUMENT
    assert [(p.text, p.where) for p in part.document.paragraphs] == [
        (f.REPORT_TITLE, "page-1"),
        (f.SECTIONS[0], "page-1"),
        (f.SIGNATURE, "page-2"),
    ]
    assert part.document.title == "自查报告"


def test_pdf_body_named_docx_is_sniffed_as_pdf() -> None:
    """GIVEN PDF bytes named .docx and declared as docx
    WHEN read
    THEN the content type comes from the bytes: application/pdf, and the text is read."""
    part = read(f.pdf_bytes([["番禺区"]]), "自查报告.docx", declared_type=DOCX)
    assert part.content_type == "application/pdf" and part.declared_type == DOCX
    assert texts(part) == ["番禺区"]


def test_pdf_without_text_layer_is_a_scan() -> None:
    """GIVEN a PDF whose page has only graphics
    WHEN it is read
    THEN it is UNREADABLE: no text layer (scan?)."""
    part = read(f.pdf_bytes([[]]))
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.SCAN_NO_TEXT


def test_pdf_encryption() -> None:
    """GIVEN one PDF needing a user password and one protected by an owner password only
    WHEN they are read
    THEN the first is UNREADABLE "encrypted pdf", the second opens with a warning."""
    locked = read(f.pdf_bytes([["机密"]], user_password="secret"))
    assert locked.kind is PartKind.UNREADABLE and locked.problem == Problem(ProblemCode.ENCRYPTED_PDF)
    owner_only = read(f.pdf_bytes([["公开"]], user_password=""))
    assert texts(owner_only) == ["公开"] and owner_only.warnings


# --- spreadsheets -----------------------------------------------------------------------


def test_xlsx_cells_as_tables() -> None:
    """GIVEN a workbook with Chinese text, numbers, a date and an empty row
    WHEN it is read
    THEN the sheet is a table of cell text (empty row skipped) preceded by its name."""
    rows = [
        ["单位", "终端数", "完成日期"],
        [None, None, None],
        ["番禺区第二人民医院", 20, dt.datetime(2024, 6, 30)],
        ["合计", 2.5],
    ]
    part = read(f.xlsx_bytes({"汇总表": rows}), "统计.xlsx")
    assert part.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert part.document.tables == (
        (("单位", "终端数", "完成日期"), ("番禺区第二人民医院", "20", "2024-06-30"), ("合计", "2.5")),
    )
    assert texts(part) == ["汇总表"]
    assert "番禺区第二人民医院\t20" in part.document.text


def test_xlsx_with_doctype_in_worksheet_is_refused() -> None:
    """GIVEN an xlsx whose worksheet xml (streamed by openpyxl through expat) declares an entity
    WHEN it is read
    THEN openpyxl never parses it: UNREADABLE with the DTD reason."""
    source = zipfile.ZipFile(io.BytesIO(f.xlsx_bytes({"S": [["文本"]]})))
    members = {n: source.read(n) for n in source.namelist()}
    doctype = b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    members["xl/worksheets/sheet1.xml"] = doctype + members["xl/worksheets/sheet1.xml"]
    part = read(f.zip_bytes(members), "x.xlsx")
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.UNSAFE_XML and "DTD" in part.problem.detail


# --- zip archives -----------------------------------------------------------------------


def test_zip_gbk_names_without_utf8_flag_decode_to_chinese() -> None:
    """GIVEN a zip written by a Chinese Windows tool: GBK member names, UTF-8 flag clear
    WHEN it is read
    THEN member names come out as Chinese, in order, with paths 1/1, 1/2, and are read."""
    names = ["广州市番禺区第二人民医院自查报告.docx", "附件/说明.txt"]
    data = f.raw_zip(
        [
            f.RawEntry(names[0].encode("gbk"), f.docx_report()),
            f.RawEntry(names[1].encode("gbk"), "说明".encode("gbk")),
        ]
    )
    assert not zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x800
    part = read(data, "报送材料.zip")
    assert part.kind is PartKind.ARCHIVE and part.content_type == "application/zip"
    assert [(c.path, c.filename) for c in part.children] == [("1/1", names[0]), ("1/2", names[1])]
    assert part.children[0].content_type == DOCX and part.children[0].declared_type == DOCX
    assert texts(part.children[1]) == ["说明"]


def test_zip_unicode_path_extra_field_wins() -> None:
    """GIVEN a member with a cp437-mangled legacy name plus an Info-ZIP Unicode Path extra field
    WHEN read
    THEN the UTF-8 name from the extra field is used."""
    raw = "报告.txt".encode("big5", "replace")  # any legacy bytes: the extra field is authoritative
    entry = f.RawEntry(raw, b"x", extra=f.unicode_path_extra(raw, "番禺区报告.txt"))
    (child,) = read(f.raw_zip([entry])).children
    assert child.filename == "番禺区报告.txt"


def test_zip_utf8_flagged_names() -> None:
    """GIVEN a zip with UTF-8-flagged Chinese names (as zipfile writes them)
    WHEN it is read
    THEN the names decode as UTF-8 and directories are skipped."""
    part = read(f.zip_bytes({"番禺区/": b"", "番禺区/报告.txt": "内容".encode()}))
    assert [c.filename for c in part.children] == ["番禺区/报告.txt"]
    assert texts(part.children[0]) == ["内容"]


def test_nested_zip_becomes_nested_children() -> None:
    """GIVEN a zip holding a zip holding a docx
    WHEN it is read
    THEN the inner docx is the child 1/1/1 with its text."""
    data = f.zip_bytes({"区县.zip": f.zip_bytes({"报告.docx": f.docx_report()})})
    part = read(data)
    inner = part.children[0].children[0]
    assert inner.path == "1/1/1" and inner.filename == "报告.docx"
    assert f.REPORT_TITLE in texts(inner)


def test_zip_depth_limit() -> None:
    """GIVEN zips nested four deep and max_archive_depth=2
    WHEN read
    THEN the zip at depth 2 is an UNREADABLE child naming the nesting."""
    data = f.zip_bytes({"a.txt": b"deep"})
    for level in range(3):
        data = f.zip_bytes({f"level{level}.zip": data})
    part = read(data, limits=ParseLimits(max_archive_depth=2))
    deepest = part.children[0].children[0]
    assert deepest.kind is PartKind.UNREADABLE and deepest.problem.code is ProblemCode.ARCHIVE_TOO_DEEP


def test_zip_bomb_high_ratio_rejected() -> None:
    """GIVEN a zip with 5 MB of zeros that compress about 1000:1
    WHEN read with max_compression_ratio=100
    THEN it is refused from the central directory, naming the ratio."""
    part = read(f.zip_bytes({"zeros.bin": b"\0" * 5_000_000}), limits=ParseLimits(max_compression_ratio=100))
    assert (
        part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.ZIP_BOMB and "ratio" in part.problem.detail
    )
    assert part.children == ()


def test_zip_bomb_declared_size_rejected_before_decompression() -> None:
    """GIVEN a zip declaring a 3.1 GB member whose data is not even valid deflate
    WHEN read
    THEN it is refused for its declared size (a decompression attempt would fail differently)."""
    data = f.raw_zip(
        [f.RawEntry(b"big.bin", b"not deflate data", deflate=False, declared_size=3_100_000_000)]
    )
    part = read(data)
    assert part.problem == Problem(ProblemCode.ZIP_BOMB, "declared expanded size 3.1 GB exceeds limit")


def test_zip_total_expanded_limit() -> None:
    """GIVEN members that together exceed max_expanded_bytes
    WHEN read with a small limit
    THEN the archive is refused."""
    data = f.zip_bytes({"a.txt": b"a" * 600_000, "b.txt": b"b" * 600_000})
    part = read(data, limits=ParseLimits(max_expanded_bytes=1_000_000))
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.ZIP_BOMB and "declared expanded size" in part.problem.detail


def test_zip_member_count_limit() -> None:
    """GIVEN a zip with more members than max_archive_members
    WHEN read
    THEN it is refused before reading any member."""
    part = read(
        f.zip_bytes({f"{i}.txt": b"x" for i in range(12)}), limits=ParseLimits(max_archive_members=10)
    )
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.ARCHIVE_TOO_MANY and "12 members" in part.problem.detail


@pytest.mark.parametrize(
    "directory",
    [[(0, 0), (0, 0)], [(0, 0), (1, -8)]],
    ids=["same-local-header", "data-overlaps-next"],
)
def test_overlapping_entries_rejected(directory) -> None:
    """GIVEN a hand-built zip whose central directory points two entries at one local header,
    or an entry into the previous member's data
    WHEN read
    THEN it is refused as an overlapping-entry zip bomb."""
    entries = [f.RawEntry(b"a.txt", b"kernel " * 200), f.RawEntry(b"b.txt", b"second")]
    part = read(f.raw_zip(entries, directory=directory))
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.ZIP_BOMB and "overlapping entries" in part.problem.detail


def test_encrypted_member_is_unreadable_child() -> None:
    """GIVEN a zip with one encrypted member and one plain member
    WHEN read
    THEN the encrypted one is an UNREADABLE child "encrypted zip member", the other is read."""
    entries = [
        f.RawEntry(b"secret.docx", b"\x8f\x12ciphertext", flags=0x1, deflate=False),
        f.RawEntry(b"ok.txt", b"fine"),
    ]
    part = read(f.raw_zip(entries))
    secret, ok = part.children
    assert secret.kind is PartKind.UNREADABLE and secret.problem == Problem(ProblemCode.ENCRYPTED_ZIP, "no password in the mail")
    assert len(secret.sha256) == 64
    assert texts(ok) == ["fine"]


def test_member_lying_about_its_size_is_corrupt_not_expanded() -> None:
    """GIVEN a member whose real data is far larger than its declared size
    WHEN read
    THEN no more than the declared size is produced: the member is an UNREADABLE corrupt child."""
    data = f.raw_zip([f.RawEntry(b"liar.txt", b"A" * 200_000, declared_size=10)])
    (child,) = read(data).children
    assert child.kind is PartKind.UNREADABLE and child.problem.code is ProblemCode.CORRUPT and "zip member" in child.problem.detail


def test_zip_slip_names_are_only_names(tmp_path, monkeypatch) -> None:
    """GIVEN members named ../../x, /absolute and C:/ paths
    WHEN read from a scratch working directory
    THEN the names are kept (with a warning) and nothing is written to disk."""
    monkeypatch.chdir(tmp_path)
    names = ["../../zip_slip_probe.txt", "/tmp/zip_slip_abs_probe.txt", "C:/Windows/probe.txt"]
    part = read(f.zip_bytes({name: b"payload" for name in names}))
    assert [c.filename for c in part.children] == names
    assert all(c.warnings[0].code is ProblemCode.UNSAFE_NAME for c in part.children)
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists("/tmp/zip_slip_abs_probe.txt")
    assert not (tmp_path.parent.parent / "zip_slip_probe.txt").exists()


# --- unreadable and sniffed types -------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 64, "application/vnd.rar", ProblemCode.ARCHIVE_UNSUPPORTED),
        (b"7z\xbc\xaf\x27\x1c" + b"\x00" * 64, "application/x-7z-compressed", ProblemCode.ARCHIVE_UNSUPPORTED),
        (f.fake_ole("WordDocument"), "application/msword", ProblemCode.CORRUPT),
        (f.fake_ole("Contents"), "application/x-ole-storage", ProblemCode.CORRUPT),
        (f.fake_ole("EncryptedPackage"), "application/x-ole-encrypted-office", ProblemCode.ENCRYPTED_OFFICE),
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120, "application/x-executable", ProblemCode.EXECUTABLE),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "application/x-executable", ProblemCode.EXECUTABLE),
        (PNG, "image/png", ProblemCode.CORRUPT),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", ProblemCode.CORRUPT),
        (bytes(range(256)) * 4, "application/octet-stream", ProblemCode.UNSUPPORTED),
        (b"", "application/x-empty", ProblemCode.EMPTY),
    ],
    ids=[
        "rar",
        "7z",
        "doc",
        "ole",
        "encrypted-ooxml",
        "exe",
        "elf",
        "png",
        "jpeg",
        "garbage",
        "empty",
    ],
)
def test_unreadable_types(data: bytes, content_type: str, reason: str) -> None:
    """GIVEN bytes of a type we recognise but cannot read (under a misleading .docx name)
    WHEN read
    THEN the part is UNREADABLE with the sniffed type and a reason naming it."""
    part = read(data, "报告.docx", declared_type=DOCX)
    assert part.kind is PartKind.UNREADABLE
    assert part.content_type == content_type
    assert part.problem.code is reason
    assert sniff_content_type(data, "报告.docx") == content_type


def test_fake_xls_is_tried_with_xlrd() -> None:
    """GIVEN an OLE2 file with a Workbook stream that is not really a workbook
    WHEN read
    THEN it is typed xls and UNREADABLE with xlrd's complaint."""
    part = read(f.fake_ole("Workbook"))
    assert part.content_type == "application/vnd.ms-excel"
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.CORRUPT and "xls could not be read" in part.problem.detail


# --- text, html, messages ---------------------------------------------------------------


def test_unlabelled_gbk_text_is_decoded() -> None:
    """GIVEN a plain-text attachment in GBK with no charset label
    WHEN read
    THEN it is text/plain decoded as Chinese."""
    part = read("番禺区卫生健康局：\r\n  现将自查情况报告如下。\r\n".encode("gbk"), "说明.txt")
    assert part.content_type == "text/plain"
    assert texts(part) == ["番禺区卫生健康局：", "现将自查情况报告如下。"]


def test_html_rendering_drops_scripts_and_reads_tables() -> None:
    """GIVEN a gb2312-labelled HTML page (really GBK) with a script, a heading and a table
    WHEN read
    THEN scripts are dropped, text is decoded, the heading styled and the table in `tables`."""
    html = (
        '<html><head><meta charset="gb2312"><title>自查报告</title><script>var x="不要";</script>'
        "<style>p{}</style></head><body><h1>一、基本情况</h1><p>镕基医院&amp;番禺</p>"
        "<table><tr><td>序号</td><td>问题</td></tr><tr><td>1</td><td>终端不足</td></tr></table></body></html>"
    ).encode("gbk")
    part = read(html, "report.doc")
    assert part.content_type == "text/html"
    assert texts(part) == ["一、基本情况", "镕基医院&番禺"]
    assert part.document.paragraphs[0].style == "Heading 1"
    assert part.document.tables == ((("序号", "问题"), ("1", "终端不足")),)
    assert part.document.title == "自查报告"
    assert "不要" not in part.document.text


def test_decode_text_charset_rules() -> None:
    """GIVEN GB-labelled bytes using a GBK-only character, mislabelled UTF-8, and a BOM
    WHEN decode_text runs
    THEN GB labels decode as gb18030, a wrong label falls back with a warning, BOMs win."""
    assert decode_text("朱镕基".encode("gbk"), "gb2312") == ("朱镕基", [])
    text, warnings = decode_text("广州".encode(), "gb2312")
    assert text == "广州" and warnings
    assert decode_text(b"\xef\xbb\xbf\xe5\xb9\xbf", "gbk") == ("广", [])


def test_attached_message_is_parsed_one_level_deeper() -> None:
    """GIVEN raw e-mail bytes as an attachment and a message parser
    WHEN read at depth 1
    THEN the part is a MESSAGE parsed at depth 2; without a parser it is a MESSAGE with none."""
    raw = b"Return-Path: <a@b.cn>\nFrom: a@b.cn\nSubject: test\n\nbody\n"
    part = read(raw, "fwd.eml", depth=1, parse_message=fake_message)
    assert part.content_type == "message/rfc822" and part.kind is PartKind.MESSAGE
    assert part.message.message_id == "depth=2"
    bare = read(raw)
    assert bare.kind is PartKind.MESSAGE and bare.message is None


def test_attached_messages_nested_too_deeply() -> None:
    """GIVEN an attached message at the message depth limit
    WHEN read
    THEN it is UNREADABLE and the parser is not called."""
    raw = b"From: a@b.cn\nTo: c@d.cn\n\nhi\n"
    part = read(raw, depth=5, parse_message=fake_message)
    assert part.kind is PartKind.UNREADABLE and part.problem.code is ProblemCode.MESSAGE_TOO_DEEP


def test_message_in_zip_reaches_the_parser() -> None:
    """GIVEN a zip containing an .eml
    WHEN read with a message parser
    THEN the member is a MESSAGE child."""
    data = f.zip_bytes({"转发.eml": b"Received: from x\nFrom: a@b.cn\n\nhi\n"})
    (child,) = read(data, parse_message=fake_message).children
    assert child.kind is PartKind.MESSAGE and child.message.message_id == "depth=1"


# --- never raises -----------------------------------------------------------------------

_PREFIXES = [
    b"",
    b"PK\x03\x04",
    b"%PDF-1.4\n",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"From: a@b.cn\nTo: c@d.cn\n\n",
    b"<html><body>",
    b"\xef\xbb\xbf",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(_PREFIXES), body=st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(prefix: bytes, body: bytes) -> None:
    """GIVEN arbitrary bytes, some starting with a real format's magic number
    WHEN read
    THEN a Part with a sniffed type comes back, never an exception."""
    part = read(prefix + body, parse_message=fake_message)
    assert isinstance(part, Part) and part.content_type
    assert part.size == len(prefix + body)


_DOCX = f.minimal_docx(f.paragraph_xml("正文") * 5)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.tuples(st.integers(0, len(_DOCX) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, len(_DOCX))),
)
def test_mutated_docx_never_raises(edits, cut) -> None:
    """GIVEN a valid docx with bytes overwritten and possibly truncated
    WHEN read
    THEN read_attachment returns a Part (readable, or unreadable with a reason)."""
    data = bytearray(_DOCX)
    for pos, value in edits:
        data[pos] = value
    data = bytes(data[:cut] if cut is not None else data)
    part = read(data, "x.docx")
    assert isinstance(part, Part)
    assert (
        part.kind in (PartKind.DOCUMENT, PartKind.ARCHIVE) or part.problem
    )  # a mangled name may leave "a zip"
