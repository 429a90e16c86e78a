"""Word 2007+ documents (docx, docm, dotx, dotm) to DocumentText.

python-docx loads the package (relationships, part classes, styles), but it is fed
through `_PkgReader`, our implementation of its physical-package interface over the
ZipFile the sniffer already opened and `check_zip` already vetted.  That way every XML
part is size-capped and DTD-scanned before lxml sees it, images and embedded objects
are never decompressed (text extraction does not need them), and macro-enabled or
template packages load as plain documents.  Text is then read from python-docx's lxml
tree directly (one pass, no per-run proxy objects), which also reaches content that
`Paragraph.text` misses: content controls, tracked insertions, text boxes.

Paragraph order: body (in document order, text boxes after their anchor paragraph),
then section headers, then footers.  Tables go to `DocumentText.tables`, their cell text
(nested tables included) being findable through `DocumentText.text`.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from typing import Any

import docx  # noqa: F401  (registers python-docx's part classes with PartFactory)
from docx.opc.constants import CONTENT_TYPE as CT
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.package import Unmarshaller
from docx.opc.packuri import PACKAGE_URI
from docx.opc.part import PartFactory
from docx.opc.pkgreader import PackageReader, _ContentTypeMap
from docx.package import Package
from lxml import etree

from parsers.documents.archive import check_zip, read_member
from parsers.documents.base import (
    Budget,
    Context,
    LimitExceeded,
    Outcome,
    TextBudget,
    UnsafeXml,
    human_size,
    short,
    unreadable,
)
from parsers.documents.images import ocr_embedded
from parsers.documents.wordml import W_SECTPR, Extractor, Styles
from parsers.types import DocumentText, ParseLimits, PartKind, Problem, ProblemCode

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_HDR_FTR = {_W + "headerReference": "header", _W + "footerReference": "footer"}
_MAIN_CT = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
# Main-part content types python-docx does not map to DocumentPart, though they read the same.
_ALIAS_CT = (
    b"application/vnd.ms-word.document.macroEnabled.main+xml",
    b"application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
)
_SCAN_CHARS = 20  # a document with less text than this is a scan pasted in: OCR its pictures
_READ_TYPES = frozenset(
    {CT.WML_DOCUMENT_MAIN, CT.WML_HEADER, CT.WML_FOOTER, CT.WML_STYLES, CT.OPC_CORE_PROPERTIES}
)
_STUBS = {
    CT.WML_NUMBERING: b'<w:numbering xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>',
    CT.WML_SETTINGS: b'<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>',
    CT.WML_COMMENTS: b'<w:comments xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>',
}
_MACRO_TYPES = (
    "application/vnd.ms-word.document.macroEnabled.12",
    "application/vnd.ms-word.template.macroEnabled.12",
)


class _PkgReader:
    """python-docx's PhysPkgReader interface over a vetted ZipFile, with caps and DTD scan."""

    def __init__(self, zf: zipfile.ZipFile, limits: ParseLimits, budget: Budget) -> None:
        self._zf = zf
        self._folded: dict[str, zipfile.ZipInfo] | None = None
        self._part_cap = limits.max_document_xml_bytes
        self._left = min(limits.max_document_bytes, budget.expanded_left)
        self.content_types: _ContentTypeMap | None = None
        self.read_bytes = 0

    def _info(self, membername: str) -> zipfile.ZipInfo:
        info = self._zf.NameToInfo.get(membername)
        if info is None:  # Office resolves part names case-insensitively; some tools write "\"
            if self._folded is None:
                self._folded = {n.replace("\\", "/").lower(): i for n, i in self._zf.NameToInfo.items()}
            info = self._folded.get(membername.lower())
        if info is None:
            raise KeyError(f"There is no item named {membername!r} in the archive")
        return info

    def _read(self, membername: str) -> bytes:
        info = self._info(membername)
        if info.file_size > self._part_cap:
            raise LimitExceeded(
                f"xml part {membername} is {human_size(info.file_size)}, over the "
                f"{human_size(self._part_cap)} limit",
                ProblemCode.TOO_LARGE,
            )
        data = read_member(self._zf, info, min(self._part_cap, self._left), scan_xml=True)
        self._left -= len(data)
        self.read_bytes += len(data)
        return data

    def blob_for(self, pack_uri) -> bytes:
        try:
            ctype = self.content_types[pack_uri] if self.content_types is not None else ""
        except KeyError:
            ctype = ""  # python-docx itself raises on this part right after
        if ctype in _READ_TYPES:
            return self._read(pack_uri.membername)
        # Parts python-docx keeps as opaque blobs (images, fonts, themes, embedded objects,
        # vbaProject.bin) or parses but text never needs (numbering, settings, comments):
        # never decompressed.  The latter get an empty root so python-docx can still load them.
        return _STUBS.get(ctype, b"")

    @property
    def content_types_xml(self) -> bytes:
        blob = self._read("[Content_Types].xml")
        for alias in _ALIAS_CT:
            blob = blob.replace(alias, _MAIN_CT)
        return blob

    def rels_xml_for(self, source_uri) -> bytes | None:
        try:
            return self._read(source_uri.rels_uri.membername)
        except KeyError:
            return None

    def close(self) -> None:
        """The ZipFile belongs to the caller."""


