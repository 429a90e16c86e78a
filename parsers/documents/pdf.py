"""PDF to DocumentText with pypdf: one paragraph per non-empty text line, tagged page-N.

A PDF that only an owner password protects opens with the empty user password (pypdf
tries it); one that needs a user password is UNREADABLE "encrypted pdf".  A PDF whose
pages yield no text at all is a scan: UNREADABLE "pdf has no text layer (scan?)".
"""

from __future__ import annotations

import io
import logging

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from parsers.documents.base import Context, Outcome, TextBudget, short, unreadable
from parsers.types import DocumentText, Paragraph, PartKind, Problem, ProblemCode

# pypdf logs warnings that quote fragments of the document: no mail content may reach the logs.
logging.getLogger("pypdf").setLevel(logging.ERROR)
_MAX_PAGES = 2000  # bounds the work on hostile page trees; real reports are a few pages


def read_pdf(ctx: Context) -> Outcome:
    """Kind DOCUMENT with per-page lines; UNREADABLE when encrypted, textless or broken."""
    try:
        return _read_pdf(ctx)
    except Exception as exc:  # PdfReadError, PdfStreamError and pypdf's odd failures on damaged files
        return unreadable(ProblemCode.CORRUPT, f"pdf: {short(exc)}")


def _read_pdf(ctx: Context) -> Outcome:
    reader = PdfReader(io.BytesIO(ctx.data), strict=False)
    warnings: list[Problem] = []
    if reader.is_encrypted:
        try:
            if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                return unreadable(ProblemCode.ENCRYPTED_PDF)
        except DependencyError:
            return unreadable(ProblemCode.ENCRYPTED_PDF, "AES: no crypto library installed")
        warnings.append(Problem(ProblemCode.WEAK_ENCRYPTION, "pdf opened with the empty user password"))
    budget = TextBudget(ctx.limits.max_text_chars)
    paragraphs: list[Paragraph] = []
    try:
        pages = reader.pages
        page_count = len(pages)
    except FileNotDecryptedError:
        return unreadable(ProblemCode.ENCRYPTED_PDF)
    if page_count > _MAX_PAGES:
        warnings.append(Problem(ProblemCode.PAGES_CUT, f"first {_MAX_PAGES} of {page_count} pages read"))
    failed = 0
    for number in range(1, min(page_count, _MAX_PAGES) + 1):
        if budget.exhausted:
            break
        try:
            text = pages[number - 1].extract_text() or ""
        except FileNotDecryptedError:
            return unreadable(ProblemCode.ENCRYPTED_PDF)
        except Exception:  # one malformed content stream must not lose the other pages
            failed += 1
            continue
        where = f"page-{number}"
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            line = budget.take(line)
            if line is None:
                break
            paragraphs.append(Paragraph(line, where=where))
    if failed:
        warnings.append(Problem(ProblemCode.PARTIAL, f"text extraction failed on {failed} page(s)"))
    if not paragraphs:
        return unreadable(ProblemCode.SCAN_NO_TEXT, "pdf has no text layer", warnings)
    document = DocumentText(paragraphs=tuple(paragraphs), title=_title(reader))
    return Outcome(PartKind.DOCUMENT, document=document, warnings=warnings + budget.warnings())


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        return str(meta.title or "").strip() if meta is not None else ""
    except Exception:  # a broken Info dictionary is not worth losing the text over
        return ""
