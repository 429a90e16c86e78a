"""Copy each institution's current report file(s) into a folder, with an index spreadsheet.

What a clerk prints or forwards to leaders.  The bytes come from the raw store:
the stored message is reparsed, the report's item is found by its path in
`parsed.walk_parts()`, and its exact bytes are located in the MIME tree (and
inside zips and attached messages) by their SHA-256.  A report written in the
mail body becomes a .txt; a report whose bytes cannot be recovered is exported
as the whole message (.eml) so nothing is silently missing.

File names are ours, never the sender's: `{row:02d}_{institution}_{YYYYMMDD}.{ext}`
with the extension from the sniffed content type, made safe for Windows and
Linux, and every file is written inside the target folder only.
"""

from __future__ import annotations

import base64
import email
import hashlib
import io
import os
import quopri
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pandas as pd

from parsers.documents import sniff as ct
from parsers.documents import sniff_content_type
from parsers.types import ParsedMessage, Part
from pipeline.context import Context, current_actor
from pipeline.domain.roster import load_roster, resolve_institution
from pipeline.domain.status import InstitutionStatus, Submission
from pipeline.errors import IntakeError
from pipeline.inbound.reparse import reparse
from pipeline.labels_zh import label
from pipeline.outputs.active import active_reason, neutral_extension
from pipeline.outputs.sheets import excel_time
from pipeline.outputs.snapshot import build_snapshot
from pipeline.outputs.workbook import write_sheet
from pipeline.vocab import Action, ItemPath, Status
from storage.audit import save_audit
from storage.errors import StorageError
from storage.messages import fetch_message

INDEX_NAME = "00_报告清单.xlsx"
MAX_NAME_BYTES = 180  # Linux allows 255 bytes, Windows 255 UTF-16 units: leave room for "_2" and copies
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"} | {
    f"{base}{n}" for base in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³", "0")
}
EXTENSIONS = {
    ct.PDF: "pdf", ct.DOCX: "docx", ct.DOCM: "docm", ct.DOTX: "dotx", ct.DOTM: "dotm", ct.XLSX: "xlsx",
    ct.XLSM: "xlsm", ct.XLTX: "xltx", ct.XLSB: "xlsb", ct.PPTX: "pptx", ct.OFD: "ofd", ct.ZIP: "zip",
    ct.DOC: "doc", ct.XLS: "xls", ct.PPT: "ppt", ct.MSG: "msg", ct.RAR: "rar", ct.SEVEN_Z: "7z",
    ct.GZIP: "gz", ct.BZIP2: "bz2", ct.XZ: "xz", ct.TAR: "tar", ct.RTF: "rtf", ct.MESSAGE: "eml",
    ct.TEXT: "txt", ct.HTML: "html", ct.XML: "xml", "image/png": "png", "image/jpeg": "jpg",
    "image/gif": "gif", "image/tiff": "tif", "image/bmp": "bmp", "image/webp": "webp",
    "application/vnd.oasis.opendocument.text": "odt", "application/vnd.oasis.opendocument.spreadsheet": "ods",
}  # fmt: skip
# An OLE2 file the sniffer could not pin down: the sender's extension is believed only if it is one of these.
_OLE_EXTENSIONS = {"doc", "wps", "xls", "et", "ppt", "dps"}


@dataclass(frozen=True, slots=True)
class ExportedFile:
    institution: str
    row: int
    path: Path  # inside the target folder
    message_id: int
    item_path: str
    original_name: str
    content_type: str
    size: int
    received_at: datetime
    note: str = ""
    active: str = ""  # why it is active content (exported under a neutral extension); "" when not


@dataclass
class ExportSummary:
    folder: Path
    index: Path | None = None
    files: list[ExportedFile] = field(default_factory=list)
    without_report: list[str] = field(default_factory=list)  # institutions with nothing to export
    problems: list[str] = field(default_factory=list)


# -- names --------------------------------------------------------------------------------------


