"""Plain text, HTML and XML attachments, and the charset decoding shared with the mail parser.

Chinese mail is labelled gb2312 far more often than it is gb2312: the bytes are GBK
or GB18030 (a superset of both), so every GB label decodes as gb18030.  Unlabelled
bytes are tried as UTF-8, then GB18030 if the result reads as Chinese, then
charset-normalizer guesses.  HTML is rendered to lines with the stdlib parser
(scripts and styles dropped); its tables go to DocumentText.tables.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from parsers.documents.base import Context, Outcome, TextBudget
from parsers.types import DocumentText, Paragraph, PartKind, Problem, ProblemCode

_GB_LABELS = frozenset(
    {"gb2312", "gbk", "gb18030", "cp936", "ms936", "windows-936", "x-gbk", "euc-cn", "csgb2312", "chinese"}
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SEVEN_BIT = frozenset({"hz", "iso2022_jp", "iso2022_kr", "utf-7"})  # stateful ASCII-only encodings
_WESTERN = frozenset({"iso8859-1", "cp1252"})
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.IGNORECASE)
_PARAM_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def normalize_charset(label: str) -> str:
    """Python codec name for a MIME/HTML charset label; GB labels become gb18030; "" if unknown."""
    label = label.strip().strip("\"'").lower()
    if not label:
        return ""
    if label in _GB_LABELS or label.startswith("gb"):
        return "gb18030"
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL byte in it
        return ""


def _charset_problems(notes: list[str]) -> list[Problem]:
    return [Problem(ProblemCode.CHARSET_GUESSED, note) for note in notes]


def decode_text(data: bytes, declared_charset: str = "") -> tuple[str, list[str]]:
    """Decode bytes to text; return the text and warnings about how it was decoded.

    Order: byte-order mark; ASCII; UTF-8 (valid UTF-8 wins over a legacy label); the
    declared charset (gb2312/gbk/gb18030 -> gb18030; a latin-1/cp1252 label loses to
    GB18030 that reads as Chinese); GB18030 when the result reads as Chinese;
    charset-normalizer; UTF-8 with replacement.  Labels of ASCII-only stateful
    encodings (HZ, ISO-2022) are always honoured.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace"), []
    codec = normalize_charset(declared_charset)
    if data.isascii() and codec not in _SEVEN_BIT:
        return data.decode("ascii"), []
    warnings: list[str] = []
    if declared_charset and not codec:
        warnings.append(f"unknown charset {declared_charset!r}")
    if codec in _SEVEN_BIT:
        try:
            return data.decode(codec), warnings
        except UnicodeDecodeError:
            codec = ""
    if codec.startswith(("utf-16", "utf-32")):  # their ASCII range is valid UTF-8 too: label first
        try:
            return data.decode(codec), warnings
        except UnicodeDecodeError:
            codec = ""
    # Non-ASCII bytes that are valid UTF-8 are UTF-8, whatever the label says: legacy
    # multibyte text almost never validates, while UTF-8 labelled gb2312 is common.
    # (For real GBK this attempt stops at the first Chinese character.)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if codec and codec != "utf-8":
            warnings.append(f"text labelled {declared_charset} is UTF-8")
        return text, warnings
    if codec in _WESTERN:  # Chinese text mislabelled latin-1 would "decode" as mojibake
        try:
            as_gb18030: str | None = data.decode("gb18030")
        except UnicodeDecodeError:
            as_gb18030 = None
        if as_gb18030 is not None and _reads_chinese(as_gb18030):
            return as_gb18030, [*warnings, f"text labelled {declared_charset} is GB18030"]
    if codec and codec != "utf-8":
        try:
            return data.decode(codec), warnings
        except UnicodeDecodeError:
            pass
    if codec:
        warnings.append(f"text labelled {declared_charset} is not; charset guessed")
    try:
        as_gb: str | None = data.decode("gb18030")
    except UnicodeDecodeError:
        as_gb = None
    if as_gb is not None and _reads_chinese(as_gb):
        return as_gb, warnings
    guessed = _guess(data)
    if guessed is not None:
        return guessed[0], [*warnings, f"charset guessed as {guessed[1]}"]
    return data.decode("utf-8", "replace"), [*warnings, "undecodable bytes replaced"]


def _reads_chinese(text: str) -> bool:
    non_ascii = len(_NON_ASCII.findall(text, 0, 200_000))
    return non_ascii == 0 or len(_CJK.findall(text, 0, 200_000)) >= 0.6 * non_ascii


def _guess(data: bytes) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes  # only needed for the rare unlabelled oddity

    best = from_bytes(data[:200_000]).best()
    if best is None or not best.encoding:
        return None
    try:
        return data.decode(best.encoding, "replace"), best.encoding
    except LookupError:
        return None


def _declared_charset(declared_type: str) -> str:
    match = _PARAM_CHARSET.search(declared_type or "")
    return match.group(1) if match else ""


