"""Builds test documents in memory: docx, pdf, xlsx, zips (including hand-made hostile ones).

Nothing is checked in as a binary: every test input is generated here from text, so
what a test feeds the readers is visible in the test source.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from openpyxl import Workbook
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

REPORT_TITLE = "广州市番禺区第二人民医院电子健康码平台应用自查情况报告"
SECTIONS = ("一、基本情况", "二、整改措施及完成时限", "三、其他需要说明的事项")
SIGNATURE = "报送单位（盖章）：广州市番禺区第二人民医院"
HEADER_TEXT = "广州市番禺区第二人民医院文件"
FOOTER_TEXT = "番禺区卫生健康局监制"
TABLE_ROWS = (
    ("序号", "存在问题", "整改措施", "完成时限"),
    ("1", "电子健康码扫码终端不足", "增配扫码终端20台", "2024年6月30日"),
    ("2", "院内系统对接未完成", "完成HIS系统对接", "2024年7月31日"),
)
NESTED_CELL_TEXT = "嵌套表格内容"

# A docx package is plain XML in a zip: this is the smallest one Word and python-docx accept.
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="{main}"/>'
    "</Types>"
)
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_report() -> bytes:
    """The Chinese self-check report the commission receives, built with python-docx."""
    doc = docx.Document()
    doc.core_properties.title = REPORT_TITLE
    title = doc.add_paragraph(style="Title")
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    title.add_run(REPORT_TITLE).bold = True
    doc.add_paragraph("番禺区卫生健康局：")
    doc.add_heading(SECTIONS[0], level=1)
    doc.add_paragraph("我院已按要求完成电子健康码平台应用情况自查，现将有关情况报告如下。")
    doc.add_heading(SECTIONS[1], level=1)
    table = doc.add_table(rows=len(TABLE_ROWS), cols=len(TABLE_ROWS[0]))
    for r, row in enumerate(TABLE_ROWS):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    nested = table.cell(1, 2).add_table(rows=1, cols=2)
    nested.cell(0, 0).text = NESTED_CELL_TEXT
    nested.cell(0, 1).text = "附表"
    doc.add_heading(SECTIONS[2], level=1)
    doc.add_paragraph("无。")
    doc.add_paragraph(SIGNATURE).alignment = WD_ALIGN_PARAGRAPH.RIGHT
    doc.add_paragraph("2024年5月20日").alignment = WD_ALIGN_PARAGRAPH.RIGHT
    section = doc.sections[0]
    section.header.paragraphs[0].text = HEADER_TEXT
    section.footer.paragraphs[0].text = FOOTER_TEXT
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def minimal_docx(
    body_xml: str, *, doctype: str = "", main_type: str = DOCX_MAIN, extra: dict | None = None
) -> bytes:
    """A hand-written docx whose word/document.xml has `body_xml` (and an optional DOCTYPE)."""
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{doctype}'
        f'<w:document xmlns:w="{W_NS}"><w:body>{body_xml}</w:body></w:document>'
    )
    members = {
        "[Content_Types].xml": _CONTENT_TYPES.format(main=main_type).encode(),
        "_rels/.rels": _ROOT_RELS.encode(),
        "word/document.xml": document.encode(),
        **(extra or {}),
    }
    return zip_bytes(members)


def paragraph_xml(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def pdf_bytes(pages: list[list[str]], *, user_password: str | None = None, owner_password: str = "") -> bytes:
    """A PDF with Chinese text (CID font STSong-Light), one list of lines per page."""
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    encrypt = None
    if user_password is not None:
        from reportlab.lib.pdfencrypt import StandardEncryption

        encrypt = StandardEncryption(user_password, owner_password or "owner", strength=128)
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, encrypt=encrypt)
    pdf.setTitle("自查报告")
    for lines in pages:
        pdf.setFont("STSong-Light", 14)
        y = 780
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 24
        if not lines:
            pdf.rect(100, 100, 300, 300, fill=1)  # a "scan": marks but no text
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def xlsx_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An ordinary zip made by zipfile (non-ASCII names get the UTF-8 flag)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@dataclass
class RawEntry:
    """One member of a hand-assembled zip: the name is raw bytes, written exactly as given."""

    name: bytes
    data: bytes
    flags: int = 0  # 0x800 = UTF-8 name, 0x1 = encrypted
    deflate: bool = True
    declared_size: int | None = None  # lie about the uncompressed size when set
    extra: bytes = b""  # extra fields, written to both the local and the central header
    password: bytes | None = None  # encrypt with ZipCrypto (PKWARE traditional encryption)


def raw_zip(entries: list[RawEntry], *, directory: list[tuple[int, int]] | None = None) -> bytes:
    """Assemble a zip byte by byte, as Chinese Windows tools write them (no UTF-8 flag).

    `directory` lists central-directory records as (entry index, local-header offset
    delta); the default is one record per entry at its own offset.  Two records for
    one entry make the overlapping-entry zip bomb shape.
    """
    out = bytearray()
    written: list[tuple[int, int, int, int]] = []  # offset, method, crc, compressed size
    for entry in entries:
        payload = zlib.compress(entry.data)[2:-4] if entry.deflate else entry.data  # raw deflate
        method, crc = (8 if entry.deflate else 0), zlib.crc32(entry.data)
        if entry.password is not None:
            payload = zipcrypto(payload, entry.password, crc)
            entry.flags |= 0x1
        size = len(entry.data) if entry.declared_size is None else entry.declared_size
        written.append((len(out), method, crc, len(payload)))
        fields = (b"PK\x03\x04", 20, entry.flags, method, 0, 0x21, crc, len(payload), size)
        out += struct.pack("<4sHHHHHIII", *fields)
        out += struct.pack("<HH", len(entry.name), len(entry.extra)) + entry.name + entry.extra + payload
    records = directory if directory is not None else [(i, 0) for i in range(len(entries))]
    cd_start = len(out)
    for index, delta in records:
        entry = entries[index]
        offset, method, crc, csize = written[index]
        size = len(entry.data) if entry.declared_size is None else entry.declared_size
        fields = (b"PK\x01\x02", 20, 20, entry.flags, method, 0, 0x21, crc, csize, size)
        out += struct.pack("<4sHHHHHHIII", *fields)
        out += struct.pack("<HHHHHII", len(entry.name), len(entry.extra), 0, 0, 0, 0, offset + delta)
        out += entry.name + entry.extra
    cd_size = len(out) - cd_start
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(records), len(records), cd_size, cd_start, 0)
    return bytes(out)


def zipcrypto(payload: bytes, password: bytes, crc: int) -> bytes:
    """PKWARE traditional encryption [APPNOTE 6.1]: a 12-byte header ending in the CRC's high byte."""
    keys = [0x12345678, 0x23456789, 0x34567890]
    table = []
    for n in range(256):  # the CRC-32 table (polynomial 0xEDB88320)
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)

    def crc_step(crc_value: int, byte: int) -> int:
        return (crc_value >> 8) ^ table[(crc_value ^ byte) & 0xFF]

    def update(byte: int) -> None:
        keys[0] = crc_step(keys[0], byte)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = crc_step(keys[2], (keys[1] >> 24) & 0xFF)

    for byte in password:
        update(byte)
    out = bytearray()
    for plain in bytes(11) + bytes([(crc >> 24) & 0xFF]) + payload:
        temp = (keys[2] | 2) & 0xFFFF
        out.append(plain ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(plain)
    return bytes(out)


def unicode_path_extra(raw_name: bytes, name: str) -> bytes:
    """Info-ZIP Unicode Path extra field (0x7075), as 7-Zip writes beside a legacy-encoded name."""
    body = b"\x01" + struct.pack("<I", zlib.crc32(raw_name)) + name.encode()
    return struct.pack("<HH", 0x7075, len(body)) + body


def fake_ole(stream_name: str) -> bytes:
    """Just enough of an OLE2 compound file for sniffing: header, then a directory sector."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * (512 - 8)

    def entry(name: str) -> bytes:
        encoded = (name + "\x00").encode("utf-16-le")
        return encoded + b"\x00" * (64 - len(encoded)) + struct.pack("<H", len(encoded)) + b"\x00" * 62

    return header + entry("Root Entry") + entry(stream_name) + b"\x00" * 256