def safe_filename(name: str, *, max_bytes: int = MAX_NAME_BYTES, fallback: str = "文件") -> str:
    """A file name valid on Windows and Linux that cannot leave its folder.

    No path separators, <>:"|?*, control or bidi-override characters; no reserved
    device names (CON, COM1, …, also with an extension); no leading or trailing dots
    and spaces; at most `max_bytes` UTF-8 bytes, cut on a character boundary with the
    extension kept.
    """
    text = _FORBIDDEN.sub("_", unicodedata.normalize("NFC", name))
    text = re.sub(r"_{2,}", "_", text).strip(" .")
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > 10 or not ext.isalnum():
        stem, ext = text, ""
    stem = stem.strip(" .") or fallback
    if stem.split(".")[0].strip().upper() in _RESERVED:
        stem = "_" + stem
    suffix = f".{ext}" if ext else ""
    budget = max(1, max_bytes - len(suffix.encode("utf-8")))
    encoded = stem.encode("utf-8")
    if len(encoded) > budget:
        stem = encoded[:budget].decode("utf-8", "ignore").rstrip(" .") or fallback
    return stem + suffix


def extension_for(content_type: str, original_name: str = "") -> str:
    """The extension for a sniffed content type ("bin" when unknown; never the sender's .exe)."""
    if content_type in EXTENSIONS:
        return EXTENSIONS[content_type]
    if content_type.startswith(ct.ODF):
        return "odf"
    if content_type == ct.OLE:
        claimed = original_name.rpartition(".")[2].lower() if "." in original_name else ""
        return claimed if claimed in _OLE_EXTENSIONS else "bin"
    return "bin"


def report_filename(row: int, institution: str, received_at: datetime, ext: str, *, tz, seq: int = 1) -> str:  # noqa: ANN001
    day = received_at.astimezone(tz).strftime("%Y%m%d")
    extra = f"_{seq}" if seq > 1 else ""
    name = safe_filename(institution, max_bytes=MAX_NAME_BYTES - 30)
    return safe_filename(f"{row:02d}_{name}_{day}{extra}.{ext}")


# -- the export -------------------------------------------------------------------------------


def export_reports(
    ctx: Context,
    to_dir: Path,
    institution: str | None = None,
    *,
    as_of: datetime | None = None,
    by: str | None = None,
) -> ExportSummary:
    """Write the current report file(s) of each institution (or one: name, alias or row) and an index into `to_dir`."""
    tz = ctx.config.campaign.timezone
    moment = as_of or datetime.now(tz)
    roster = load_roster(ctx.config.campaign)
    name = resolve_institution(roster, institution) if institution is not None else ""
    folder = to_dir.expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise IntakeError(f"无法创建导出文件夹 {folder}：{err.strerror or err}") from err
    summary = ExportSummary(folder)
    rows = [r for r in build_snapshot(ctx, moment, roster=roster).statuses if not name or r.institution.name == name]
    parsed_cache: dict[int, tuple[bytes, ParsedMessage]] = {}
    index_rows: list[dict] = []
    for r in rows:
        current = _current_items(r)
        if not current:
            summary.without_report.append(r.institution.name)
            index_rows.append(_index_row(r, None, tz))
            continue
        for seq, (sub, item_path) in enumerate(current, 1):
            try:
                exported = _export_one(ctx, folder, r, sub, item_path, seq, parsed_cache)
            except OSError as err:
                summary.problems.append(f"{r.institution.name}：写文件失败（{err.strerror or err}）")
                continue
            except StorageError as err:  # raw message missing or damaged: listed, the rest still exported
                summary.problems.append(f"{r.institution.name}：{err}")
                continue
            summary.files.append(exported)
            if exported.note:
                summary.problems.append(f"{r.institution.name}：{exported.note}")
            index_rows.append(_index_row(r, exported, tz))
    summary.index = _write_index(folder, index_rows)
    with ctx.db.begin() as conn:
        save_audit(conn, actor=current_actor(by), action=Action.EXPORT_REPORTS, target=str(folder),
                   institution=name,
                   details={"to": str(folder), "files": len(summary.files), "as_of": moment.isoformat(),
                            "without_report": len(summary.without_report)})  # fmt: skip
    return summary


