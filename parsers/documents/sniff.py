"""Decide an attachment's content type from its bytes (never from its name).

Senders routinely mislabel attachments (a PDF called .docx, an HTML page saved as .doc,
a zip declared application/octet-stream), so the type is read from magic numbers and,
for zip-based and OLE2 containers, from the container's member names.  `sniff` also
hands back the opened ZipFile so zip-based readers do not parse the central directory
a second time.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from parsers.documents.xmlguard import GuardedZipFile

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCM = "application/vnd.ms-word.document.macroEnabled.12"
DOTX = "application/vnd.openxmlformats-officedocument.wordprocessingml.template"
DOTM = "application/vnd.ms-word.template.macroEnabled.12"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
XLTX = "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
XLSB = "application/vnd.ms-excel.sheet.binary.macroEnabled.12"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODF = "application/vnd.oasis.opendocument"  # prefix; the full type comes from the `mimetype` member
OFD = "application/ofd"
ZIP = "application/zip"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
MSG = "application/vnd.ms-outlook"
OLE = "application/x-ole-storage"
OLE_ENCRYPTED = "application/x-ole-encrypted-office"  # password-protected docx/xlsx (MS-OFFCRYPTO)
RAR = "application/vnd.rar"
SEVEN_Z = "application/x-7z-compressed"
GZIP = "application/gzip"
BZIP2 = "application/x-bzip2"
XZ = "application/x-xz"
TAR = "application/x-tar"
CAB = "application/vnd.ms-cab-compressed"
EXE = "application/x-executable"
RTF = "application/rtf"
TNEF = "application/ms-tnef"  # Outlook's winmail.dat
HEIC = "image/heic"  # iPhone photos (ISO BMFF "ftyp" box with a HEIF brand)
_HEIF_BRANDS = frozenset(b"ftyp" + brand for brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"))
MESSAGE = "message/rfc822"
TEXT = "text/plain"
HTML = "text/html"
XML = "text/xml"
EMPTY = "application/x-empty"
OCTET = "application/octet-stream"

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"Rar!\x1a\x07", RAR),
    (b"7z\xbc\xaf\x27\x1c", SEVEN_Z),
    (b"\x1f\x8b", GZIP),
    (b"\xfd7zXZ\x00", XZ),
    (b"MSCF\x00\x00\x00\x00", CAB),
    (b"\x7fELF", EXE),
    (b"\xfe\xed\xfa\xce", EXE),  # Mach-O, both word sizes and byte orders
    (b"\xfe\xed\xfa\xcf", EXE),
    (b"\xce\xfa\xed\xfe", EXE),
    (b"\xcf\xfa\xed\xfe", EXE),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"{\\rtf", RTF),
    (b"\x78\x9f\x3e\x22", TNEF),
)

# OLE2 directory entry names (UTF-16LE) that identify the application, most specific first.
_OLE_STREAMS: tuple[tuple[str, str, bool], ...] = (
    ("EncryptedPackage", OLE_ENCRYPTED, True),
    ("WordDocument", DOC, True),
    ("Workbook", XLS, True),
    ("Book", XLS, True),
    ("PowerPoint Document", PPT, True),
    ("__substg1.0_", MSG, False),  # prefix of every .msg property stream
)

_KNOWN_HEADERS = re.compile(
    rb"(received|from|return-path|mime-version|delivered-to|message-id|date|subject|to|cc|"
    rb"reply-to|sender|x-[\w-]+|dkim-signature|arc-[\w-]+|authentication-results|received-spf|"
    rb"in-reply-to|references|thread-topic|thread-index|envelope-to|x-original-to):",
    re.IGNORECASE,
)
_ANY_HEADER = re.compile(rb"[!-9;-~]+:")  # RFC 5322 field name (printable, no colon)
_HTML_MARK = re.compile(rb"<(!doctype\s+html|html|head|body|meta|title|table|div|p|br|span|font)\b")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


@dataclass(slots=True)
class Sniffed:
    content_type: str
    zf: zipfile.ZipFile | None = None  # open for zip-based types; the caller closes it
    zip_error: str = ""  # why a PK-signed body could not be opened


def sniff(data: bytes, filename: str = "", declared_type: str = "") -> Sniffed:
    """Content type of `data`; for zip containers the opened archive is returned as well.

    `declared_type` and `filename` are only hints for bytes that are otherwise
    inconclusive (header-like text declared message/rfc822 or named *.eml).
    """
    if not data:
        return Sniffed(EMPTY)
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _sniff_zip(data)
    if data.startswith(b"%PDF"):
        return Sniffed(PDF)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return Sniffed(_sniff_ole(data))
    for magic, ctype in _SIGNATURES:
        if data.startswith(magic):
            return Sniffed(ctype)
    if data[4:12] in _HEIF_BRANDS:
        return Sniffed(HEIC)
    if data.startswith(b"BZh") and data[3:4].isdigit():
        return Sniffed(BZIP2)
    if data[257:262] == b"ustar":
        return Sniffed(TAR)
    if data.startswith(b"MZ") and b"\x00" in data[:64]:  # DOS/PE header, not text starting "MZ"
        return Sniffed(EXE)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return Sniffed("image/webp")
    if data.startswith(b"BM") and len(data) > 26 and data[14] in (12, 40, 52, 56, 64, 108, 124):
        return Sniffed("image/bmp")
    if b"%PDF-" in data[:1024]:  # PDF readers accept junk before the header, so do we
        return Sniffed(PDF)
    return Sniffed(_sniff_text(data, filename, declared_type))


def _sniff_zip(data: bytes) -> Sniffed:
    try:
        zf = GuardedZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, but also struct/overflow errors on garbage
        return Sniffed(_office_type_from_local_headers(data), zip_error=str(exc) or type(exc).__name__)
    try:
        return Sniffed(_office_type(zf), zf=zf)
    except Exception:  # an unreadable [Content_Types].xml must not hide the archive
        return Sniffed(ZIP, zf=zf)


def _office_type(zf: zipfile.ZipFile) -> str:
    names = zf.NameToInfo
    word = xl = ppt = False
    for name in names:
        head = name[:5].lower()
        word = word or head == "word/"
        xl = xl or head.startswith("xl/")
        ppt = ppt or head.startswith("ppt/")
    if "[Content_Types].xml" not in names:
        if "mimetype" in names:
            mime = _small_member(zf, "mimetype").decode("ascii", "replace").strip()
            if mime.startswith(ODF):
                return mime
        if any(n.lower() in ("ofd.xml", "/ofd.xml") for n in names):
            return OFD
        return ZIP
    ct = _small_member(zf, "[Content_Types].xml").lower()
    # Judge by the main part's content type only: the same map also lists embedded objects
    # (a docx embedding an .xlsm has "macroEnabled" in it without being macro-enabled).
    if word or b"wordprocessingml.document.main+xml" in ct or b"ms-word.document.macroenabled.main" in ct:
        if b"ms-word.template.macroenabledtemplate.main+xml" in ct:
            return DOTM
        if b"ms-word.document.macroenabled.main+xml" in ct or "word/vbaProject.bin" in names:
            return DOCM
        return DOTX if b"wordprocessingml.template.main+xml" in ct else DOCX
    if xl or b"spreadsheetml.sheet.main+xml" in ct:
        if "xl/workbook.bin" in names:
            return XLSB
        if b"ms-excel.sheet.macroenabled.main+xml" in ct or "xl/vbaProject.bin" in names:
            return XLSM
        if b"ms-excel.template.macroenabled.main+xml" in ct:
            return XLSM
        return XLTX if b"spreadsheetml.template.main+xml" in ct else XLSX
    if ppt or b"presentationml" in ct:
        return PPTX
    return ZIP


def _small_member(zf: zipfile.ZipFile, name: str, cap: int = 1 << 20) -> bytes:
    """First `cap` bytes of a small metadata member; b"" when it cannot be read."""
    info = zf.NameToInfo[name]
    if info.flag_bits & 0x1:
        return b""
    try:
        with zipfile.ZipFile.open(zf, info) as fp:
            return fp.read(cap)
    except Exception:
        return b""


def _office_type_from_local_headers(data: bytes) -> str:
    """Guess what a zip with a broken central directory was, from its local file headers."""
    for match in re.finditer(rb"PK\x03\x04", data[: 1 << 20]):
        start = match.start()
        header = data[start : start + 30]
        if len(header) < 30:
            break
        name_len = int.from_bytes(header[26:28], "little")
        name = data[start + 30 : start + 30 + name_len]
        if name.startswith(b"word/"):
            return DOCX
        if name.startswith(b"xl/"):
            return XLSX
        if name.startswith(b"ppt/"):
            return PPTX
    return ZIP


def _sniff_ole(data: bytes) -> str:
    """Name the OLE2 compound file by the streams in its directory.

    Directory entries are 128-byte records in sectors after the 512-byte header, so a name
    only counts at a 128-aligned offset: the same UTF-16 text inside a document body does not.
    The top-level entries are read with olefile first, so that an OLE file attached inside
    another (a .doc inside an Outlook .msg) does not name its container; the byte scan is the
    fallback for files olefile cannot open.
    """
    top = _ole_top_level(data)
    if top is not None:
        for name, ctype, exact in _OLE_STREAMS:
            if any(entry == name if exact else entry.startswith(name) for entry in top):
                return ctype
        return OLE
    for name, ctype, exact in _OLE_STREAMS:
        needle = name.encode("utf-16-le") + (b"\x00\x00" if exact else b"")
        pos = data.find(needle, 512)
        while pos != -1:
            if pos % 128 == 0:
                return ctype
            pos = data.find(needle, pos + 1)
    return OLE


def _ole_top_level(data: bytes) -> set[str] | None:
    """Names of the root storage's children, or None when olefile is missing or fails."""
    try:
        import olefile

        ole = olefile.OleFileIO(io.BytesIO(data))  # a file object: olefile takes short bytes for a path
    except Exception:  # not installed, or a damaged / truncated file
        return None
    try:
        return {path[0] for path in ole.listdir(streams=True, storages=True) if path}
    except Exception:
        return None
    finally:
        ole.close()


