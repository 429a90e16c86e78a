"""Chinese wording, for clerks, of why a file could not be read.

The parsers record short English reasons (they are also log and test material);
everything a clerk sees goes through `describe_problem`, which keeps the
English detail in brackets only when no Chinese wording fits.
"""

from __future__ import annotations

# Checked in order: the first phrase found in the parser's reason decides the wording.
_BY_PHRASE: tuple[tuple[str, str], ...] = (
    ("zip bomb", "压缩包异常（疑似压缩炸弹），未解压"),
    ("encrypted zip member", "压缩包内文件有密码，无法打开"),
    ("encrypted pdf", "PDF 有密码，无法打开"),
    ("encrypted office", "Office 文件有密码，无法打开"),
    ("encrypted xls", "Excel 文件有密码，无法打开"),
    ("no text layer", "扫描件 PDF（没有文字层），无法读取文字"),
    ("image: no text", "图片（扫描件），无法读取文字"),
    ("legacy word", "旧版 Word（.doc）文件，无法读取"),
    ("wps/ole", "WPS 或旧版 Office 文件，无法读取"),
    ("legacy excel", "旧版 Excel（.xls）文件无法读取"),
    ("rar archive", "RAR 压缩包，无法打开"),
    ("7z archive", "7z 压缩包，无法打开"),
    ("archive nested too deeply", "压缩包嵌套过深，未继续解压"),
    ("too many archive members", "压缩包内文件过多，未全部读取"),
    ("members, over the limit", "压缩包内文件过多，未全部读取"),
    ("truncated", "文件不完整（可能传输中断），无法读取"),
    ("corrupt", "文件已损坏，无法读取"),
    ("malformed xml", "文件已损坏，无法读取"),
    ("executable", "可执行程序（不是文档），未打开"),
    ("macro", "含宏的文档（宏未运行）"),
    ("attachment limit exceeded", "附件数量超过上限，未读取"),
    ("attached messages nested too deeply", "附带邮件嵌套过深，未继续读取"),
    ("powerpoint", "PowerPoint 文件，无法读取"),
    ("ofd", "OFD 文件，无法读取"),
    ("rtf", "RTF 文件，无法读取"),
    ("empty file", "空文件"),
    ("stopped", "解析超时，已停止"),
    ("out of memory", "解析占用内存过多，已停止"),
)


def describe_problem(problem: str) -> str:
    """A clerk-facing Chinese description of a parser's reason ("" stays "")."""
    if not problem:
        return ""
    lowered = problem.lower()
    for phrase, wording in _BY_PHRASE:
        if phrase in lowered:
            return wording
    return f"无法读取（{problem}）"