def _current_items(row: InstitutionStatus) -> list[tuple[Submission, str]]:
    """The current version: every report item of the latest submission not outranked by an earlier one
    from a more trusted sender (e.g. a Word file and its scan)."""
    last = row.last
    if last is None:
        return []
    return [(last, path) for path in dict.fromkeys(last.item_paths)]


def _export_one(ctx: Context, folder: Path, row: InstitutionStatus, sub: Submission, item_path: str, seq: int,
                cache: dict[int, tuple[bytes, ParsedMessage]]) -> ExportedFile:  # fmt: skip
    raw, parsed = _load(ctx, sub.message_id, cache)
    note = ""
    part = parsed.part_at(item_path)
    if item_path == ItemPath.BODY:
        data = _body_text(parsed).encode("utf-8-sig")
        content_type, original = ct.TEXT, "（邮件正文）"
    elif part is not None:
        original = part.filename
        content_type = part.content_type
        found = find_part_bytes(raw, part, ctx.config.limits.max_expanded_bytes)
        if found is None:
            data, content_type = raw, ct.MESSAGE
            note = f"附件 {part.filename or part.path} 的内容无法取出，已导出整封邮件"
        else:
            data = found
    else:
        link = parsed.linked_at(item_path)
        if link is not None:  # a "超大附件": the file is not in the mail and is never fetched
            note = f"「{link.filename or item_path}」是超大附件的下载链接，系统不下载：已导出整封邮件，请打开链接 {link.url} 下载"
        elif item_path != ItemPath.MESSAGE:
            note = f"条目 {item_path} 在重新解析后不存在，已导出整封邮件"
        data, content_type, original = raw, ct.MESSAGE, parsed.subject
    ext = extension_for(content_type, original)
    active = active_reason(content_type, original)
    if active:
        ext = neutral_extension(ext)
        note = "；".join(x for x in (note, f"活动内容（{active}），已改为 .bin 扩展名导出，请勿直接打开") if x)
    name = report_filename(row.institution.row, row.institution.name, sub.received_at, ext,
                           tz=ctx.config.campaign.timezone, seq=seq)  # fmt: skip
    target = _write_inside(folder, name, data)
    return ExportedFile(row.institution.name, row.institution.row, target, sub.message_id, item_path,
                        original, content_type, len(data), sub.received_at, note, active)  # fmt: skip


def _load(
    ctx: Context, message_id: int, cache: dict[int, tuple[bytes, ParsedMessage]]
) -> tuple[bytes, ParsedMessage]:
    if message_id not in cache:
        with ctx.db.connect() as conn:
            row = fetch_message(conn, message_id)
        if row is None:
            raise LookupError(f"message {message_id} vanished")
        raw = ctx.raw.get(row.raw_path, row.sha256)
        cache.clear()  # one message at a time: raw mail can be large
        cache[message_id] = (raw, reparse(ctx, row))
    return cache[message_id]


def _body_text(parsed: ParsedMessage) -> str:
    header = f"主题：{parsed.subject}\n发件人：{parsed.sender}\n\n"
    return (header + parsed.text_body).replace("\r\n", "\n").replace("\n", "\r\n")


