"""Typed results of the parsing stage.

Everything here is plain, immutable data produced from bytes alone: a parsed
message, its attachment tree and the text of the documents inside it.  The
later stages (recognition, attribution) read these objects and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ProblemCode(StrEnum):
    """Why a part could not be read, was cut short, or needs a clerk's eye.

    The code is what later stages match on and what the Chinese wording is chosen by
    (`pipeline.labels.describe_problem`); a Problem's `detail` only carries parameters.
    """

    # -- the part could not be read
    EMPTY = "empty"  # zero bytes
    UNSUPPORTED = "unsupported"  # a type recognised or not, that no reader handles (detail: the type)
    EXECUTABLE = "executable"
    IMAGE_NO_TEXT = "image_no_text"  # an image in which OCR found no text (or OCR is unavailable)
    SCAN_NO_TEXT = "scan_no_text"  # a PDF without a text layer in which OCR found no text
    IMAGE_TOO_LARGE = "image_too_large"  # over max_image_pixels: refused before decoding
    ENCRYPTED_ZIP = "encrypted_zip"
    ENCRYPTED_PDF = "encrypted_pdf"
    ENCRYPTED_OFFICE = "encrypted_office"
    ZIP_BOMB = "zip_bomb"  # declared or real expansion, ratio or overlapping entries
    ARCHIVE_TOO_DEEP = "archive_too_deep"
    ARCHIVE_TOO_MANY = "archive_too_many"  # too many members
    ARCHIVE_UNSUPPORTED = "archive_unsupported"  # rar, 7z, gzip, tar... (detail: which)
    TRUNCATED = "truncated"  # the file ends early (bad central directory...)
    CORRUPT = "corrupt"  # malformed structure, bad CRC, reader error on damaged bytes
    UNSAFE_XML = "unsafe_xml"  # a DTD or entity declaration: refused
    TOO_LARGE = "too_large"  # over max_document_bytes or a part over max_document_xml_bytes
    MESSAGE_TOO_DEEP = "message_too_deep"
    MESSAGE_UNPARSEABLE = "message_unparseable"
    ATTACHMENT_LIMIT = "attachment_limit"  # listed, not read: over max_attachments
    WORK_LIMIT = "work_limit"  # listed, not read: the message's work budget is spent
    READER_FAILED = "reader_failed"  # a reader bug: the exception's type and text in detail
    PARSE_STOPPED = "parse_stopped"  # the parse sandbox stopped (time or memory): not read
    # -- warnings (the part was read, perhaps partly)
    MACRO = "macro"  # macro-enabled document: macros not run
    TEXT_TRUNCATED = "text_truncated"  # over max_text_chars
    PAGES_CUT = "pages_cut"  # only the first pages were read
    OCR_PAGES_CUT = "ocr_pages_cut"  # OCR stopped at the page budget or the time budget
    OCR_USED = "ocr_used"  # text came from OCR: check it against the scan
    OCR_DEFERRED = "ocr_deferred"  # OCR left for the OCR lane (limits.defer_ocr): the message is parsed again there
    PARTIAL = "partial"  # some pages or members failed; the rest was read
    CHARSET_GUESSED = "charset_guessed"
    UNSAFE_NAME = "unsafe_name"  # archive member name with .. or an absolute path
    WEAK_ENCRYPTION = "weak_encryption"  # opened with the empty user password / the password in the mail
    # -- message-level
    MIME_DEFECT = "mime_defect"
    HEADER_TOO_LARGE = "header_too_large"
    MIME_TOO_DEEP = "mime_too_deep"
    MANY_FROM = "many_from"  # 2+ From: addresses
    # -- a file the mail links to ("超大附件"): never fetched, counted by its name, checked by a clerk
    LINKED_FILE = "linked_file"


@dataclass(frozen=True, slots=True)
class Problem:
    """A code and plain parameters (sizes, counts, names) for logs and the clerk's detail view.

    `detail` is never matched on; the code decides behaviour and wording.
    """

    code: ProblemCode
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else str(self.code)


class PartKind(StrEnum):
    """What an attachment node is, decided from its bytes (never its name)."""

    DOCUMENT = "document"  # text was extracted (docx, pdf, xlsx, xls, txt, html)
    ARCHIVE = "archive"  # zip: children are its members
    MESSAGE = "message"  # attached or forwarded e-mail: `message` is set
    UNREADABLE = "unreadable"  # kept, typed, but no text (rar, doc, wps, scans, encrypted)
    LINKED = "linked"  # never a Part: the item row of a LinkedFile (a download link in the body)


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One paragraph of document text with where it came from."""

    text: str
    style: str = ""  # e.g. "Title", "Heading 1", "Normal" (docx); "" when unknown
    where: str = "body"  # body|table|header|footer|textbox|footnote|page-N; OCR: ocr-page-N, ocr-image[-N], +"-stamp"
    bold: bool = False
    centered: bool = False


