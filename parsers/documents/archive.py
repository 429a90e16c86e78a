"""Zip archives: central-directory safety checks, capped member reads, member parts.

Python 3.11.7's zipfile lacks the overlapping-entry check of CVE-2024-0450, and it trusts
declared sizes, so every zip (including the zip inside a docx or xlsx) is vetted by
`check_zip` from its central directory before any member is decompressed, and members
are then read in chunks under a running cap.  Members are only ever held in memory:
names like "../../etc/passwd" stay names, nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import struct
import zipfile
import zlib
from dataclasses import replace

from parsers.documents.base import Context, LimitExceeded, Outcome, human_size, short, unreadable
from parsers.documents.xmlguard import DtdScanner
from parsers.types import ParseLimits, Part, PartKind, Problem, ProblemCode

_CHUNK = 1 << 20
_RATIO_FLOOR = 1_000_000  # small members may legitimately compress extremely well (blank xml)
_ENCRYPTED = 0x1
_UTF8_NAME = 0x800

_OFFICE_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".docm": "application/vnd.ms-word.document.macroEnabled.12",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".wps": "application/vnd.ms-works",
    ".et": "application/vnd.ms-excel",
    ".rar": "application/vnd.rar",
    ".7z": "application/x-7z-compressed",
    ".ofd": "application/ofd",
    ".eml": "message/rfc822",
}
_AES = 99  # WinZip AES: the real method is in the 0x9901 extra field
_MIME = mimetypes.MimeTypes(filenames=())  # built-in table only: same answer on every host


def read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, *, scan_xml: bool = False, pwd: bytes | None = None
) -> bytes:
    """Decompress one member into memory, never more than `cap` bytes.

    The declared size is checked first, then the real output is counted chunk by chunk,
    because declared sizes can lie.  Raises LimitExceeded, UnsafeXml (when `scan_xml`),
    zipfile.BadZipFile (bad CRC, bad header), NotImplementedError (compression method).
    """
    if info.file_size > cap:
        raise LimitExceeded(
            f"member {info.filename!r} declares {human_size(info.file_size)}, "
            f"over the {human_size(cap)} left"
        )
    scanner = DtdScanner(info.filename) if scan_xml else None
    chunks: list[bytes] = []
    total = 0
    # ZipFile.open itself, not a GuardedZipFile override: this function is the guard.
    with zipfile.ZipFile.open(zf, info, pwd=pwd) as fp:
        while chunk := fp.read(_CHUNK):
            total += len(chunk)
            if total > cap:
                raise LimitExceeded(f"member {info.filename!r} expands beyond {human_size(cap)}")
            if scanner is not None:
                scanner.feed(chunk)
            chunks.append(chunk)
    if scanner is not None:
        scanner.finish()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_zip(zf: zipfile.ZipFile, limits: ParseLimits, *, max_members: int | None = None) -> Problem | None:
    """Vet an archive from its central directory alone; return a problem, or None when safe.

    Checks member count, total declared size, per-member compression ratio and
    overlapping or duplicated local entries (the "better zip bomb" that reuses one
    compressed kernel for many entries).  Nothing is decompressed.
    """
    infos = zf.infolist()
    member_cap = limits.max_archive_members if max_members is None else max_members
    if len(infos) > member_cap:
        return Problem(ProblemCode.ARCHIVE_TOO_MANY, f"zip has {len(infos)} members, over the limit of {member_cap}")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_expanded_bytes:
        return Problem(ProblemCode.ZIP_BOMB, f"declared expanded size {human_size(declared)} exceeds limit")
    for info in infos:
        if info.file_size > _RATIO_FLOOR:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                return Problem(
                    ProblemCode.ZIP_BOMB,
                    f"member {info.filename!r} compression ratio {ratio:.0f}:1 "
                    f"exceeds limit {limits.max_compression_ratio:.0f}:1",
                )
    return _check_overlap(zf, infos)


def _check_overlap(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> Problem | None:
    fp = zf.fp
    if fp is None:
        return Problem(ProblemCode.READER_FAILED, "zip is closed")
    end_of_data = getattr(zf, "start_dir", None)
    previous_end = 0
    previous_offset = -1
    for info in sorted(infos, key=lambda i: i.header_offset):
        offset = info.header_offset
        if offset == previous_offset:
            return Problem(ProblemCode.ZIP_BOMB, "overlapping entries (two members share one local header)")
        if offset < previous_end:
            return Problem(ProblemCode.ZIP_BOMB, "overlapping entries (member data overlaps the next member)")
        fp.seek(offset)
        header = fp.read(30)
        extra = 0
        if len(header) == 30 and header[:4] == b"PK\x03\x04":
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            extra = name_len + extra_len
        previous_offset = offset
        previous_end = offset + 30 + extra + info.compress_size
        if end_of_data is not None and previous_end > end_of_data:
            return Problem(ProblemCode.ZIP_BOMB, "overlapping entries (member data overlaps the central directory)")
    return None


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author saw it.

    Chinese Windows tools store GBK names without the UTF-8 flag; zipfile decodes those
    as cp437, so the raw bytes are recovered and decoded as UTF-8, then GB18030.
    """
    if info.flag_bits & _UTF8_NAME:
        return info.filename
    unicode_name = _unicode_path_extra(info)
    if unicode_name:
        return unicode_name
    try:
        raw = info.orig_filename.encode("cp437")
    except UnicodeEncodeError:  # decoded with another metadata_encoding: trust it
        return info.filename
    raw = raw.split(b"\x00", 1)[0]
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unicode_path_extra(info: zipfile.ZipInfo) -> str:
    """Info-ZIP Unicode Path extra field (0x7075), written by 7-Zip/WinRAR alongside a GBK name."""
    extra = info.extra
    pos = 0
    while pos + 4 <= len(extra):
        field_id, size = struct.unpack("<HH", extra[pos : pos + 4])
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if field_id != 0x7075 or len(body) < 5 or body[0] != 1:
            continue
        try:
            raw_name = info.orig_filename.encode("cp437")
        except UnicodeEncodeError:
            return ""
        if struct.unpack("<I", body[1:5])[0] != zlib.crc32(raw_name):
            return ""  # the name was changed after the extra field was written: stale
        try:
            return body[5:].decode("utf-8")
        except UnicodeDecodeError:
            return ""
    return ""