def _write_inside(folder: Path, name: str, data: bytes) -> Path:
    """Write atomically to folder/name; refuse anything that would resolve outside the folder."""
    target = folder / name
    if target.parent != folder or Path(name).name != name or name in (".", ".."):
        raise OSError(f"unsafe file name {name!r}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        # os.replace swaps a symlink at the destination instead of writing through it.
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _index_row(r: InstitutionStatus, f: ExportedFile | None, tz) -> dict:  # noqa: ANN001
    local = lambda m: excel_time(m, tz)  # noqa: E731  # Excel wall clock, to the minute's format, no microseconds
    return {
        "序号": r.institution.row,
        "机构": r.institution.name,
        "区": r.institution.district,
        "状态": label(r.status, Status),
        "首次收到": local(r.first_received_at),
        "本版收到": local(f.received_at) if f else None,
        "导出文件": f.path.name if f else "",
        "原附件名": f.original_name if f else "",
        "类型": f.content_type if f else "",
        "大小（字节）": f.size if f else None,
        "邮件编号": f.message_id if f else None,
        "条目": f.item_path if f else "",
        "活动内容": f.active if f else "",
        "备注": (f.note if f else "") or ("免报：" + r.exempt_reason if r.status == Status.EXEMPT else ""),
    }


def _write_index(folder: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    for column in ("大小（字节）", "邮件编号"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".index-", suffix=".xlsx")
    os.close(fd)
    try:
        with pd.ExcelWriter(tmp, engine="xlsxwriter",
                            engine_kwargs={"options": {"strings_to_formulas": False, "strings_to_urls": False}}) as w:  # fmt: skip
            write_sheet(w, "报告清单", frame)
        os.replace(tmp, folder / INDEX_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / INDEX_NAME


# -- finding an item's bytes ------------------------------------------------------------------


def find_part_bytes(raw: bytes, part: Part, budget: int) -> bytes | None:
    """The exact bytes of `part` inside the raw message, matched by size and SHA-256 (None if absent)."""
    finder = _Finder(part.sha256, part.size, budget)
    return finder.in_message(raw, depth=0)


class _Finder:
    """Depth-first search of a message's leaves, zip members and attached messages, bounded in bytes."""

    MAX_DEPTH = 8

    def __init__(self, sha256: str, size: int, budget: int) -> None:
        self.sha256 = sha256
        self.size = size
        self.budget = budget

    def match(self, data: bytes) -> bool:
        return len(data) == self.size and hashlib.sha256(data).hexdigest() == self.sha256

    def in_message(self, raw: bytes, depth: int) -> bytes | None:
        if depth > self.MAX_DEPTH:
            return None
        try:
            msg = email.message_from_bytes(raw, policy=compat32)
        except Exception:  # the parser coped with these bytes once; a stdlib failure just means "not here"
            return None
        for node in msg.walk():
            for blob in _blobs(node):
                found = self.in_blob(blob, depth)
                if found is not None:
                    return found
        return None

    def in_blob(self, blob: bytes, depth: int) -> bytes | None:
        if self.match(blob):
            return blob
        if depth >= self.MAX_DEPTH:
            return None
        if blob[:4] == b"PK\x03\x04" or blob[:4] == b"PK\x05\x06":
            return self.in_zip(blob, depth + 1)
        if sniff_content_type(blob[:65536]) == ct.MESSAGE:
            return self.in_message(blob, depth + 1)
        return None

    def in_zip(self, blob: bytes, depth: int) -> bytes | None:
        try:
            zf = zipfile.ZipFile(io.BytesIO(blob))
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
        with zf:
            for info in zf.infolist():
                if info.is_dir() or info.flag_bits & 0x1 or info.file_size > self.budget:
                    continue
                nested = info.filename.lower().endswith((".zip", ".eml"))
                if info.file_size != self.size and not nested:
                    continue
                try:
                    data = zf.read(info)
                except Exception:  # corrupt member: the parser listed it unreadable; keep looking
                    continue
                self.budget -= len(data)
                found = self.in_blob(data, depth)
                if found is not None:
                    return found
        return None


def _blobs(node: Message) -> list[bytes]:
    """Candidate byte strings of one MIME node: its decoded payload, or an attached message's bytes."""
    if node.get_content_type() == "message/rfc822" or (
        node.get_content_maintype() == "message" and node.is_multipart()
    ):
        out = []
        payload = node.get_payload()
        if isinstance(payload, list) and payload:
            for serialise in (
                lambda m: m.as_bytes(policy=compat32),
                lambda m: m.as_string(policy=compat32).encode("utf-8", "surrogateescape"),
            ):
                try:
                    out.append(serialise(payload[0]))
                except Exception:
                    continue
            body = payload[0].get_payload() if isinstance(payload[0], Message) else None
            text = body if isinstance(body, str) else ""
        else:
            text = payload if isinstance(payload, str) else ""
        raw = text.encode("ascii", "surrogateescape") if text else b""
        for decode in (base64.b64decode, quopri.decodestring):
            try:
                out.append(decode(raw))
            except Exception:
                continue
        return [b for b in out if b]
    if node.is_multipart():
        return []
    try:
        data = node.get_payload(decode=True)
    except Exception:
        return []
    return [data] if isinstance(data, bytes) and data else []
