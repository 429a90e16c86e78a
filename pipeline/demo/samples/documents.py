"""Report documents and their containers as bytes: docx, PDF, xlsx, zip, stand-ins.

* `docx_report` / `pdf_report` render a `ReportSpec` (python-docx, reportlab with
  the built-in ``STSong-Light`` CID font, so no font file is needed);
* `summary_xlsx` / `summary_docx` build a district's summary table (every
  institution of the district with 已报送/未报送: a listing, not a submission);
* `zip_bundle` packs files with GBK member names and no UTF-8 flag, as the
  Windows "send to compressed folder" of a Chinese PC does, or with UTF-8 names;
* `legacy_doc`, `rar_archive`, `scan_pdf` are unreadable stand-ins: right magic
  numbers, no extractable text.

Output is deterministic: zip timestamps, document metadata and PDF ids are
fixed from the `saved_at` argument instead of the wall clock.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from pipeline.demo.samples.wording import ReportSpec

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_TYPE = "application/pdf"
ZIP_TYPE = "application/x-zip-compressed"  # what Windows clients declare for .zip
DOC_TYPE = "application/msword"
RAR_TYPE = "application/octet-stream"

OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
RAR_MAGIC = b"Rar!\x1a\x07\x00"
_PDF_FONT = "STSong-Light"
_BODY_FONT = "仿宋_GB2312"
_KEPT_STYLES = {
    "Normal",
    "Title",
    "Heading 1",
    "Heading 2",
    "Table Grid",
    "Default Paragraph Font",
    "Normal Table",
    "No List",
}


# --------------------------------------------------------------------------- zip plumbing


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second // 2 * 2)


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _restamp_zip(data: bytes, moment: datetime) -> bytes:
    """The same zip with every member's timestamp set to `moment`.

    python-docx and openpyxl stamp zip members with the wall clock, and openpyxl
    also rewrites the core-properties ``modified`` date on save; both would make
    the bytes differ from run to run.
    """
    iso = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode("ascii")
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            stamped = zipfile.ZipInfo(info.filename, date_time=_zip_time(moment))
            stamped.compress_type = zipfile.ZIP_DEFLATED
            content = source.read(info)
            if info.filename == "docProps/core.xml":
                content = _MODIFIED.sub(rb"\g<1>" + iso + rb"\g<2>", content)
            target.writestr(stamped, content)
    return output.getvalue()


class _GbkZipInfo(zipfile.ZipInfo):
    """A member whose name is stored as GBK bytes with the UTF-8 flag (bit 11) clear.

    zipfile always writes non-ASCII names as UTF-8 with the flag set; Chinese
    Windows Explorer and WinRAR write the ANSI code page (GBK) and no flag, so
    a reader that trusts the spec decodes them as CP437 mojibake.
    """

    def _encodeFilenameFlags(self):  # noqa: N802 - overrides zipfile's private hook
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def zip_bundle(members: list[tuple[str, bytes]], *, saved_at: datetime, gbk_names: bool = True) -> bytes:
    """A zip of `members` (name, data); names may contain folders ("番禺区/x.docx")."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info_class = _GbkZipInfo if gbk_names else zipfile.ZipInfo
            info = info_class(name, date_time=_zip_time(saved_at))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return output.getvalue()


# --------------------------------------------------------------------------- docx


