"""Active content: files that run code when a clerk double-clicks them (macros, scripts, programs).

`export-reports` writes such a file under a neutral extension (`.bin`, after its real type:
`…_20240708.docm.bin`) and flags it in 00_报告清单.xlsx, so exporting a stranger's "report"
never puts a macro document or a web page with a script one click away.
"""

from __future__ import annotations

from parsers.documents import sniff as ct

NEUTRAL_EXTENSION = "bin"
ACTIVE_TYPES = {
    ct.DOCM: "含宏的 Word 文档",
    ct.DOTM: "含宏的 Word 模板",
    ct.XLSM: "含宏的 Excel 表格",
    ct.XLSB: "可含宏的 Excel 二进制表格",
    ct.HTML: "网页（可含脚本）",
    ct.EXE: "可执行程序",
}
# Judged by the sender's name too: a script sniffed as plain text is still a script to Windows.
ACTIVE_EXTENSIONS = {
    "docm": "含宏的 Word 文档", "dotm": "含宏的 Word 模板", "xlsm": "含宏的 Excel 表格", "xltm": "含宏的 Excel 模板",
    "xlsb": "可含宏的 Excel 二进制表格", "xlam": "Excel 加载项", "pptm": "含宏的演示文稿", "potm": "含宏的演示模板",
    "ppsm": "含宏的放映文件", "html": "网页（可含脚本）", "htm": "网页（可含脚本）", "xhtml": "网页（可含脚本）",
    "mht": "网页存档（可含脚本）", "mhtml": "网页存档（可含脚本）", "hta": "HTML 应用程序", "svg": "SVG 图像（可含脚本）",
    "js": "脚本", "jse": "脚本", "vbs": "脚本", "vbe": "脚本", "wsf": "脚本", "ps1": "脚本", "bat": "批处理脚本",
    "cmd": "批处理脚本", "exe": "可执行程序", "com": "可执行程序", "scr": "可执行程序", "msi": "安装程序",
    "dll": "程序库", "lnk": "快捷方式", "jar": "Java 程序",
}  # fmt: skip


def active_reason(content_type: str, original_name: str = "") -> str:
    """Why this file is active content, in Chinese; "" when it is not."""
    if content_type in ACTIVE_TYPES:
        return ACTIVE_TYPES[content_type]
    claimed = original_name.rpartition(".")[2].strip().lower() if "." in original_name else ""
    return ACTIVE_EXTENSIONS.get(claimed, "")


def neutral_extension(ext: str) -> str:
    """`docm` -> `docm.bin`: the real type stays visible, the extension opens nothing."""
    return NEUTRAL_EXTENSION if ext in ("", NEUTRAL_EXTENSION) else f"{ext}.{NEUTRAL_EXTENSION}"