def declared_type_for(name: str) -> str:
    """What a member's name claims (zip members have no MIME header)."""
    lower = name.lower()
    dot = lower.rfind(".")
    if dot != -1 and lower[dot:] in _OFFICE_TYPES:
        return _OFFICE_TYPES[lower[dot:]]
    return _MIME.guess_type(lower, strict=False)[0] or ""


def _unsafe(name: str) -> bool:
    parts = re.split(r"[/\\]", name)
    return name.startswith(("/", "\\")) or bool(re.match(r"[A-Za-z]:", name)) or ".." in parts


def read_zip(ctx: Context) -> Outcome:
    """Kind ARCHIVE: one child Part per file member, in central-directory order."""
    zf = ctx.zf
    if zf is None:
        return unreadable(ProblemCode.TRUNCATED, f"zip: bad zip central directory ({ctx.zip_error})")
    limits = ctx.limits
    if ctx.archive_depth >= limits.max_archive_depth:
        return unreadable(ProblemCode.ARCHIVE_TOO_DEEP, f"more than {limits.max_archive_depth} levels")
    problem = check_zip(zf, limits)
    if problem:
        return unreadable(problem)
    # Directories: "/"-terminated, or "\\"-terminated and empty (Windows tools). (is_dir() fails on "".)
    infos = [
        i
        for i in zf.infolist()
        if not (i.filename.endswith("/") or (i.filename.endswith("\\") and not i.file_size))
    ]
    budget = ctx.budget
    declared = sum(i.file_size for i in infos)
    if declared > budget.expanded_left:
        return unreadable(
            ProblemCode.ZIP_BOMB,
            f"declared expanded size {human_size(declared)} exceeds the "
            f"{human_size(budget.expanded_left)} left for this attachment"
        )
    if len(infos) > budget.members_left:
        return unreadable(ProblemCode.ARCHIVE_TOO_MANY, f"limit {limits.max_archive_members} per attachment")
    budget.members_left -= len(infos)
    children: list[Part] = []
    warnings: list[Problem] = []
    for index, info in enumerate(infos, 1):
        name = member_name(info)
        path = f"{ctx.path}/{index}"
        declared_type = declared_type_for(name)
        pwd = None
        if info.flag_bits & _ENCRYPTED:
            pwd, why = _password_for(zf, info, ctx.passwords, ctx.data)
            if pwd is None:
                children.append(_member_part(ctx, info, name, path, declared_type, Problem(ProblemCode.ENCRYPTED_ZIP, why)))
                continue
        try:
            if pwd is not None and info.compress_type == _AES:
                data = _read_aes_member(ctx.data, info, budget.expanded_left, pwd)
            else:
                data = read_member(zf, info, budget.expanded_left, pwd=pwd)
        except LimitExceeded as exc:
            children.append(_member_part(ctx, info, name, path, declared_type, exc.problem))
            warnings.append(Problem(ProblemCode.ZIP_BOMB, f"stopped at member {index}: expansion limit reached"))
            break
        except NotImplementedError:
            reason = Problem(ProblemCode.UNSUPPORTED, f"zip compression method {info.compress_type}")
            children.append(_member_part(ctx, info, name, path, declared_type, reason))
            continue
        except Exception as exc:  # BadZipFile (bad CRC, header mismatch), zlib.error, EOFError
            reason = Problem(ProblemCode.CORRUPT, f"zip member: {short(exc)}")
            children.append(_member_part(ctx, info, name, path, declared_type, reason))
            continue
        budget.expanded_left -= len(data)
        assert ctx.read_child is not None
        child = ctx.read_child(data, name, declared_type, path, ctx.archive_depth + 1)
        if _unsafe(name):
            child = _with_warning(child, Problem(ProblemCode.UNSAFE_NAME, "unsafe path in member name (kept as a name only)"))
        children.append(child)
    return Outcome(PartKind.ARCHIVE, children=tuple(children), warnings=warnings)