def _lines(text: str, budget: TextBudget) -> list[Paragraph]:
    paragraphs = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            taken = budget.take(line)
            if taken is None:
                break
            paragraphs.append(Paragraph(taken))
    return paragraphs


def read_text(ctx: Context) -> Outcome:
    """Kind DOCUMENT: one paragraph per non-empty line."""
    text, notes = decode_text(ctx.data, _declared_charset(ctx.declared_type))
    warnings = _charset_problems(notes)
    budget = TextBudget(ctx.limits.max_text_chars)
    document = DocumentText(paragraphs=tuple(_lines(text, budget)))
    return Outcome(PartKind.DOCUMENT, document=document, warnings=warnings + budget.warnings())


def read_html(ctx: Context) -> Outcome:
    """Kind DOCUMENT for HTML (and XML, rendered the same way: tags dropped)."""
    head = ctx.data[:4096]
    found = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    charset = found.group(1).decode("ascii", "replace") if found else _declared_charset(ctx.declared_type)
    text, notes = decode_text(ctx.data, charset)
    warnings = _charset_problems(notes)
    renderer = _Renderer()
    renderer.feed(text)
    renderer.close()
    budget = TextBudget(ctx.limits.max_text_chars)
    paragraphs = []
    for line, style in renderer.finish():
        taken = budget.take(line)
        if taken is None:
            break
        paragraphs.append(Paragraph(taken, style=style))
    tables = tuple(tuple(tuple(budget.take(c) or "" for c in row) for row in t) for t in renderer.tables)
    document = DocumentText(paragraphs=tuple(paragraphs), tables=tables, title=renderer.title.strip())
    return Outcome(PartKind.DOCUMENT, document=document, warnings=warnings + budget.warnings())


_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "ul",
    ]
)
_SKIP = frozenset({"script", "style", "noscript", "template", "xml"})
_HEADINGS = {f"h{n}": f"Heading {n}" for n in range(1, 7)}


class _Renderer(HTMLParser):
    """HTML to (line, style) pairs plus tables; cell text of nested tables joins the outer cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[str, str]] = []
        self.tables: list[tuple[tuple[str, ...], ...]] = []
        self.title = ""
        self._buf: list[str] = []
        self._style = ""
        self._skip = 0
        self._in_title = False
        self._stack: list[tuple[list[tuple[str, ...]], list[str], list[str] | None]] = []

    def _flush(self) -> None:
        if self._stack:
            return  # inside a table, text accumulates in the current cell
        line = " ".join("".join(self._buf).split())
        if line:
            self.lines.append((line, self._style))
        self._buf = []
        self._style = ""

    def handle_starttag(self, tag, attrs) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self._flush()
            self._stack.append(([], [], None))  # rows, current row, current cell buffer
        elif self._stack and tag == "tr":
            self._end_row()
        elif self._stack and tag in ("td", "th"):
            self._end_cell()
            rows, row, _ = self._stack[-1]
            self._stack[-1] = (rows, row, [])
        elif tag in _BLOCK:
            self._newline()
            self._style = _HEADINGS.get(tag, self._style)

    def handle_endtag(self, tag) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag == "table" and self._stack:
            self._end_row()
            rows, _, _ = self._stack.pop()
            if self._stack:
                self._cell().append("\n".join("\t".join(r) for r in rows))
            elif rows:
                self.tables.append(tuple(rows))
        elif self._stack and tag in ("td", "th"):
            self._end_cell()
        elif self._stack and tag == "tr":
            self._end_row()
        elif tag in _BLOCK:
            self._newline()

    def handle_data(self, data) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        elif self._stack:
            self._cell().append(data)
        else:
            self._buf.append(data)

    def _newline(self) -> None:
        if self._stack:
            cell = self._stack[-1][2]
            if cell is not None:
                cell.append("\n")
        else:
            self._flush()

    def _cell(self) -> list[str]:
        rows, row, cell = self._stack[-1]
        if cell is None:
            cell = []
            self._stack[-1] = (rows, row, cell)
        return cell

    def _end_cell(self) -> None:
        rows, row, cell = self._stack[-1]
        if cell is not None:
            lines = (" ".join(part.split()) for part in "".join(cell).split("\n"))
            row.append("\n".join(line for line in lines if line))
            self._stack[-1] = (rows, row, None)

    def _end_row(self) -> None:
        self._end_cell()
        rows, row, _ = self._stack[-1]
        if any(row):
            rows.append(tuple(row))
        self._stack[-1] = (rows, [], None)

    def finish(self) -> list[tuple[str, str]]:
        while self._stack:  # unclosed tables
            self.handle_endtag("table")
        self._flush()
        return self.lines


def html_to_text(markup: str) -> str:
    """A plain-text rendering of an HTML mail body: one line per block, table rows tab-separated."""
    renderer = _Renderer()
    renderer.feed(markup)
    renderer.close()
    lines = [line for line, _style in renderer.finish()]
    lines.extend("\t".join(row) for table in renderer.tables for row in table)
    return "\n".join(lines)
