"""What a correction mail (补正通知) says about one report file that could not be read, in Chinese.

Only problems the sender can fix get a request; by then the file has been through every
reader, OCR included, so a request is for what truly failed.  Each wording says what is wrong
and what to send instead, chosen by the parser's problem code (never its English detail) and
by the type the file really had: a unit that sent a PDF is never asked for a PDF, one that
sent a Word file never for a Word file; an encrypted file is asked for without its password;
a scan the OCR could not read is asked for more clearly, never "not as a scan" — the reminders
ask for a stamped (盖章) report, and a stamped scan is what many units can send.

Problems of our own making (a reader failed, the parse was stopped at a time or memory limit,
the message hit the attachment limit) ask nothing of the sender: the clerk sees the file in the
review queue and the receipt only acknowledges it.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsers.documents import sniff as ct
from parsers.types import ProblemCode
from pipeline.inbound.mailsniff import spaced, type_name

_WORD_TYPES = frozenset({ct.DOCX, ct.DOCM, ct.DOTX, ct.DOTM, ct.DOC, ct.RTF})
_ARCHIVE = "不压缩、直接作为邮件附件的报告文件"


@dataclass(frozen=True, slots=True)
class Correction:
    """One unreadable file: `what` is wrong, and what to `send` instead (both Chinese, no text from the mail)."""

    what: str
    send: str

    @property
    def line(self) -> str:
        return f"有 1 个报告文件无法读取：{self.what}。需要重新发送：{self.send}"


def _other_format(content_type: str) -> str:
    """The format to ask for instead of the one that failed."""
    if content_type == ct.PDF:
        return "报告的 Word（.docx）电子版"
    if content_type in _WORD_TYPES:
        return "报告的 PDF 版本（“另存为 PDF”，或盖章后扫描）"
    return "报告的 Word（.docx）或 PDF 版本"


def correction_for(code: str, content_type: str) -> Correction | None:
    """The request for one unreadable file, or None when the sender has nothing to fix."""
    try:
        problem = ProblemCode(code)
    except ValueError:
        return None  # a code this version does not know: ask nothing rather than something wrong
    named = type_name(content_type)
    match problem:
        case ProblemCode.ENCRYPTED_PDF | ProblemCode.ENCRYPTED_OFFICE:
            return Correction("设有打开密码", "取消打开密码后的同一文件")
        case ProblemCode.ENCRYPTED_ZIP:
            return Correction("在设有密码的压缩包中，邮件里没有写明解压密码",
                              f"{_ARCHIVE}（或在邮件正文中写明“解压密码：……”）")  # fmt: skip
        case ProblemCode.ARCHIVE_UNSUPPORTED:
            return Correction("在我委无法解压的压缩包（如 RAR、7z）中", f"{_ARCHIVE}，或 ZIP 格式的压缩包")
        case ProblemCode.ZIP_BOMB | ProblemCode.ARCHIVE_TOO_DEEP | ProblemCode.ARCHIVE_TOO_MANY:
            return Correction("在结构异常的压缩包中（嵌套过深或文件过多），未能解压", _ARCHIVE)
        case ProblemCode.SCAN_NO_TEXT:
            return Correction("是扫描件，经文字识别仍无法辨认（可能不够清晰或页面歪斜）",
                              "更清晰的扫描件（建议 300 dpi、页面摆正），或另附报告的 Word（.docx）电子版")  # fmt: skip
        case ProblemCode.IMAGE_NO_TEXT:
            return Correction("是图片，经文字识别仍无法辨认（可能不够清晰、反光或歪斜）",
                              "更清晰的扫描件或照片（页面摆正、光线均匀），或另附报告的电子版")  # fmt: skip
        case ProblemCode.IMAGE_TOO_LARGE:
            return Correction("是尺寸过大的图片", "分辨率较低的扫描件或照片（300 dpi 即可）")
        case ProblemCode.TRUNCATED:
            return Correction("文件不完整（可能在发送途中被截断）", "同一文件（重新添加附件后发送）")
        case ProblemCode.CORRUPT | ProblemCode.UNSAFE_XML:
            return Correction("文件已损坏或内部结构异常", _other_format(content_type))
        case ProblemCode.TOO_LARGE:
            return Correction("文件过大，超过系统可读取的上限", "压缩图片或降低扫描分辨率后的较小文件")
        case ProblemCode.EXECUTABLE:
            return Correction("是可执行程序，不是报告", "报告文件本身")
        case ProblemCode.EMPTY:
            return Correction("是空文件（0 字节）", "重新添加报告附件后的邮件")
        case ProblemCode.UNSUPPORTED:
            kind = f"是{spaced(named)}" if named != type_name("") else "文件格式无法识别"
            return Correction(f"{kind}，系统不能读取这种格式", _other_format(content_type))
        case ProblemCode.LINKED_FILE:
            # A "超大附件" link: the clerk downloads it (请下载后核对); a file too large to attach
            # cannot be asked for as an attachment, and the link is never fetched here.
            return None
    return None  # reader failures, time/memory limits, attachment limits, warnings: ours to look at
