"""OFD (GB/T 33190, China's fixed-layout format): text from `ofd:TextCode` in page order.

An OFD file is a zip of XML: OFD.xml names the document root (DocBody/DocRoot), whose
Document.xml lists the pages (Pages/Page@BaseLoc -> Content.xml).  Each page's text objects
carry a Boundary ("x y w h", mm) and TextCodes with X/Y inside it; codes on one baseline are
joined left to right into a line, lines top to bottom, tagged page-N.  Guarded like docx: the
zip is vetted by check_zip, members are read through read_member (size caps, DTDs refused).
"""

from __future__ import annotations

import posixpath
import zipfile

from lxml import etree

from parsers.documents.archive import check_zip, read_member
from parsers.documents.base import Context, LimitExceeded, Outcome, TextBudget, UnsafeXml, short, unreadable
from parsers.types import DocumentText, Paragraph, PartKind, Problem, ProblemCode

_MAX_PAGES = 2000
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


class OfdError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_ofd(ctx: Context) -> Outcome:
    """Kind DOCUMENT with one paragraph per text line; UNREADABLE with the reason otherwise."""
    zf = ctx.zf
    if zf is None:
        return unreadable(ProblemCode.TRUNCATED, f"ofd: bad zip central directory ({ctx.zip_error})")
    problem = check_zip(zf, ctx.limits, max_members=ctx.limits.max_archive_members * 20)
    if problem:
        return unreadable(problem)
    reader = _Reader(zf, ctx)
    try:
        title, pages = reader.document()
        budget = TextBudget(ctx.limits.max_text_chars)
        paragraphs: list[Paragraph] = []
        for number, location in enumerate(pages[:_MAX_PAGES], 1):
            if budget.exhausted:
                break
            for line in reader.page_lines(location):
                taken = budget.take(line)
                if taken is None:
                    break
                paragraphs.append(Paragraph(taken, where=f"page-{number}"))
    except OfdError as exc:
        return unreadable(exc.problem)
    except (LimitExceeded, UnsafeXml) as exc:
        return unreadable(exc.problem)
    except etree.XMLSyntaxError as exc:
        return unreadable(ProblemCode.CORRUPT, f"ofd has malformed xml: {short(exc)}")
    except (zipfile.BadZipFile, EOFError, NotImplementedError, OSError) as exc:
        return unreadable(ProblemCode.CORRUPT, f"ofd: {short(exc)}")
    warnings = budget.warnings()
    if len(pages) > _MAX_PAGES:
        warnings.append(Problem(ProblemCode.PAGES_CUT, f"first {_MAX_PAGES} of {len(pages)} pages read"))
    if not paragraphs:
        return unreadable(ProblemCode.SCAN_NO_TEXT, "ofd has no text objects", warnings)
    return Outcome(PartKind.DOCUMENT, document=DocumentText(paragraphs=tuple(paragraphs), title=title),
                   warnings=warnings)  # fmt: skip


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _numbers(text: str | None, count: int) -> list[float]:
    values = []
    for token in (text or "").split()[:count]:
        try:
            values.append(float(token))
        except ValueError:
            values.append(0.0)
    return values + [0.0] * (count - len(values))


class _Reader:
    def __init__(self, zf: zipfile.ZipFile, ctx: Context) -> None:
        self.zf = zf
        self.ctx = ctx
        self.names = {n.lstrip("/").replace("\\", "/").lower(): i for n, i in zf.NameToInfo.items()}

    def xml(self, name: str):
        info = self.names.get(posixpath.normpath(name.lstrip("/")).lower())
        if info is None:
            raise OfdError(Problem(ProblemCode.CORRUPT, f"ofd is missing {name}"))
        cap = min(self.ctx.limits.max_document_xml_bytes, self.ctx.budget.expanded_left)
        data = read_member(self.zf, info, cap, scan_xml=True)
        self.ctx.budget.expanded_left -= len(data)
        return etree.fromstring(data, _PARSER)

    def document(self) -> tuple[str, list[str]]:
        """(title, page Content.xml locations in page order)."""
        root = self.xml("OFD.xml")
        doc_root = title = ""
        for el in root.iter():
            name = _local(el.tag)
            if name == "DocRoot" and not doc_root:
                doc_root = (el.text or "").strip()
            elif name == "Title" and not title:
                title = (el.text or "").strip()
        if not doc_root:
            raise OfdError(Problem(ProblemCode.CORRUPT, "ofd: OFD.xml names no DocRoot"))
        base = posixpath.dirname(doc_root.lstrip("/"))
        document = self.xml(doc_root)
        pages = []
        for el in document.iter():
            if _local(el.tag) == "Page" and el.get("BaseLoc"):
                location = el.get("BaseLoc", "")
                pages.append(location.lstrip("/") if location.startswith("/") else posixpath.join(base, location))
        return title, pages

    def page_lines(self, location: str) -> list[str]:
        """Text lines of one page: TextCodes grouped by baseline, each line left to right."""
        page = self.xml(location)
        codes: list[tuple[float, float, float, str]] = []  # (baseline y, x, font size, text)
        for obj in page.iter():
            if _local(obj.tag) != "TextObject":
                continue
            bx, by = _numbers(obj.get("Boundary"), 2)
            size = _numbers(obj.get("Size"), 1)[0] or 3.5
            x = y = 0.0
            for code in obj:
                if _local(code.tag) != "TextCode":
                    continue
                text = "".join(code.itertext())
                if code.get("X") is not None:
                    x = _numbers(code.get("X"), 1)[0]
                if code.get("Y") is not None:
                    y = _numbers(code.get("Y"), 1)[0]
                if text.strip():
                    codes.append((by + y, bx + x, size, text))
        codes.sort(key=lambda c: (c[0], c[1]))
        lines: list[list[tuple[float, float, float, str]]] = []
        for code in codes:
            if lines and abs(code[0] - lines[-1][0][0]) <= max(code[2], lines[-1][0][2]) / 2:
                lines[-1].append(code)
            else:
                lines.append([code])
        return ["".join(c[3] for c in sorted(line, key=lambda c: c[1])).strip() for line in lines]
