"""Shared plumbing of the document readers: the reading context, a reader's outcome, budgets.

Every format module exposes reader functions `read_xxx(ctx: Context) -> Outcome`.  They
may raise: `read_attachment` (in `__init__`) turns any exception into an UNREADABLE part,
so readers only catch what they can describe better than the generic fallback.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from parsers.types import DocumentText, ParsedMessage, ParseLimits, Part, PartKind, Problem, ProblemCode

MessageParser = Callable[[bytes, int], ParsedMessage]


class LimitExceeded(Exception):
    """A size or count bound was hit; `code` says which kind, the message gives the figures."""

    def __init__(self, detail: str, code: ProblemCode = ProblemCode.ZIP_BOMB) -> None:
        super().__init__(detail)
        self.code = code

    @property
    def problem(self) -> Problem:
        return Problem(self.code, str(self))


class UnsafeXml(Exception):
    """An XML part carries a DTD (DOCTYPE/ENTITY): refused before any parser sees it."""

    @property
    def problem(self) -> Problem:
        return Problem(ProblemCode.UNSAFE_XML, str(self))


@dataclass(slots=True)
class Budget:
    """Work left for one top-level attachment and everything nested in it.

    Shared down the archive tree so that nesting cannot multiply the limits
    (a zip of zips each just under the limit is still bounded in total).
    """

    expanded_left: int
    members_left: int

    @classmethod
    def from_limits(cls, limits: ParseLimits) -> Budget:
        return cls(expanded_left=limits.max_expanded_bytes, members_left=limits.max_archive_members)


@dataclass(slots=True)
class OcrBudget:
    """OCR seconds left for one message (limits.max_message_ocr_s), shared by all its documents."""

    seconds_left: float


@dataclass(slots=True)
class Context:
    """Everything a reader needs about the attachment it reads."""

    data: bytes
    filename: str
    path: str
    content_type: str
    declared_type: str
    limits: ParseLimits
    depth: int  # message nesting depth (attached message inside attached message)
    archive_depth: int  # number of archives enclosing this part
    budget: Budget
    zf: zipfile.ZipFile | None = None  # opened once by the sniffer, reused by zip-based readers
    zip_error: str = ""  # why the sniffer could not open a PK-signed body
    parse_message: MessageParser | None = None
    # Recursion hook for archive members: (data, filename, declared_type, path, archive_depth) -> Part.
    read_child: Callable[[bytes, str, str, str, int], Part] | None = None
    ocr: OcrBudget | None = None  # None: this document alone bounds its OCR (limits.ocr_timeout_s)
    passwords: tuple[str, ...] = ()  # archive passwords the mail's sender gave in the body (解压密码：…)


@dataclass(slots=True)
class Outcome:
    """What a reader found; `read_attachment` adds the identity fields to make a Part."""

    kind: PartKind
    document: DocumentText | None = None
    children: tuple[Part, ...] = ()
    message: ParsedMessage | None = None
    problem: Problem | None = None
    warnings: list[Problem] = field(default_factory=list)


def unreadable(code: ProblemCode | Problem, detail: str = "", warnings: list[Problem] | None = None) -> Outcome:
    """An UNREADABLE outcome with its problem (a code and detail, or a ready Problem)."""
    problem = code if isinstance(code, Problem) else Problem(code, detail)
    return Outcome(PartKind.UNREADABLE, problem=problem, warnings=list(warnings or ()))


class TextBudget:
    """Caps the characters one document may yield (limits.max_text_chars)."""

    __slots__ = ("left", "limit", "truncated")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit
        self.truncated = False

    @property
    def exhausted(self) -> bool:
        return self.left <= 0

    def take(self, text: str) -> str | None:
        """Return `text` (possibly cut short) if there is room, else None."""
        if self.left <= 0:
            self.truncated = True
            return None
        if len(text) > self.left:
            text = text[: self.left]
            self.truncated = True
        self.left -= len(text)
        return text

    def warnings(self) -> list[Problem]:
        return [Problem(ProblemCode.TEXT_TRUNCATED, f"{self.limit} characters")] if self.truncated else []


def human_size(n: float) -> str:
    """Decimal units, as people read them in mail clients: 3.1 GB, 12.0 MB, 512 bytes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def short(exc: BaseException, limit: int = 120) -> str:
    """A one-line description of an exception for a `problem` or warning."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