@dataclass(frozen=True, slots=True)
class DocumentText:
    """The readable content of one document, with just enough structure for recognition."""

    paragraphs: tuple[Paragraph, ...] = ()
    tables: tuple[tuple[tuple[str, ...], ...], ...] = ()  # table -> row -> cell text
    title: str = ""  # document metadata title (docx core properties, PDF info), if any

    @property
    def text(self) -> str:
        """All paragraph text joined by newlines (tables included as tab-separated rows)."""
        lines = [p.text for p in self.paragraphs]
        for table in self.tables:
            lines.extend("\t".join(row) for row in table)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Part:
    """One node of a message's attachment tree.

    `path` addresses the node inside its message: "1", "2", "2/3" (third member
    of the zip that is the second attachment).  It is stable across reparses of
    the same bytes, so decisions can be keyed by it.
    """

    path: str
    filename: str
    content_type: str  # sniffed from the bytes, e.g. application/vnd...document
    declared_type: str  # what the sender's MIME header or zip name claimed
    size: int
    sha256: str
    kind: PartKind
    document: DocumentText | None = None
    message: ParsedMessage | None = None
    children: tuple[Part, ...] = ()
    problem: Problem | None = None  # why the part is unreadable; None when fine
    warnings: tuple[Problem, ...] = ()
    inline: bool = False  # part of the body (e.g. an inline image), not an attachment

    def walk(self):
        """Yield this part and every part below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()
        if self.message is not None:
            for part in self.message.attachments:
                yield from part.walk()


@dataclass(frozen=True, slots=True)
class LinkedFile:
    """A file the mail links to instead of attaching it (QQ Mail / 163 / Coremail "超大附件").

    Only what the mail's body says about it (`parsers.links`); the link is never fetched.
    `path` is its item path ("link1", or "3/link1" inside the message attached as part 3).
    """

    path: str
    filename: str  # as written in the block ("" when the block names none)
    url: str
    expires: str = ""  # as written ("2024年7月20日 18:00"), "" when not given
    size: str = ""  # as written ("86.20M")
    provider: str = ""  # qq | 163 | coremail | other


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    address: str  # lower-cased addr-spec; "" when missing or unparseable

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A decoded e-mail message.  Produced for any bytes; `problems` says what went wrong."""

    message_id: str  # "" when absent: never dedup on it
    subject: str
    sender: Address
    from_count: int  # addresses in From: header(s), or the number of such headers (2+ is a spoofing signal)
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: datetime | None  # sender's Date: header, often wrong
    received_at: datetime | None  # topmost Received: header's timestamp
    text_body: str  # plain text, or a rendering of the HTML body
    html_body: str
    attachments: tuple[Part, ...]
    headers: tuple[tuple[str, str], ...]  # decoded, in order
    auto_reply: str = ""  # why this looks automatic (auto-reply, bounce, list): "" when not
    authentication_results: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()  # defects and decoding repairs worth showing a clerk
    header_bytes: int = 0
    linked_files: tuple[LinkedFile, ...] = ()  # "超大附件" download links in the body (never fetched)

    def header(self, name: str) -> str:
        """First decoded value of a header, "" if absent."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return ""

    def walk_parts(self):
        """Every attachment node, depth first, including those of attached messages."""
        for part in self.attachments:
            yield from part.walk()

    @property
    def ocr_deferred(self) -> bool:
        """Whether a part was left unread for OCR (parsed with `limits.defer_ocr`)."""
        return any(w.code is ProblemCode.OCR_DEFERRED for part in self.walk_parts() for w in part.warnings)

    def walk_linked(self):
        """Every linked file of this message and of the messages attached to it."""
        yield from self.linked_files
        for part in self.walk_parts():
            if part.message is not None:
                yield from part.message.linked_files

    def part_at(self, item_path: str) -> Part | None:
        """The attachment node an item path names; one report of several in a document ("3#2") is in
        its document's node ("3").  None for a linked file or the message itself."""
        node = document_path(item_path)
        return next((p for p in self.walk_parts() if p.path == node), None)

    def linked_at(self, item_path: str) -> LinkedFile | None:
        return next((link for link in self.walk_linked() if link.path == item_path), None)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds on the work parsing one message may do.  Exceeding one is recorded, never fatal."""

    max_attachments: int = 200
    max_mime_depth: int = 40
    max_header_bytes: int = 256_000
    max_archive_depth: int = 3
    max_archive_members: int = 500
    max_expanded_bytes: int = 200_000_000
    max_compression_ratio: float = 200.0
    max_document_xml_bytes: int = 50_000_000
    max_document_bytes: int = 60_000_000
    max_text_chars: int = 2_000_000
    max_message_depth: int = 5  # attached messages inside attached messages
    # Total work per message, across all its attachments (zip members and attached messages included).
    max_message_expanded_bytes: int = 300_000_000
    max_message_text_chars: int = 10_000_000
    # OCR of scans and photos (parsers.documents.ocr), per document.
    max_ocr_pages: int = 5  # first, last, then the rest in order
    ocr_timeout_s: float = 25.0  # no new page is started after this long
    max_image_pixels: int = 40_000_000  # larger images are refused from their header, never decoded
    ocr_dpi: int = 150  # PDF pages are rendered at this resolution for OCR
    max_message_ocr_s: float = 35.0  # OCR time for all documents of one message together
    min_ocr_pixels: int = 250_000  # smaller images (logos, signatures, icons) are not OCR'd
    ocr_threads: int = 1  # onnxruntime threads per OCR model; 0 = one per core (parsers.documents.ocr.engine)
    # No OCR here: a part that needs it says OCR_DEFERRED, and the caller parses the message again
    # where OCR may take its time (pipeline.inbound.pool's OCR lane).
    defer_ocr: bool = False


def document_path(item_path: str) -> str:
    """The attachment node an item path belongs to: one report of several in a document ("3#2", made by
    pipeline.domain.splitting.part_path) is in its document's node ("3"); any other path is its own."""
    return item_path.partition("#")[0]


EMPTY_ADDRESS = Address("", "")
DEFAULT_LIMITS = ParseLimits()
__all__ = [
    "Address",
    "DEFAULT_LIMITS",
    "DocumentText",
    "document_path",
    "EMPTY_ADDRESS",
    "LinkedFile",
    "ParseLimits",
    "ParsedMessage",
    "Paragraph",
    "Part",
    "PartKind",
    "Problem",
    "ProblemCode",
]
