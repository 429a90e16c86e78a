"""Is a file given to `intake ingest` mail at all?  Judged by its bytes, with a Chinese reason when not.

Mail is: RFC 5322 header lines at the start (`parsers.documents.sniff.looks_like_message`: a
field name and a colon, a second header or a folded line after it; an mbox "From " line in
front is allowed), or an Outlook .msg (an OLE2 file whose root holds `__substg1.0_` property
streams).  mbox files and Maildir folders are recognised before this, by their layout.
Everything else — zero bytes, blanks, a PDF, a photo, a zip, a Word file, plain text without
headers, unknown binary data — is refused: it is reported on the command's output and
recorded (storage/refusals.py), never stored as an empty "unrelated" message.

A file named like mail (.eml, .mail, .msg, no suffix, a Maildir or mbox entry) needs only a
header-shaped first line; any other name needs a first line that is a well-known header
(From:, Received:, Subject: ...), so a text note with a colon in it is not taken for mail.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsers.documents import sniff as ct
from parsers.documents.sniff import looks_like_message, sniff
from pipeline.vocab import Refusal

HEAD_BYTES = 64 * 1024  # what is read to decide; the rest only when the file is mail
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2: .msg, but also .doc / .xls / .wps — read whole to tell
_NOT_MAIL_TYPES = frozenset({ct.TEXT, ct.HTML, ct.XML, ct.OCTET, ct.MESSAGE})


@dataclass(frozen=True, slots=True)
class Verdict:
    """`refusal` is None for mail; else why not, and the sniffed content type in `detail`."""

    refusal: Refusal | None
    detail: str = ""

    @property
    def is_mail(self) -> bool:
        return self.refusal is None


def judge(data: bytes, *, named_as_mail: bool) -> Verdict:
    """Whether `data` (the file's first HEAD_BYTES, or all of it for an OLE2 file) is a message."""
    if not data.strip():
        return Verdict(Refusal.EMPTY, "blank" if data else "")
    if data.startswith(OLE_MAGIC):
        kind = sniff(data).content_type
        return Verdict(None) if kind == ct.MSG else Verdict(Refusal.DOCUMENT, kind)
    if looks_like_message(data[:HEAD_BYTES], filename="mail.eml" if named_as_mail else ""):
        return Verdict(None)
    found = sniff(data[:HEAD_BYTES])
    if found.zf is not None:
        found.zf.close()
    kind = found.content_type
    return Verdict(Refusal.NOT_MAIL if kind in _NOT_MAIL_TYPES else Refusal.DOCUMENT, kind)


_TYPE_NAMES: dict[str, str] = {
    ct.PDF: "PDF 文件",
    ct.DOCX: "Word 文档（.docx）",
    ct.DOCM: "含宏的 Word 文档（.docm）",
    ct.DOTX: "Word 模板（.dotx）",
    ct.DOTM: "含宏的 Word 模板（.dotm）",
    ct.DOC: "Word 97-2003 或 WPS 文档（.doc/.wps）",
    ct.XLSX: "Excel 表格（.xlsx）",
    ct.XLSM: "含宏的 Excel 表格（.xlsm）",
    ct.XLTX: "Excel 模板（.xltx）",
    ct.XLSB: "Excel 二进制表格（.xlsb）",
    ct.XLS: "Excel 97-2003 表格（.xls/.et）",
    ct.PPT: "PowerPoint 演示文稿（.ppt）",
    ct.PPTX: "PowerPoint 演示文稿（.pptx）",
    ct.OFD: "OFD 版式文件",
    ct.ZIP: "ZIP 压缩包",
    ct.RAR: "RAR 压缩包",
    ct.SEVEN_Z: "7z 压缩包",
    ct.GZIP: "gzip 压缩文件",
    ct.BZIP2: "bzip2 压缩文件",
    ct.XZ: "xz 压缩文件",
    ct.TAR: "tar 归档文件",
    ct.CAB: "CAB 压缩文件",
    ct.EXE: "可执行程序",
    ct.RTF: "RTF 文档",
    ct.TNEF: "Outlook 的 winmail.dat 附件（不是完整的邮件）",
    ct.OLE: "Office 复合文档（OLE，不是 Outlook 邮件）",
    ct.OLE_ENCRYPTED: "加密的 Office 文件",
    ct.HEIC: "HEIC 照片",
    ct.HTML: "网页（HTML）文件",
    ct.XML: "XML 文件",
    ct.TEXT: "文本文件",
    "image/png": "PNG 图片",
    "image/jpeg": "JPEG 图片",
    "image/gif": "GIF 图片",
    "image/tiff": "TIFF 图片",
    "image/bmp": "BMP 图片",
    "image/webp": "WebP 图片",
}
_ERRORS: dict[str, str] = {
    "PermissionError": "没有读取权限",
    "FileNotFoundError": "文件已被移走或删除",
    "IsADirectoryError": "这是文件夹",
    "TimeoutError": "读取超时",
}


def type_name(content_type: str) -> str:
    """The Chinese name of a sniffed content type (for the clerk: "PDF 文件", "PNG 图片" ...)."""
    if content_type.startswith(ct.ODF):
        return "OpenDocument 文档（.odt/.ods）"
    return _TYPE_NAMES.get(content_type, "无法识别的文件")


def spaced(name: str) -> str:
    """A space between a Chinese word and a Latin one ("这是 PDF 文件"), as Chinese typesetting has it."""
    return f" {name}" if name[:1].isascii() else name


def describe_refusal(reason: Refusal | str, detail: str = "") -> str:
    """What a clerk reads about a refused file: what it is and why it was not taken in, in Chinese.

    `detail` is what `judge` or the caller recorded (a sniffed content type, an OS error's class
    name); it is only ever mapped to words here, never shown as it is.
    """
    if reason == Refusal.EMPTY:
        return "文件只有空白字符，不是邮件，未导入" if detail == "blank" else "空文件（0 字节），不是邮件，未导入"
    if reason == Refusal.DOCUMENT:
        return f"这是{spaced(type_name(detail))}，不是邮件，未导入"
    if reason == Refusal.NOT_MAIL:
        if detail in (ct.OCTET, ""):
            return "无法识别的二进制数据，不是邮件，未导入"
        return f"{type_name(detail)}，开头没有邮件头（如 From:、Subject:），不是邮件，未导入"
    if reason == Refusal.UNREADABLE:
        return f"无法读取文件（{_ERRORS.get(detail, '系统读取出错')}），未导入"
    if reason == Refusal.DAMAGED_ENTRY:
        return "mbox 文件中的这一封邮件无法读取（文件可能已损坏），未导入"
    if reason == Refusal.STORE_FAILED:
        return "看起来是邮件，但保存时出错，未导入（运行 intake -v ingest 查看日志）"
    return "未导入"