def looks_like_message(data: bytes, declared_type: str = "", filename: str = "") -> bool:
    """True when `data` starts like a raw e-mail (header lines)."""
    sample = data[:4096].lstrip(b"\r\n")
    if sample.startswith(b"From ") and b"\n" in sample:  # mbox separator line
        sample = sample.split(b"\n", 1)[1]
    lines = sample.split(b"\n", 8)[:8]
    if not lines or not _ANY_HEADER.match(lines[0]):
        return False
    known = _KNOWN_HEADERS.match(lines[0]) is not None
    hinted = declared_type.lower().startswith("message/") or filename.lower().endswith(".eml")
    if not (known or hinted):
        return False
    # A second header (or a folded continuation) must follow: one "Date: ..." line is prose.
    for line in lines[1:]:
        if not line.strip():
            return hinted
        return line[:1] in (b" ", b"\t") or _ANY_HEADER.match(line) is not None
    return hinted or known


def _sniff_text(data: bytes, filename: str, declared_type: str) -> str:
    sample = data[:65536]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text has NULs but is text
        decoded = sample.decode("utf-16", "replace")[:2048].lower()
        return HTML if "<html" in decoded or "<!doctype html" in decoded else TEXT
    if b"\x00" in sample:
        return OCTET
    if len(_CONTROL.findall(sample)) > len(sample) // 100:
        return OCTET
    if looks_like_message(data, declared_type, filename):
        return MESSAGE
    head = sample[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml"):
        return HTML if b"<html" in head else XML
    if head.startswith(b"<") and _HTML_MARK.search(head):
        return HTML
    return TEXT
