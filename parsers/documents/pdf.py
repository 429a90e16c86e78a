"""PDF to DocumentText with pypdf: one paragraph per text line, lines of one wrapped title or
paragraph joined by layout (parsers.documents.pdflayout), tagged page-N.

A PDF with (almost) no text layer is a scan: its pages are rendered with pypdfium2 and read by
OCR (parsers.documents.ocr); UNREADABLE SCAN_NO_TEXT only when that finds nothing either.
A PDF that only an owner password protects opens with the empty user password (pypdf
tries it); one that needs a user password is UNREADABLE "encrypted pdf".  A PDF whose
pages yield no text at all is a scan: UNREADABLE "pdf has no text layer (scan?)".
"""

from __future__ import annotations

import io
import logging

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from parsers.documents import ocr
from parsers.documents.base import Context, Outcome, TextBudget, short, unreadable
from parsers.documents.pdflayout import join_lines, page_lines
from parsers.types import DocumentText, Paragraph, PartKind, Problem, ProblemCode

# pypdf logs warnings that quote fragments of the document: no mail content may reach the logs.
logging.getLogger("pypdf").setLevel(logging.ERROR)
_SCAN_CHARS = 20  # fewer characters of text layer than this in the whole file: a scan, try OCR
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
    with_text: set[int] = set()
    for number in range(1, min(page_count, _MAX_PAGES) + 1):
        if budget.exhausted:
            break
        try:
            lines = join_lines(page_lines(pages[number - 1]))
        except FileNotDecryptedError:
            return unreadable(ProblemCode.ENCRYPTED_PDF)
        except Exception:  # one malformed content stream must not lose the other pages
            failed += 1
            continue
        where = f"page-{number}"
        if _has_text("".join(lines)):
            with_text.add(number)
        for line in lines:
            line = line.strip()
            if not line:
                continue
            taken = budget.take(line)
            if taken is None:
                break
            paragraphs.append(Paragraph(taken, where=where))
    if failed:
        warnings.append(Problem(ProblemCode.PARTIAL, f"text extraction failed on {failed} page(s)"))
    if sum(len(p.text) for p in paragraphs) < _SCAN_CHARS:
        # A scan (perhaps with a printed page number or a scanner's stamp): OCR its textless pages.
        textless = [n for n in range(1, min(page_count, _MAX_PAGES) + 1) if n not in with_text]
        scanned = _ocr(ctx, textless)
        if scanned is not None and scanned.paragraphs:
            document = DocumentText(paragraphs=tuple([*paragraphs, *scanned.paragraphs]), title=_title(reader))
            return Outcome(PartKind.DOCUMENT, document=document, warnings=warnings + scanned.warnings)
        if scanned is not None:
            warnings += [w for w in scanned.warnings if w.code is not ProblemCode.OCR_USED]
    if not paragraphs:
        return unreadable(ProblemCode.SCAN_NO_TEXT, "pdf has no text layer", warnings)
    document = DocumentText(paragraphs=tuple(paragraphs), title=_title(reader))
    return Outcome(PartKind.DOCUMENT, document=document, warnings=warnings + budget.warnings())


def _has_text(text: str) -> bool:
    """A page with any Chinese character or six other characters has a text layer (a bare page
    number or a scanner's mark does not)."""
    stripped = "".join(text.split())
    return len(stripped) >= 6 or any("\u4e00" <= ch <= "\u9fff" for ch in stripped)


def _ocr(ctx: Context, numbers: list[int]) -> ocr.OcrResult | None:
    """OCR of the given pages, rendered by pdfium (None when OCR or pdfium is not installed)."""
    if not numbers:
        return None
    if ctx.limits.defer_ocr:  # before pdfium is loaded: the text lane's parser processes have none
        return ocr.deferred(len(numbers))
    if not ocr.available():
        return None
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return None
    try:
        pdf = pdfium.PdfDocument(ctx.data)
    except Exception:  # pdfium refuses what pypdf repaired: no OCR, the pypdf verdict stands
        return None
    try:
        numbers = [n for n in numbers if n <= len(pdf)]

        def render(index: int):
            number = numbers[index - 1]
            page = pdf[number - 1]
            try:
                width, height = page.get_size()  # points
                scale = ctx.limits.ocr_dpi / 72
                pixels = width * height * scale * scale
                if pixels > ctx.limits.max_image_pixels:  # a poster-sized page: render smaller
                    scale *= (ctx.limits.max_image_pixels / pixels) ** 0.5
                if width * scale < 1 or height * scale < 1:
                    raise ocr.ImageRefused(Problem(ProblemCode.CORRUPT, f"page {number} has no size"))
                return page.render(scale=scale, grayscale=False).to_pil()
            except ocr.ImageRefused:
                raise
            except Exception as exc:  # a page pdfium cannot draw: skip it, say so
                raise ocr.ImageRefused(Problem(ProblemCode.PARTIAL, f"page {number} could not be rendered")) from exc
            finally:
                page.close()

        return ocr.ocr_pages(len(numbers), render, ctx.limits, ctx.ocr, where=lambda i: f"ocr-page-{numbers[i - 1]}")
    finally:
        pdf.close()


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        return str(meta.title or "").strip() if meta is not None else ""
    except Exception:  # a broken Info dictionary is not worth losing the text over
        return ""