def _open_package(reader: _PkgReader) -> Package:
    """OpcPackage.open() with our physical reader instead of one it would open itself."""
    content_types = _ContentTypeMap.from_xml(reader.content_types_xml)
    reader.content_types = content_types
    pkg_srels = PackageReader._srels_for(reader, PACKAGE_URI)
    sparts = PackageReader._load_serialized_parts(reader, pkg_srels, content_types)
    package = Package()
    Unmarshaller.unmarshal(PackageReader(content_types, pkg_srels, sparts), package, PartFactory)
    return package


def read_docx(ctx: Context) -> Outcome:
    """Kind DOCUMENT for a readable Word package, UNREADABLE with a reason otherwise."""
    zf = ctx.zf
    if zf is None:
        return unreadable(ProblemCode.TRUNCATED, f"docx: bad zip central directory ({ctx.zip_error})")
    warnings = [Problem(ProblemCode.MACRO)] if ctx.content_type in _MACRO_TYPES else []
    # Package members are not attachments: allow many (a report with hundreds of photos is normal).
    problem = check_zip(zf, ctx.limits, max_members=ctx.limits.max_archive_members * 20)
    if problem:
        return unreadable(problem, warnings=warnings)
    reader = _PkgReader(zf, ctx.limits, ctx.budget)
    try:
        package = _open_package(reader)
        main = package.main_document_part
    except (LimitExceeded, UnsafeXml) as exc:
        return unreadable(exc.problem, warnings=warnings)
    except KeyError as exc:
        return unreadable(ProblemCode.CORRUPT, f"docx is missing a part: {short(exc)}", warnings)
    except etree.XMLSyntaxError as exc:
        return unreadable(ProblemCode.CORRUPT, f"docx has malformed xml: {short(exc)}", warnings)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        return unreadable(ProblemCode.CORRUPT, f"docx: {short(exc)}", warnings)
    except Exception as exc:  # python-docx on a structurally odd package (ValueError, TypeError...)
        return unreadable(ProblemCode.CORRUPT, f"docx could not be read: {short(exc)}", warnings)
    finally:
        ctx.budget.expanded_left -= reader.read_bytes
    element = getattr(main, "element", None)
    body = getattr(element, "body", None)
    if element is None:
        return unreadable(ProblemCode.CORRUPT, "docx main part is not a Word document", warnings)
    try:
        styles_el = main.part_related_by(RT.STYLES).element
    except (KeyError, ValueError, AttributeError):
        styles_el = None
    budget = TextBudget(ctx.limits.max_text_chars)
    extractor = Extractor(Styles(styles_el), budget)
    if body is not None:
        extractor.blocks(body, "body")
        _headers_footers(main, body, extractor)
    paragraphs = list(extractor.paragraphs)
    text_chars = sum(len(p.text) for p in paragraphs) + sum(len(c) for t in extractor.tables for r in t for c in r)
    if text_chars < _SCAN_CHARS:
        # A scan pasted into Word: the text is in the pictures.
        scanned = ocr_embedded(ctx, _media(zf, ctx))
        if scanned is not None:
            paragraphs += scanned.paragraphs
            warnings += scanned.warnings
    document = DocumentText(paragraphs=tuple(paragraphs), tables=tuple(extractor.tables), title=_title(package))
    return Outcome(PartKind.DOCUMENT, document=document, warnings=warnings + budget.warnings())


_IMAGE_NAME = re.compile(r"^word/media/[^/]*\.(png|jpe?g|tiff?|gif)$", re.IGNORECASE)


def _media(zf: zipfile.ZipFile, ctx: Context) -> list[tuple[str, bytes]]:
    """The package's pictures in their natural order (image1, image2, ... image10), at most max_ocr_pages."""
    infos = [i for i in zf.infolist() if _IMAGE_NAME.match(i.filename.replace("\\", "/"))]
    infos.sort(key=lambda i: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", i.filename.lower())])
    found: list[tuple[str, bytes]] = []
    for info in infos[: ctx.limits.max_ocr_pages]:
        cap = min(ctx.budget.expanded_left, ctx.limits.max_document_bytes)
        try:
            data = read_member(zf, info, cap)
        except Exception:  # a bomb or a broken member: that picture is skipped
            continue
        ctx.budget.expanded_left -= len(data)
        found.append((info.filename, data))
    return found


def _headers_footers(main, body, extractor: Extractor) -> None:
    """Append header paragraphs, then footer paragraphs, of every section, each part once."""
    related = main.related_parts
    seen: set[str] = set()
    found: dict[str, list] = {"header": [], "footer": []}
    for sect in body.iter(W_SECTPR):
        for ref in sect:
            where = _HDR_FTR.get(ref.tag)
            rid = ref.get(_R_ID)
            part = related.get(rid) if where and rid else None
            if where is None or part is None or str(part.partname) in seen or not hasattr(part, "element"):
                continue
            seen.add(str(part.partname))
            found[where].append(part.element)
    for where in ("header", "footer"):
        for element in found[where]:
            extractor.blocks(element, where)


def _title(package: Package) -> str:
    # Not package.core_properties: that invents a "Word Document" title when the part is absent.
    try:
        core: Any = package.part_related_by(RT.CORE_PROPERTIES)  # a CorePropertiesPart
        return (core.core_properties.title or "").strip()
    except Exception:
        return ""