def read_tnef(ctx: Context) -> Outcome:
    """Kind ARCHIVE for an Outlook winmail.dat: its attached files are children, read like zip members."""
    from parsers.outlook import OutlookError, tnef_files

    limits, budget = ctx.limits, ctx.budget
    if ctx.archive_depth >= limits.max_archive_depth:
        return unreadable(ProblemCode.ARCHIVE_TOO_DEEP, f"more than {limits.max_archive_depth} levels")
    if not _tnef_complete(ctx.data):
        return unreadable(ProblemCode.TRUNCATED, "winmail.dat ends inside an attribute")
    try:
        files = tnef_files(ctx.data, max_files=budget.members_left + 1)
    except OutlookError as exc:
        return unreadable(exc.problem)
    if len(files) > budget.members_left:
        return unreadable(ProblemCode.ARCHIVE_TOO_MANY, f"limit {limits.max_archive_members} per attachment")
    budget.members_left -= len(files)
    children: list[Part] = []
    assert ctx.read_child is not None
    for index, (name, data) in enumerate(files, 1):
        # The files are stored, not compressed, inside the TNEF stream: they cost no expansion,
        # but they still count against the bytes this attachment may hand to the readers.
        budget.expanded_left -= len(data)
        children.append(ctx.read_child(data, name, declared_type_for(name), f"{ctx.path}/{index}", ctx.archive_depth + 1))
    if not children:
        return unreadable(ProblemCode.UNSUPPORTED, "winmail.dat carries no files (a message body only)")
    return Outcome(PartKind.ARCHIVE, children=tuple(children))


def _tnef_complete(data: bytes) -> bool:
    """True when the TNEF attributes (level, id, length, data, checksum) exactly fill the stream."""
    pos = 6  # signature and key
    while pos < len(data):
        if pos + 9 > len(data):
            return False
        length = struct.unpack_from("<I", data, pos + 5)[0]
        pos += 9 + length + 2
    return pos == len(data)


def _password_for(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, passwords: tuple[str, ...], data: bytes
) -> tuple[bytes | None, str]:
    """The first password from the mail that opens this member, or None and why not.

    Only the passwords the sender wrote in the mail are tried (never a guess).  ZipCrypto is
    checked by the stdlib on open (a wrong password fails its check byte); AES members
    (method 99) are opened with pyzipper.
    """
    if not passwords:
        return None, "no password in the mail"
    aes = info.compress_type == _AES
    if aes:
        try:
            import pyzipper  # noqa: F401
        except ImportError:
            return None, "AES-encrypted member: pyzipper not installed"
    for password in passwords:
        for encoding in ("utf-8", "gbk"):
            try:
                pwd = password.encode(encoding)
            except UnicodeEncodeError:
                continue
            try:
                if aes:
                    _read_aes_member(data, info, 1, pwd, probe=True)
                else:
                    with zipfile.ZipFile.open(zf, info, pwd=pwd) as fp:
                        fp.read(1)
            except (RuntimeError, zipfile.BadZipFile, zlib.error, ValueError, EOFError, KeyError):
                continue  # wrong password ("Bad password for file") or a false check-byte match
            return pwd, ""
    return None, f"the {len(passwords)} password(s) in the mail did not open it"


def _read_aes_member(data: bytes, info: zipfile.ZipInfo, cap: int, pwd: bytes, *, probe: bool = False) -> bytes:
    """Decrypt one WinZip-AES member with pyzipper, never more than `cap` bytes (`probe`: one byte)."""
    import io

    import pyzipper

    with pyzipper.AESZipFile(io.BytesIO(data)) as az, az.open(az.getinfo(info.filename), pwd=pwd) as fp:
        if probe:
            fp.read(1)
            return b""
        chunks: list[bytes] = []
        total = 0
        while chunk := fp.read(_CHUNK):
            total += len(chunk)
            if total > cap:
                raise LimitExceeded(f"member {info.filename!r} expands beyond {human_size(cap)}")
            chunks.append(chunk)
    return b"".join(chunks)


def _member_part(
    ctx: Context, info: zipfile.ZipInfo, name: str, path: str, declared_type: str, problem: Problem
) -> Part:
    """An UNREADABLE member whose content was never decompressed (hash of its stored bytes)."""
    raw = b""
    start = info.header_offset
    header = ctx.data[start : start + 30]
    if len(header) == 30 and header[:4] == b"PK\x03\x04":
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        begin = start + 30 + name_len + extra_len
        raw = ctx.data[begin : begin + info.compress_size]
    return Part(
        path=path,
        filename=name,
        content_type="application/octet-stream",
        declared_type=declared_type,
        size=info.file_size,
        sha256=hashlib.sha256(raw).hexdigest(),
        kind=PartKind.UNREADABLE,
        problem=problem,
    )


def _with_warning(part: Part, warning: Problem) -> Part:
    return replace(part, warnings=(*part.warnings, warning))
