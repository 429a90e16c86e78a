"""The bare baseline: what the libraries alone cost, with nothing stored and nothing matched.

`mailparser.parse_from_bytes`, then the text of every attachment with the same
document libraries the pipeline uses (python-docx paragraphs and tables, pypdf
pages, openpyxl cells, zip members recursively, attached messages parsed the same
way).  No limits, no sniffing beyond magic bytes, no hashing, no database.

A PDF without a text layer (a scan) is read as a bare script would read it: every page
rendered by pypdfium2 at the pipeline's `ocr_dpi` and read by RapidOCR with the pipeline's
engine settings (`ocr=False` measures the floor without it, as before issue 13).
The pipeline does the same OCR, but page-budgeted and stopping once a report is recognised.

The floor uses one core, as issue 16 defines it ("both cores are yours; the floor uses
one"): OCR runs on one onnxruntime thread.  Left at onnxruntime's default (a thread per
core) a page takes 0.72 s instead of 1.05 s here, for 1.28 instead of 1.05 CPU-seconds.
"""

from __future__ import annotations

import io
import logging
import zipfile

import docx
import mailparser
import openpyxl
import pypdf

_SCAN_CHARS = 20  # fewer characters than this in a PDF's text layer: a scan
_OCR_DPI = 150  # config.toml [limits] ocr_dpi

logging.getLogger("mailparser").setLevel(logging.ERROR)
logging.getLogger("pypdf").setLevel(logging.ERROR)


def _docx_chars(data: bytes) -> int:
    document = docx.Document(io.BytesIO(data))
    chars = sum(len(p.text) for p in document.paragraphs)
    for table in document.tables:
        for row in table.rows:
            chars += sum(len(cell.text) for cell in row.cells)
    return chars


def _pdf_chars(data: bytes, ocr: bool) -> int:
    reader = pypdf.PdfReader(io.BytesIO(data))
    chars = sum(len(page.extract_text() or "") for page in reader.pages)
    return chars if chars >= _SCAN_CHARS or not ocr else _ocr_chars(data)


def _ocr_chars(data: bytes) -> int:
    """Every page rendered and read by RapidOCR (the same engine settings as parsers/documents/ocr.py)."""
    import numpy
    import pypdfium2

    from parsers.documents.ocr import engine

    pdf = pypdfium2.PdfDocument(data)
    try:
        chars = 0
        for page in pdf:
            image = page.render(scale=_OCR_DPI / 72).to_pil()
            result, _ = engine(threads=1)(numpy.asarray(image))
            chars += sum(len(text) for _box, text, _score in result or ())
        return chars
    finally:
        pdf.close()


def _xlsx_chars(data: bytes) -> int:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        return sum(
            len(str(value))
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        )
    finally:
        book.close()


def extract_text_chars(data: bytes, depth: int = 0, *, ocr: bool = True) -> int:
    """Characters of text in one attachment (0 for what the libraries cannot read)."""
    try:
        if data[:5] == b"%PDF-":
            return _pdf_chars(data, ocr)
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
                if "word/document.xml" in names:
                    return _docx_chars(data)
                if "xl/workbook.xml" in names:
                    return _xlsx_chars(data)
                if depth >= 3:
                    return 0
                return sum(extract_text_chars(zf.read(i), depth + 1, ocr=ocr) for i in zf.infolist() if not i.is_dir())
    except Exception:  # noqa: BLE001 - the baseline skips what it cannot read, like a quick script would
        return 0
    return 0


def baseline_message(raw: bytes, *, ocr: bool = True) -> int:
    """Parse one mail with mail-parser and extract the text of every attachment; returns total chars.

    The stdlib's walk() also descends into attached messages (message/rfc822).
    """
    parsed = mailparser.parse_from_bytes(raw)
    chars = sum(len(t) for t in parsed.text_plain)
    for part in parsed.message.walk():
        if part.is_multipart() or (part.get_content_maintype() == "text" and not part.get_filename()):
            continue
        data = part.get_payload(decode=True)
        if data:
            chars += extract_text_chars(data, ocr=ocr)
    return chars


def run_baseline(raws: list[bytes], *, ocr: bool = True) -> int:
    return sum(baseline_message(raw, ocr=ocr) for raw in raws)
