"""RTF text, Chinese included: \\'xx bytes in the document's or the font's code page, \\uN escapes.

Word, WPS and LibreOffice write Chinese RTF in two ways, both handled:
- `\\ansicpg936` (or a font with `\\fcharset134`) and the GBK bytes as `\\'b9\\'e3`: consecutive
  `\\'xx` bytes are collected and decoded together in the current font's code page;
- `\\uN` (signed 16-bit; UTF-16 surrogate pairs joined) followed by `\\ucN` fallback characters,
  which are skipped.
Destinations that are not text (font and colour tables, style sheet, pictures, objects, field
instructions, `{\\*\\...}` extensions) are skipped; headers and footers are kept.  One pass of a
tokenising regex over the bytes: linear time, group depth capped.
"""

from __future__ import annotations

import re

from parsers.documents.base import Context, Outcome, TextBudget, unreadable
from parsers.types import DocumentText, Paragraph, PartKind, ProblemCode

_TOKEN = re.compile(rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([^\\{}\r\n]+)|[\r\n]+", re.S)
_SKIP = frozenset(
    b"fonttbl colortbl stylesheet info pict object fldinst themedata colorschememapping datastore "
    b"latentstyles listtable listoverridetable rsidtbl generator xmlnstbl mmathPr pgdsctbl "
    b"revtbl bkmkstart bkmkend annotation atnid atnauthor comment".split()
)
_BREAKS = frozenset(b"par line cell row sect page".split())
_CHARSETS = {0: "", 1: "", 2: "", 77: "mac_roman", 128: "cp932", 129: "cp949", 134: "gbk", 136: "big5",
             161: "cp1253", 162: "cp1254", 177: "cp1255", 178: "cp1256", 186: "cp1257", 204: "cp1251",
             222: "cp874", 238: "cp1250"}  # fmt: skip
_SYMBOLS = {b"\n": "\n", b"\r": "\n", b"~": "\u00a0", b"_": "-", b"-": "", b"\\": "\\", b"{": "{", b"}": "}", b"\t": "\t"}
_MAX_DEPTH = 500


def read_rtf(ctx: Context) -> Outcome:
    """Kind DOCUMENT with one paragraph per RTF paragraph; UNREADABLE when no text comes out."""
    budget = TextBudget(ctx.limits.max_text_chars)
    paragraphs = [Paragraph(taken) for line in rtf_text(ctx.data).split("\n")
                  if (text := line.strip()) and (taken := budget.take(text)) is not None]  # fmt: skip
    if not paragraphs:
        return unreadable(ProblemCode.SCAN_NO_TEXT, "rtf has no text")
    return Outcome(PartKind.DOCUMENT, document=DocumentText(paragraphs=tuple(paragraphs)),
                   warnings=budget.warnings())  # fmt: skip


def rtf_text(data: bytes) -> str:
    """The visible text of an RTF document, paragraphs separated by newlines."""
    out: list[str] = []
    pending = bytearray()  # \'xx bytes not yet decoded (a GBK character is two of them)
    fonts: dict[int, str] = {}  # font number -> codec, learnt from the font table
    default_codec = "cp1252"
    # Per group: [skipping, uc (fallback chars after \uN), font codec, font number being defined]
    stack: list[list] = []
    skipping, uc, codec = False, 1, ""
    to_skip = 0  # fallback characters still to drop after a \uN
    high_surrogate = 0
    in_fonttbl_depth = -1
    current_font_def = -1

    def flush() -> None:
        if pending:
            if not skipping and in_fonttbl_depth < 0:
                out.append(bytes(pending).decode(codec or default_codec, "replace"))
            pending.clear()

    for m in _TOKEN.finditer(data):
        word, arg, hexbyte, symbol, brace, text = m.groups()
        if hexbyte is not None:
            if to_skip:
                to_skip -= 1
                continue
            pending.append(int(hexbyte, 16))
            continue
        flush()
        if brace == b"{":
            if len(stack) >= _MAX_DEPTH:
                skipping = True
            stack.append([skipping, uc, codec, current_font_def])
            continue
        if brace == b"}":
            if stack:
                skipping, uc, codec, current_font_def = stack.pop()
            if in_fonttbl_depth > len(stack):
                in_fonttbl_depth = -1
            to_skip = 0
            continue
        if word is not None:
            n = int(arg) if arg else None
            if to_skip and word != b"u":
                to_skip -= 1
                continue
            if word in _SKIP:
                if word == b"fonttbl":
                    in_fonttbl_depth = len(stack)
                else:
                    skipping = True
            elif word == b"ansicpg" and n:
                default_codec = "gbk" if n == 936 else f"cp{n}"
            elif word == b"uc" and n is not None:
                uc = max(0, n)
            elif word == b"f" and n is not None:
                if in_fonttbl_depth >= 0:
                    current_font_def = n
                else:
                    codec = fonts.get(n, "")
            elif word == b"fcharset" and n is not None and in_fonttbl_depth >= 0:
                fonts[current_font_def] = _CHARSETS.get(n, "")
            elif word == b"u" and n is not None:
                code = n + 65536 if n < 0 else n
                if 0xD800 <= code < 0xDC00:
                    high_surrogate = code
                elif 0xDC00 <= code < 0xE000 and high_surrogate:
                    if not skipping:
                        out.append(chr(0x10000 + ((high_surrogate - 0xD800) << 10) + (code - 0xDC00)))
                    high_surrogate = 0
                elif not skipping:
                    out.append(chr(code))
                to_skip = uc
            elif word in _BREAKS and not skipping:
                out.append("\n")
            elif word == b"tab" and not skipping:
                out.append("\t")
            continue
        if symbol is not None:
            if symbol == b"*":
                skipping = True
            elif not skipping and symbol in _SYMBOLS:
                out.append(_SYMBOLS[symbol])
            continue
        if text is not None and not skipping and in_fonttbl_depth < 0:
            if to_skip:
                drop = min(to_skip, len(text))
                text = text[drop:]
                to_skip -= drop
            if text:
                out.append(text.decode(codec or default_codec, "replace"))
    flush()
    return "".join(out)
