"""WordprocessingML text extraction from the lxml tree python-docx loads.

Reads paragraphs and tables straight from the `w:` elements in one pass (no per-run
proxy objects), reaching text that python-docx's `Paragraph.text` misses: content
controls (w:sdt), tracked insertions (w:ins), smart tags, simple fields and text boxes
(the DrawingML copy only; the VML fallback copy of the same box is skipped).  Deleted
text (w:delText) is not read.  Styles resolve through basedOn to a UI name
("Heading 1"), bold and centered.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from docx.styles import BabelFish

from parsers.documents.base import TextBudget
from parsers.types import Paragraph

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
W_P, W_TBL, W_TR, W_TC, W_R, W_T = (_W + t for t in ("p", "tbl", "tr", "tc", "r", "t"))
W_PPR, W_RPR, W_PSTYLE, W_RSTYLE, W_JC, W_B = (_W + t for t in ("pPr", "rPr", "pStyle", "rStyle", "jc", "b"))
W_VAL, W_TYPE, W_STYLE, W_STYLEID, W_NAME = (_W + t for t in ("val", "type", "style", "styleId", "name"))
W_BASEDON, W_DEFAULT, W_SECTPR = _W + "basedOn", _W + "default", _W + "sectPr"
W_TXBX = _W + "txbxContent"
MC_FALLBACK = _MC + "Fallback"
_WRAPPERS = frozenset(_W + t for t in ("sdt", "sdtContent", "customXml")) | {
    _MC + "AlternateContent",
    _MC + "Choice",
}
_NOT_TEXT = frozenset(_W + t for t in ("pPr", "rPr", "del", "moveFrom", "sdtPr", "sdtEndPr")) | {MC_FALLBACK}
_TEXT_OF = {_W + "tab": "\t", _W + "ptab": "\t", _W + "br": "\n", _W + "cr": "\n", _W + "noBreakHyphen": "-"}


def _on(el) -> bool | None:
    """Value of an OOXML on/off property element (<w:b/>, <w:b w:val="0"/>), None if absent."""
    if el is None:
        return None
    return el.get(W_VAL, "true").lower() not in ("0", "false", "off", "none")


class Styles:
    """Paragraph style id -> (ui name, bold, centered) and character style id -> bold, with inheritance.

    Only the styles a document actually uses are resolved (templates define hundreds).
    """

    def __init__(self, styles_el) -> None:
        self._elements: dict[str, Any] = {}
        self.default_id: str | None = None
        if styles_el is not None:
            for s in styles_el.iterchildren(W_STYLE):
                sid = s.get(W_STYLEID)
                if sid is None or sid in self._elements:
                    continue
                self._elements[sid] = s
                is_default = s.get(W_DEFAULT) in ("1", "true", "on")
                if is_default and self.default_id is None and s.get(W_TYPE, "paragraph") == "paragraph":
                    self.default_id = sid
        self._raw: dict[str, tuple[str, str | None, bool | None, bool | None]] = {}
        self._para: dict[str | None, tuple[str, bool, bool]] = {}
        self._char: dict[str, bool | None] = {}

    def _entry(self, sid: str) -> tuple[str, str | None, bool | None, bool | None] | None:
        """(ui name, basedOn id, own bold, own centered) of one style."""
        entry = self._raw.get(sid)
        if entry is None:
            s = self._elements.get(sid)
            if s is None:
                return None
            name_el, based_el = s.find(W_NAME), s.find(W_BASEDON)
            ppr, rpr = s.find(W_PPR), s.find(W_RPR)
            jc = ppr.find(W_JC) if ppr is not None else None
            entry = self._raw[sid] = (
                BabelFish.internal2ui(name_el.get(W_VAL, sid)) if name_el is not None else sid,
                based_el.get(W_VAL) if based_el is not None else None,
                _on(rpr.find(W_B)) if rpr is not None else None,
                None if jc is None else jc.get(W_VAL) == "center",
            )
        return entry

    def _inherited(self, sid: str | None, index: int) -> bool | None:
        for _ in range(20):  # basedOn chains are short; a cycle must not hang us
            entry = self._entry(sid) if sid is not None else None
            if entry is None:
                return None
            own = entry[index]
            if own is not None:
                return bool(own)
            sid = entry[1]
        return None

    def paragraph(self, sid: str | None) -> tuple[str, bool, bool]:
        found = self._para.get(sid)
        if found is None:
            key = sid if sid in self._elements else self.default_id
            entry = self._entry(key) if key is not None else None
            name = entry[0] if entry is not None else (sid or "")
            found = self._para[sid] = (name, bool(self._inherited(key, 2)), bool(self._inherited(key, 3)))
        return found

    def char_bold(self, sid: str | None) -> bool | None:
        if sid is None:
            return None
        if sid not in self._char:
            self._char[sid] = self._inherited(sid, 2)
        return self._char[sid]


def _blocks_of(el):
    """Paragraph and table children, looking through content controls and custom XML wrappers."""
    for child in el:
        tag = child.tag
        if tag in (W_P, W_TBL):
            yield child
        elif tag in _WRAPPERS:
            yield from _blocks_of(child)


def _children_of(el, wanted: str):
    for child in el:
        if child.tag == wanted:
            yield child
        elif child.tag in _WRAPPERS:
            yield from _children_of(child, wanted)


class _RunState:
    __slots__ = ("text", "runs", "all_bold", "boxes", "default_bold")

    def __init__(self, default_bold: bool) -> None:
        self.text: list[str] = []
        self.runs = 0
        self.all_bold = True
        self.boxes: list = []
        self.default_bold = default_bold


class Extractor:
    def __init__(self, styles: Styles, budget: TextBudget) -> None:
        self.styles = styles
        self.budget = budget
        self.paragraphs: list[Paragraph] = []
        self.tables: list[tuple[tuple[str, ...], ...]] = []

    def blocks(self, container, where: str) -> None:
        """Append the budgeted paragraphs and tables of a body, header, footer or text box."""
        take = self.budget.take
        for el in _blocks_of(container):
            if self.budget.exhausted:
                return
            if el.tag == W_P:
                for para in self.paragraph(el, where):
                    text = take(para.text)
                    if text is None:
                        return
                    self.paragraphs.append(para if text == para.text else replace(para, text=text))
            else:
                rows = []
                for row in self.table(el):
                    cells = tuple(take(cell) or "" for cell in row)
                    rows.append(cells)
                if rows:
                    self.tables.append(tuple(rows))

    def paragraph(self, p, where: str) -> list[Paragraph]:
        """The paragraph (when it has text) followed by the paragraphs of its text boxes."""
        ppr = p.find(W_PPR)
        style_id = jc = None
        if ppr is not None:
            style_el, jc_el = ppr.find(W_PSTYLE), ppr.find(W_JC)
            style_id = style_el.get(W_VAL) if style_el is not None else None
            jc = jc_el.get(W_VAL) if jc_el is not None else None
        name, style_bold, style_centered = self.styles.paragraph(style_id)
        state = _RunState(style_bold)
        self._inline(p, state)
        text = "".join(state.text).strip()
        out = []
        if text:
            centered = style_centered if jc is None else jc == "center"
            out.append(Paragraph(text, name, where, state.runs > 0 and state.all_bold, centered))
        for box in state.boxes:
            sub = Extractor(self.styles, TextBudget(self.budget.left))
            sub.blocks(box, where)
            out.extend(sub.paragraphs)
            self.tables.extend(sub.tables)
        return out

    def _inline(self, el, state: _RunState) -> None:
        for child in el:
            tag = child.tag
            if tag == W_R:
                self._run(child, state)
            elif tag not in _NOT_TEXT and isinstance(tag, str):
                self._inline(child, state)  # hyperlink, ins, smartTag, fldSimple, sdt, moveTo...

    def _run(self, r, state: _RunState) -> None:
        bold = None
        rpr = r.find(W_RPR)
        if rpr is not None:
            bold = _on(rpr.find(W_B))
            if bold is None:
                rstyle = rpr.find(W_RSTYLE)
                bold = self.styles.char_bold(rstyle.get(W_VAL)) if rstyle is not None else None
        has_text = False
        for child in r:
            tag = child.tag
            if tag == W_T:
                t = child.text
                if t:
                    state.text.append(t)
                    has_text = has_text or not t.isspace()
            elif tag in _TEXT_OF:
                state.text.append(_TEXT_OF[tag])
            elif tag not in _NOT_TEXT and isinstance(tag, str) and len(child):
                # drawing / pict / AlternateContent: collect outermost text boxes, skipping the
                # VML fallback copy of the same box.
                for box in child.iter(W_TXBX):
                    if not any(a.tag in (MC_FALLBACK, W_TXBX) for a in _ancestors_below(box, r)):
                        state.boxes.append(box)
        if has_text:
            state.runs += 1
            if not (state.default_bold if bold is None else bold):
                state.all_bold = False

    def table(self, tbl) -> list[tuple[str, ...]]:
        rows = []
        for tr in _children_of(tbl, W_TR):
            cells = tuple(self.cell_text(tc) for tc in _children_of(tr, W_TC))
            if any(cells):
                rows.append(cells)
        return rows

    def cell_text(self, tc) -> str:
        lines: list[str] = []
        for el in _blocks_of(tc):
            if el.tag == W_P:
                lines.extend(para.text for para in self.paragraph(el, "table"))
            else:
                lines.extend("\t".join(row) for row in self.table(el))
        return "\n".join(lines)


def _ancestors_below(el, stop):
    for ancestor in el.iterancestors():
        if ancestor is stop:
            return
        yield ancestor
