"""The bare baseline: what the libraries alone cost, with nothing stored and nothing matched.

`mailparser.parse_from_bytes`, then the text of every attachment with the same
document libraries the pipeline uses (python-docx paragraphs and tables, pypdf
pages, openpyxl cells, zip members recursively, attached messages parsed the same
way).  No limits, no sniffing beyond magic bytes, no hashing, no database.
"""

from __future__ import annotations

import io
import logging
import zipfile

import docx
import mailparser
import openpyxl
import pypdf

logging.getLogger("mailparser").setLevel(logging.ERROR)
logging.getLogger("pypdf").setLevel(logging.ERROR)


def _docx_chars(data: bytes) -> int:
    document = docx.Document(io.BytesIO(data))
    chars = sum(len(p.text) for p in document.paragraphs)
    for table in document.tables:
        for row in table.rows:
            chars += sum(len(cell.text) for cell in row.cells)
    return chars


def _pdf_chars(data: bytes) -> int:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return sum(len(page.extract_text() or "") for page in reader.pages)


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


def extract_text_chars(data: bytes, depth: int = 0) -> int:
    """Characters of text in one attachment (0 for what the libraries cannot read)."""
    try:
        if data[:5] == b"%PDF-":
            return _pdf_chars(data)
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
                if "word/document.xml" in names:
                    return _docx_chars(data)
                if "xl/workbook.xml" in names:
                    return _xlsx_chars(data)
                if depth >= 3:
                    return 0
                return sum(extract_text_chars(zf.read(i), depth + 1) for i in zf.infolist() if not i.is_dir())
    except Exception:  # noqa: BLE001 - the baseline skips what it cannot read, like a quick script would
        return 0
    return 0


def baseline_message(raw: bytes) -> int:
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
            chars += extract_text_chars(data)
    return chars


def run_baseline(raws: list[bytes]) -> int:
    return sum(baseline_message(raw) for raw in raws)
