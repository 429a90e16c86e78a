"""The document-reading layer: attachment bytes in, a typed `Part` out.

Pure: no disk writes, no network.  `read_attachment` sniffs the content type from the
bytes, dispatches to the reader registered for it (READERS) or records why the type
cannot be read (UNREADABLE_REASONS), and never raises for any input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from parsers.documents import sniff as ct  # the module; not re-bound below, so imports of it work
from parsers.documents.archive import check_zip, read_tnef, read_zip
from parsers.documents.base import Budget, Context, OcrBudget, Outcome, human_size, short, unreadable
from parsers.documents.docx import read_docx
from parsers.documents.images import read_image
from parsers.documents.ofd import read_ofd
from parsers.documents.ole import read_doc, read_ole
from parsers.documents.pdf import read_pdf
from parsers.documents.rtf import read_rtf
from parsers.documents.sheets import read_xls, read_xlsx
from parsers.documents.text import decode_text, normalize_charset, read_html, read_text
from parsers.types import ParsedMessage, ParseLimits, Part, PartKind, Problem, ProblemCode

Reader = Callable[[Context], Outcome]


def _read_message(ctx: Context) -> Outcome:
    """Kind MESSAGE: hand an attached e-mail to the mail parser, one level deeper."""
    if ctx.depth >= ctx.limits.max_message_depth:
        return unreadable(ProblemCode.MESSAGE_TOO_DEEP, f"more than {ctx.limits.max_message_depth} levels")
    if ctx.parse_message is None:
        return Outcome(PartKind.MESSAGE)
    try:
        message = ctx.parse_message(ctx.data, ctx.depth + 1)
    except Exception as exc:  # the mail parser should not raise either, but one bug must not lose the part
        return Outcome(PartKind.MESSAGE, problem=Problem(ProblemCode.MESSAGE_UNPARSEABLE, short(exc)))
    return Outcome(PartKind.MESSAGE, message=message)


READERS: dict[str, Reader] = {
    ct.DOCX: read_docx,
    ct.DOCM: read_docx,
    ct.DOTX: read_docx,
    ct.DOTM: read_docx,
    ct.PDF: read_pdf,
    ct.XLSX: read_xlsx,
    ct.XLSM: read_xlsx,
    ct.XLTX: read_xlsx,
    ct.XLS: read_xls,
    ct.TEXT: read_text,
    ct.HTML: read_html,
    ct.XML: read_html,
    ct.ZIP: read_zip,
    ct.MESSAGE: _read_message,
    ct.MSG: _read_message,  # parse_message turns an Outlook .msg into MIME (parsers.outlook)
    ct.DOC: read_doc,
    ct.OLE: read_ole,
    ct.RTF: read_rtf,
    ct.OFD: read_ofd,
    ct.TNEF: read_tnef,
    "image/png": read_image,
    "image/jpeg": read_image,
    "image/tiff": read_image,
    "image/gif": read_image,
    ct.HEIC: read_image,
}

# Types recognised but not read, with the code and detail recorded for them.
UNREADABLE_REASONS: dict[str, Problem] = {
    ct.PPT: Problem(ProblemCode.UNSUPPORTED, "PowerPoint .ppt"),
    ct.OLE_ENCRYPTED: Problem(ProblemCode.ENCRYPTED_OFFICE, "password-protected Office document"),
    ct.PPTX: Problem(ProblemCode.UNSUPPORTED, "PowerPoint .pptx"),
    ct.XLSB: Problem(ProblemCode.UNSUPPORTED, "Excel binary .xlsb"),
    ct.RAR: Problem(ProblemCode.ARCHIVE_UNSUPPORTED, "RAR"),
    ct.SEVEN_Z: Problem(ProblemCode.ARCHIVE_UNSUPPORTED, "7z"),
    ct.GZIP: Problem(ProblemCode.ARCHIVE_UNSUPPORTED, "gzip"),
    ct.BZIP2: Problem(ProblemCode.ARCHIVE_UNSUPPORTED, "bzip2"),
    ct.XZ: Problem(ProblemCode.ARCHIVE_UNSUPPORTED, "xz"),
    ct.TAR: Problem(ProblemCode.ARCHIVE_UNSUPPORTED, "tar"),
    ct.CAB: Problem(ProblemCode.ARCHIVE_UNSUPPORTED, "CAB"),
    ct.EXE: Problem(ProblemCode.EXECUTABLE),
    ct.EMPTY: Problem(ProblemCode.EMPTY),
    ct.OCTET: Problem(ProblemCode.UNSUPPORTED, "unrecognised binary data"),
}

# Readers that hold the whole document in memory at once: bounded by max_document_bytes.
_WHOLE_DOCUMENT = frozenset({ct.PDF, ct.XLS, ct.TEXT, ct.HTML, ct.XML, ct.DOC, ct.OLE, ct.RTF, ct.MSG})

__all__ = [
    "READERS",
    "OcrBudget",
    "UNREADABLE_REASONS",
    "check_zip",
    "decode_text",
    "normalize_charset",
    "read_attachment",
    "sniff_content_type",
]


def sniff_content_type(data: bytes, filename: str = "") -> str:
    """The content type of `data`, judged from the bytes (the name is only a tie-breaker hint)."""
    try:
        found = ct.sniff(bytes(data), filename)
    except Exception:
        return ct.OCTET
    if found.zf is not None:
        found.zf.close()
    return found.content_type


def read_attachment(
    data: bytes,
    *,
    filename: str,
    declared_type: str,
    path: str,
    limits: ParseLimits,
    depth: int = 0,
    parse_message: Callable[[bytes, int], ParsedMessage] | None = None,
    ocr: OcrBudget | None = None,
    passwords: tuple[str, ...] = (),
) -> Part:
    """Read one attachment into a Part.  Never raises for any input bytes.

    `depth` is the message nesting depth of the message carrying this attachment; an
    attached e-mail is handed to `parse_message(data, depth + 1)` unless that reaches
    limits.max_message_depth.  Zip members become children with paths "{path}/{i}".
    `ocr` is the message's shared OCR time budget (None: each document has ocr_timeout_s).
    `passwords` are tried on encrypted zip members (those the mail body gave, never guesses).
    """
    return _read(bytes(data), filename, declared_type, path, limits, depth, parse_message, 0, None, ocr, passwords)


def _read(
    data: bytes,
    filename: str,
    declared_type: str,
    path: str,
    limits: ParseLimits,
    depth: int,
    parse_message: Callable[[bytes, int], ParsedMessage] | None,
    archive_depth: int,
    budget: Budget | None,
    ocr: OcrBudget | None = None,
    passwords: tuple[str, ...] = (),
) -> Part:
    content_type = ct.OCTET
    found: ct.Sniffed | None = None
    try:
        found = ct.sniff(data, filename, declared_type)
        content_type = found.content_type
        if budget is None:
            budget = Budget.from_limits(limits)
        shared = budget

        def read_child(child: bytes, name: str, declared: str, child_path: str, child_depth: int) -> Part:
            return _read(
                child, name, declared, child_path, limits, depth, parse_message, child_depth, shared, ocr, passwords
            )

        ctx = Context(
            data=data,
            filename=filename,
            path=path,
            content_type=content_type,
            declared_type=declared_type,
            limits=limits,
            depth=depth,
            archive_depth=archive_depth,
            budget=budget,
            zf=found.zf,
            zip_error=found.zip_error,
            parse_message=parse_message,
            read_child=read_child,
            ocr=ocr,
            passwords=passwords,
        )
        outcome = _dispatch(ctx)
    except Exception as exc:  # the contract: any bytes give a Part, a reader bug included
        outcome = unreadable(ProblemCode.READER_FAILED, f"{type(exc).__name__}: {short(exc)}")
    finally:
        if found is not None and found.zf is not None:
            found.zf.close()
    return Part(
        path=path,
        filename=filename,
        content_type=content_type,
        declared_type=declared_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        kind=outcome.kind,
        document=outcome.document,
        message=outcome.message,
        children=outcome.children,
        problem=outcome.problem,
        warnings=tuple(outcome.warnings),
    )


def _dispatch(ctx: Context) -> Outcome:
    content_type = ctx.content_type
    reader = READERS.get(content_type)
    if reader is None:
        if content_type.startswith("image/"):
            return unreadable(ProblemCode.IMAGE_NO_TEXT, content_type)
        if content_type.startswith(ct.ODF):
            return unreadable(ProblemCode.UNSUPPORTED, "OpenDocument")
        return unreadable(UNREADABLE_REASONS.get(content_type) or Problem(ProblemCode.UNSUPPORTED, content_type))
    if content_type in _WHOLE_DOCUMENT and len(ctx.data) > ctx.limits.max_document_bytes:
        return unreadable(
            ProblemCode.TOO_LARGE,
            f"{human_size(len(ctx.data))} exceeds {human_size(ctx.limits.max_document_bytes)}",
        )
    return reader(ctx)
