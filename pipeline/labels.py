"""Chinese wording, for clerks, of why a file could not be read.

The parsers record a `ProblemCode` and plain parameters (`detail`, English, for logs and
the database); everything a clerk sees goes through `describe_problem`, one wording per code.
"""

from __future__ import annotations

from parsers.types import Problem, ProblemCode

PROBLEM_LABELS: dict[ProblemCode, str] = {
    ProblemCode.EMPTY: "空文件",
    ProblemCode.UNSUPPORTED: "无法识别或暂不支持的文件格式",
    ProblemCode.EXECUTABLE: "可执行程序（不是文档），未打开",
    ProblemCode.IMAGE_NO_TEXT: "图片（扫描件），未识别出文字",
    ProblemCode.SCAN_NO_TEXT: "扫描件 PDF（没有文字层），未识别出文字",
    ProblemCode.IMAGE_TOO_LARGE: "图片尺寸过大，未识别",
    ProblemCode.ENCRYPTED_ZIP: "压缩包有密码，无法打开",
    ProblemCode.ENCRYPTED_PDF: "PDF 有密码，无法打开",
    ProblemCode.ENCRYPTED_OFFICE: "Office 文件有密码，无法打开",
    ProblemCode.ZIP_BOMB: "压缩包异常（疑似压缩炸弹），未解压",
    ProblemCode.ARCHIVE_TOO_DEEP: "压缩包嵌套过深，未继续解压",
    ProblemCode.ARCHIVE_TOO_MANY: "压缩包内文件过多，未全部读取",
    ProblemCode.ARCHIVE_UNSUPPORTED: "压缩包格式（如 RAR、7z）无法打开",
    ProblemCode.TRUNCATED: "文件不完整（可能传输中断），无法读取",
    ProblemCode.CORRUPT: "文件已损坏，无法读取",
    ProblemCode.UNSAFE_XML: "文件含不安全的结构，未读取",
    ProblemCode.TOO_LARGE: "文件过大，未读取",
    ProblemCode.MESSAGE_TOO_DEEP: "附带邮件嵌套过深，未继续读取",
    ProblemCode.MESSAGE_UNPARSEABLE: "附带邮件无法读取",
    ProblemCode.ATTACHMENT_LIMIT: "附件数量超过上限，未读取",
    ProblemCode.WORK_LIMIT: "邮件内容过多，后面的附件未读取",
    ProblemCode.READER_FAILED: "读取文件时出错",
    ProblemCode.PARSE_STOPPED: "解析超时或占用内存过多，已停止",
    ProblemCode.MACRO: "含宏的文档（宏未运行）",
    ProblemCode.TEXT_TRUNCATED: "文字过多，只读取了前面部分",
    ProblemCode.PAGES_CUT: "页数过多，只读取了前面的页",
    ProblemCode.OCR_PAGES_CUT: "扫描件页数过多，只识别了部分页面",
    ProblemCode.OCR_USED: "文字由扫描件识别得出，请核对原件",
    ProblemCode.OCR_DEFERRED: "扫描件待识别（排在识别队列中）",
    ProblemCode.PARTIAL: "部分内容无法读取",
    ProblemCode.CHARSET_GUESSED: "文字编码不明，已自动判断",
    ProblemCode.UNSAFE_NAME: "压缩包内文件名含异常路径",
    ProblemCode.WEAK_ENCRYPTION: "文件有密码保护，已打开",
    ProblemCode.MIME_DEFECT: "邮件格式有缺陷",
    ProblemCode.HEADER_TOO_LARGE: "邮件头过大",
    ProblemCode.MIME_TOO_DEEP: "邮件结构嵌套过深，内层未读取",
    ProblemCode.MANY_FROM: "邮件有多个发件人地址",
    ProblemCode.LINKED_FILE: "超大附件只有下载链接，系统不下载",
}


def describe_problem(code: ProblemCode | Problem | str | None, detail: str = "") -> str:
    """A clerk-facing Chinese description of a parser's problem ("" for none).

    Accepts a code (or its stored string) or a whole Problem; `detail` is not shown,
    except in brackets for a code this version does not know (a newer database).
    """
    if isinstance(code, Problem):
        return describe_problem(code.code, code.detail)
    if not code:
        return ""
    try:
        return PROBLEM_LABELS[ProblemCode(code)]
    except ValueError:
        return f"无法读取（{detail or code}）"