@lru_cache(maxsize=1)
def _slim_template() -> bytes:
    """python-docx's default template without its ~160 unused styles.

    Loading and saving the full template costs ~15 ms per document; the trimmed
    one ~3 ms, which keeps a whole corpus within a couple of seconds.
    """
    document = Document()
    for rel_id, rel in list(document.part.rels.items()):
        if rel.reltype.endswith("/stylesWithEffects") or "customXml" in rel.reltype:
            del document.part.rels[rel_id]
    package = document.part.package
    for rel_id, rel in list(package.rels.items()):
        if rel.reltype.endswith("/thumbnail"):
            del package.rels[rel_id]
    styles = document.styles.element
    for element in list(styles):
        if element.tag == qn("w:latentStyles"):
            styles.remove(element)
        elif element.tag == qn("w:style"):
            name_element = element.find(qn("w:name"))
            name = name_element.get(qn("w:val")) if name_element is not None else ""
            if name not in _KEPT_STYLES and name.title() not in _KEPT_STYLES:
                styles.remove(element)
    # Body text in 仿宋_GB2312 三号 (16 pt) as government documents are typed; set once on
    # the Normal style so each run does not have to carry it (per-run fonts are slow).
    normal = document.styles["Normal"]
    normal.font.name = _BODY_FONT
    normal.font.size = Pt(16)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), _BODY_FONT)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _new_document(author: str, title: str, saved_at: datetime):
    document = Document(io.BytesIO(_slim_template()))
    properties = document.core_properties
    properties.author = author
    properties.last_modified_by = author
    properties.title = title
    properties.revision = 1
    naive_utc = saved_at.astimezone(UTC).replace(tzinfo=None)
    properties.created = naive_utc
    properties.modified = naive_utc
    properties.last_printed = naive_utc
    return document


def _run(paragraph, text: str, *, bold: bool = False, size: float | None = None, font: str | None = None):
    """A run of `text`; formatting beyond the Normal style only where asked for."""
    run = paragraph.add_run(text)
    if bold:
        run.bold = True
    if size is not None:
        run.font.size = Pt(size)
    if font is not None:
        # Word picks the CJK font from w:eastAsia; font.name alone sets only the Latin one.
        run.font.name = font
        run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), font)
    return run


def _save_docx(document, saved_at: datetime) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return _restamp_zip(buffer.getvalue(), saved_at)


def docx_report(spec: ReportSpec, *, saved_at: datetime) -> bytes:
    """A report as a Word document, laid out the way government offices type them."""
    document = _new_document(spec.author, spec.core_title, saved_at)
    if spec.title:
        if spec.title_style == "title":
            document.add_paragraph(spec.title, style="Title")
        else:
            paragraph = document.add_paragraph()
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            _run(paragraph, spec.title, bold=True, size=22, font="方正小标宋简体")
    if spec.salutation:
        _run(document.add_paragraph(), spec.salutation)
    for text in spec.preamble:
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.first_line_indent = Pt(32)
        _run(paragraph, text)
    for section in spec.sections:
        if spec.heading_style == "heading":
            document.add_paragraph(section.heading, style="Heading 1")
        else:
            _run(document.add_paragraph(), section.heading, bold=spec.heading_style == "bold", font="黑体")
        for text in section.paragraphs:
            paragraph = document.add_paragraph()
            paragraph.paragraph_format.first_line_indent = Pt(32)
            _run(paragraph, text)
    document.add_paragraph()
    for line in spec.signature:
        paragraph = document.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _run(paragraph, line)
    return _save_docx(document, saved_at)


def summary_docx(
    title: str, header_row: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, author: str, saved_at: datetime
) -> bytes:
    """A district summary as a Word table (some bureaus send the table in Word)."""
    document = _new_document(author, title, saved_at)
    paragraph = document.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run(paragraph, title, bold=True, size=18, font="方正小标宋简体")
    table = document.add_table(rows=1 + len(rows), cols=len(header_row))
    table.style = "Table Grid"
    # Row by row: table.cell(r, c) rescans the whole grid on every call.
    for table_row, values in zip(table.rows, [header_row, *rows], strict=True):
        for cell, text in zip(table_row.cells, values, strict=True):
            cell.text = text
    return _save_docx(document, saved_at)


# --------------------------------------------------------------------------- xlsx


def summary_xlsx(
    title: str, header_row: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, author: str, saved_at: datetime
) -> bytes:
    """A district summary workbook: a merged title row, a header, one row per institution."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "汇总表"
    sheet.append([title])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header_row))
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A1"].alignment = Alignment(horizontal="center")
    sheet.append(list(header_row))
    for row in rows:
        sheet.append(list(row))
    sheet.column_dimensions["B"].width = 42
    naive = saved_at.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.creator = author
    workbook.properties.lastModifiedBy = author
    workbook.properties.created = naive
    workbook.properties.modified = naive
    buffer = io.BytesIO()
    workbook.save(buffer)
    return _restamp_zip(buffer.getvalue(), saved_at)


# --------------------------------------------------------------------------- pdf


@lru_cache(maxsize=1)
def _register_pdf_font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(_PDF_FONT))
    return _PDF_FONT


@lru_cache(maxsize=4096)
def _char_width(char: str, font: str, size: float) -> float:
    return pdfmetrics.stringWidth(char, font, size)


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of at most `width` points; CJK text breaks anywhere, as Word does."""
    lines: list[str] = []
    current, used = "", 0.0
    for char in text:
        advance = _char_width(char, font, size)
        if current and used + advance > width:
            lines.append(current)
            current, used = "", 0.0
        current += char
        used += advance
    lines.append(current)
    return lines


