"""Refuse XML that declares a DTD, and cap what third-party readers decompress.

Entity expansion (XXE file disclosure, "billion laughs") needs a DTD, and a DTD can
only sit in the prolog, before the root element.  OOXML forbids DTDs outright
(ECMA-376 Part 2), so any part declaring one is refused before a parser sees it.
python-docx (lxml, resolve_entities=False) and openpyxl (lxml without entity resolution,
stdlib expat for worksheets; defusedxml is not installed) are believed safe on their
own: this is defense in depth, and cheap because only the prolog is examined.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass

from parsers.documents.base import LimitExceeded, UnsafeXml, human_size
from parsers.types import ProblemCode

_CHUNK = 1 << 20
_PROLOG_MAX = 65536  # a longer prolog is padding meant to push a DTD past a scanner
_ASCII_COMPATIBLE = re.compile(
    rb"(utf-?8|us-ascii|ascii|iso[-_]?8859-\d+|latin-?1|(windows|cp)-?125\d|gb2312|gbk|gb18030|big5|"
    rb"shift[-_]jis|euc-(jp|kr|cn))",
    re.IGNORECASE,
)
_WIDE = re.compile(rb"(utf-?(16|32)|ucs-?[24]|iso-10646)", re.IGNORECASE)
_DECL_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
# For wide encodings the prolog walk does not apply: look for the marks anywhere.
_WIDE_MARKS = tuple(
    mark.encode(enc)
    for mark in ("<!DOCTYPE", "<!ENTITY")
    for enc in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
_BINARY_EXT = re.compile(
    r"\.(png|jpe?g|jfif|gif|bmp|tiff?|emf|wmf|wdp|svg|bin|odttf|ttf|otf|mp[34]|wav|avi)$", re.I
)

SAFE, UNSAFE, WIDE = "safe", "unsafe", "wide"


def _prolog_verdict(buf: bytes) -> str | None:
    """SAFE/UNSAFE once the root element is reached, WIDE for UTF-16/32, None if more bytes needed."""
    s = buf[3:] if buf.startswith(codecs.BOM_UTF8) else buf
    if len(s) < 4:
        return None
    if s.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in s[:4]:
        return WIDE
    if s.lstrip()[:1] != b"<":
        return UNSAFE if len(s.lstrip()) >= 4 else None  # EBCDIC, UTF-7 or not XML at all
    pos = 0
    while True:
        start = s.find(b"<", pos)
        if start == -1 or start + 4 > len(s):
            return None
        if s[start + 1 : start + 2] == b"?":
            end = s.find(b"?>", start + 2)
            if end == -1:
                return None
            if s.startswith(b"<?xml", start):
                found = _DECL_ENCODING.search(s, start, end)
                if found and _WIDE.fullmatch(found.group(1)):
                    return WIDE
                if found and not _ASCII_COMPATIBLE.fullmatch(found.group(1)):
                    return UNSAFE
            pos = end + 2
        elif s.startswith(b"<!--", start):
            end = s.find(b"-->", start + 4)
            if end == -1:
                return None
            pos = end + 3
        elif s[start + 1 : start + 2] == b"!":
            return UNSAFE  # <!DOCTYPE (or anything else a prolog must not hold)
        else:
            return SAFE  # the root element: no DTD can follow


class DtdScanner:
    """Feed a part's bytes in order; raises UnsafeXml as soon as a DTD is certain."""

    __slots__ = ("name", "head", "state", "tail")

    def __init__(self, name: str) -> None:
        self.name = name
        self.head = b""
        self.state: str | None = None
        self.tail = b""

    def _refuse(self) -> UnsafeXml:
        return UnsafeXml(f"xml part {self.name} declares a DTD or odd encoding (entity expansion refused)")

    def feed(self, chunk: bytes) -> None:
        if self.state == SAFE or not chunk:
            return
        if self.state == WIDE:
            self._scan_wide(chunk)
            return
        self.head += chunk
        verdict = _prolog_verdict(self.head[:_PROLOG_MAX])
        if verdict is None and len(self.head) >= _PROLOG_MAX:
            verdict = UNSAFE
        if verdict == UNSAFE:
            raise self._refuse()
        if verdict is not None:
            self.state, head, self.head = verdict, self.head, b""
            if verdict == WIDE:
                self._scan_wide(head)

    def _scan_wide(self, chunk: bytes) -> None:
        window = self.tail + chunk
        if any(mark in window for mark in _WIDE_MARKS):
            raise self._refuse()
        self.tail = window[-72:]

    def finish(self) -> None:
        """At end of data: a part that never reached a root element must still hold no DTD."""
        if self.state is None and b"<!" in self.head:
            raise self._refuse()


@dataclass(slots=True)
class XmlGuard:
    """Caps for the parts a third-party reader (openpyxl) pulls through GuardedZipFile.open."""

    part_cap: int
    total_left: int


class _GuardedStream:
    """File-like view of a member that enforces an XmlGuard and the DTD scan while streaming."""

    def __init__(self, raw, guard: XmlGuard, name: str, scan: bool) -> None:
        self._raw = raw
        self._guard = guard
        self._name = name
        self._seen = 0
        self._scanner = DtdScanner(name) if scan else None

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while chunk := self.read(_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        chunk = self._raw.read(n)
        self._seen += len(chunk)
        self._guard.total_left -= len(chunk)
        if self._seen > self._guard.part_cap:
            raise LimitExceeded(
                f"xml part {self._name} exceeds {human_size(self._guard.part_cap)}", ProblemCode.TOO_LARGE
            )
        if self._guard.total_left < 0:
            raise LimitExceeded("document expands beyond the size limit")
        if self._scanner is not None:
            if chunk:
                self._scanner.feed(chunk)
            else:
                self._scanner.finish()
        return chunk

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GuardedZipFile(zipfile.ZipFile):
    """A ZipFile whose `open()`/`read()` are capped and DTD-scanned once `guard` is set.

    Used to hand an archive to libraries that read members themselves (openpyxl) without
    letting them decompress unbounded data or parse a DOCTYPE.  With `guard` unset it is
    an ordinary ZipFile.
    """

    guard: XmlGuard | None = None

    def open(self, name, mode="r", pwd=None, *, force_zip64=False):
        fp = super().open(name, mode, pwd, force_zip64=force_zip64)
        if mode != "r" or self.guard is None:
            return fp
        member = name.filename if isinstance(name, zipfile.ZipInfo) else str(name)
        return _GuardedStream(fp, self.guard, member, scan=not _BINARY_EXT.search(member))
