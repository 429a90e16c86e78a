"""PDF lines back into paragraphs, by layout: a title or a name wrapped over two lines reads as one.

pypdf gives text line by line; a centred title that did not fit ("…自查情况" / "报告") or a body
sentence that runs on comes out as two lines.  `page_lines` records each line's baseline and
font size (pypdf's text visitor), and `join_lines` — a pure function of those lines — joins a
line to the one before it when they are the same size, the second sits right under the first,
the first does not end a sentence or a field, the second does not start a heading, a list item,
a date or a signature line, and either both are larger than the page's body text (a title) or
the first runs (nearly) to the page's longest body line (a wrapped paragraph).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_ENDS = tuple("。！？；：:!?;）)")
_STARTS = re.compile(
    r"^\s*([一二三四五六七八九十]+[、．.]|[（(][一二三四五六七八九十\d]+[）)]|\d+[、．.)]|[①-⑳]|附件|附表|"
    r"报送单位|填报单位|联系人|联系电话|日期|\d{4}\s*年|[A-Za-z]\))"
)


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    y: float  # baseline, PDF units (up is larger)
    size: float  # font size, PDF units


def page_lines(page) -> list[Line]:  # noqa: ANN001 - a pypdf PageObject
    """The page's text lines (as pypdf splits them) with their baseline and font size."""
    lines: list[Line] = []
    parts: list[str] = []
    where: list[tuple[float, float]] = []  # (y, size) of fragments with text on the current line

    def close() -> None:
        text = "".join(parts).strip()
        if text:
            y = where[0][0] if where else 0.0
            size = max((s for _, s in where), default=0.0)
            lines.append(Line(text, y, size))
        parts.clear()
        where.clear()

    def visit(text: str, cm, tm, font_dict, font_size) -> None:  # noqa: ANN001 - pypdf matrices
        if not text:
            return
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        size = abs(float(font_size or 0) * (tm[3] or 1) * (cm[3] or 1))
        chunks = text.split("\n")
        for i, chunk in enumerate(chunks):
            if chunk.strip():
                parts.append(chunk)
                where.append((y, size))
            elif chunk:
                parts.append(chunk)
            if i < len(chunks) - 1:
                close()

    page.extract_text(visitor_text=visit)
    close()
    return lines


def _width(text: str) -> float:
    """Printed width in em: CJK characters are one em, others about half."""
    return sum(1.0 if ord(ch) > 0x2E80 else 0.5 for ch in text)


def join_lines(lines: list[Line]) -> list[str]:
    """Paragraph texts of one page's lines (see the module docstring for the rule)."""
    if not lines:
        return []
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[round(line.size, 1)] += len(line.text)
    body = sizes.most_common(1)[0][0] or 0.0
    longest = max((_width(ln.text) for ln in lines if round(ln.size, 1) == body), default=0.0)
    out: list[str] = [lines[0].text]
    previous = lines[0]
    for line in lines[1:]:
        if _continues(previous, line, body, longest):
            glue = " " if out[-1][-1:].isascii() and line.text[:1].isascii() and out[-1][-1:].isalnum() else ""
            out[-1] = out[-1] + glue + line.text
        else:
            out.append(line.text)
        previous = line
    return out


def _continues(first: Line, second: Line, body: float, longest: float) -> bool:
    size = max(first.size, second.size)
    if size <= 0 or abs(first.size - second.size) > 0.1 * size:
        return False
    gap = first.y - second.y
    if not 0 < gap <= 1.8 * size:
        return False
    if first.text.endswith(_ENDS) or _STARTS.match(second.text):
        return False
    if body and first.size > body * 1.15:
        return True  # title-sized lines, one under the other
    return longest > 0 and _width(first.text) >= 0.85 * longest and _width(first.text) >= 10