def _new_canvas(buffer: io.BytesIO, spec_title: str, author: str) -> canvas.Canvas:
    # invariant=1 fixes the creation date and document id, so bytes repeat per seed.
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    pdf.setTitle(spec_title)
    pdf.setAuthor(author)
    pdf.setCreator("Microsoft Word 2016")
    return pdf


def pdf_report(spec: ReportSpec) -> bytes:
    """A report as a text PDF ("导出为PDF" of the Word file)."""
    font = _register_pdf_font()
    buffer = io.BytesIO()
    pdf = _new_canvas(buffer, spec.core_title, spec.author)
    page_width, page_height = A4
    margin, size = 72.0, 12.0
    cursor = page_height - margin

    def emit(text: str, *, align: str = "left", font_size: float = size, indent: float = 0.0) -> None:
        nonlocal cursor
        for line in _wrap(text, font, font_size, page_width - 2 * margin - indent):
            if cursor < margin:
                pdf.showPage()
                cursor = page_height - margin
            pdf.setFont(font, font_size)
            if align == "center":
                pdf.drawCentredString(page_width / 2, cursor, line)
            elif align == "right":
                pdf.drawRightString(page_width - margin, cursor, line)
            else:
                pdf.drawString(margin + indent, cursor, line)
            cursor -= font_size * 1.7
            indent = 0.0

    if spec.title:
        emit(spec.title, align="center", font_size=16)
        cursor -= 8
    if spec.salutation:
        emit(spec.salutation)
    for text in spec.preamble:
        emit(text, indent=24)
    for section in spec.sections:
        emit(section.heading)
        for text in section.paragraphs:
            emit(text, indent=24)
    cursor -= 12
    for line in spec.signature:
        emit(line, align="right")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def scan_pdf(rng: random.Random, pages: int = 1) -> bytes:
    """A "scanned" report: grey bars where lines of text would be and a red seal,
    but no text layer at all, so only the file name or the mail can identify it."""
    buffer = io.BytesIO()
    pdf = _new_canvas(buffer, "", "")
    pdf.setCreator("HP Scan")
    page_width, page_height = A4
    for _ in range(pages):
        pdf.setFillGray(0.97)
        pdf.rect(0, 0, page_width, page_height, stroke=0, fill=1)
        pdf.setFillGray(0.25)
        pdf.rect(150, page_height - 110, page_width - 300, 14, stroke=0, fill=1)  # title
        cursor = page_height - 160
        while cursor > 160:
            indent = 24 if rng.random() < 0.25 else 0
            pdf.rect(72 + indent, cursor, rng.uniform(300, page_width - 144 - indent), 7, stroke=0, fill=1)
            cursor -= rng.choice((18, 18, 18, 30))
        pdf.setStrokeColorRGB(0.85, 0.1, 0.1)
        pdf.setLineWidth(3)
        pdf.circle(page_width - 160, 150, 52, stroke=1, fill=0)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


# --------------------------------------------------------------------------- stand-ins


def legacy_doc(rng: random.Random, size: int = 24_576) -> bytes:
    """An old Word 97-2003 .doc stand-in: OLE2 compound-file header, then noise."""
    header = OLE2_MAGIC + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00\x06\x00"
    return header + rng.randbytes(size - len(header))


def rar_archive(rng: random.Random, size: int = 18_000) -> bytes:
    """A RAR 4 archive stand-in: signature, then noise (nothing the pipeline can open)."""
    return RAR_MAGIC + rng.randbytes(size - len(RAR_MAGIC))
