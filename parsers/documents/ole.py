"""Word 97-2003 (.doc) and WPS Office (.wps) text from the OLE2 file's piece table, in pure Python.

Chosen over antiword/catdoc (which would need a subprocess and a temp file: parsers write no
disk): olefile opens the compound file, then the text is read the way Word does [MS-DOC]:

    FIB (WordDocument stream) -> fcClx/lcbClx -> Clx in the 0Table/1Table stream -> PlcPcd
    -> for each piece: CPs [cp_i, cp_i+1) at fc, either "compressed" (one cp1252 byte per
       character, at fc/2) or UTF-16LE (two bytes per character, at fc).

WPS Office saves .wps in the same binary format (a WordDocument stream), so the sniffer types
it DOC and it is read here.  The main text, the headers/footers and the text boxes are read
(the 红头 unit name often sits in a text box or the header); comments are not.  Field codes
(between 0x13 and 0x14) are dropped and field results kept.  Tracked deletions in a .doc are
not told apart (they live in character properties, which this reader does not parse).
"""

from __future__ import annotations

import io
import struct

from parsers.documents.base import Context, Outcome, TextBudget, short, unreadable
from parsers.types import DocumentText, Paragraph, PartKind, Problem, ProblemCode

_W_IDENT = 0xA5EC
_MAX_PIECES = 100_000
# Characters with a meaning in Word's text stream.
_PARAGRAPH_ENDS = "\r\x07\x0c"  # paragraph, table cell/row end, page/section break
_DROP = dict.fromkeys(map(ord, "\x01\x02\x03\x04\x05\x08\x1f"), None) | {0x0B: "\n", 0x1E: "-", 0xA0: " "}


class DocError(Exception):
    """The .doc structure is broken; `problem` says how."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_doc(ctx: Context) -> Outcome:
    """Kind DOCUMENT for a Word 97-2003 / WPS file; UNREADABLE ENCRYPTED_OFFICE or CORRUPT otherwise."""
    try:
        import olefile
    except ImportError:
        return unreadable(ProblemCode.UNSUPPORTED, "legacy Word .doc: olefile not installed")
    try:
        ole = olefile.OleFileIO(io.BytesIO(ctx.data))
    except Exception as exc:  # olefile raises OSError / ValueError / struct errors on damaged files
        return unreadable(ProblemCode.CORRUPT, f"doc: not a readable OLE2 file: {short(exc)}")
    try:
        stories = _stories(ole, ctx.limits.max_text_chars)
    except DocError as exc:
        return unreadable(exc.problem)
    except Exception as exc:  # olefile errors on broken sector chains, struct errors on short streams
        return unreadable(ProblemCode.CORRUPT, f"doc: {short(exc)}")
    finally:
        ole.close()
    budget = TextBudget(ctx.limits.max_text_chars)
    paragraphs: list[Paragraph] = []
    for where, text in stories:
        for line in _paragraphs(text):
            taken = budget.take(line)
            if taken is None:
                break
            paragraphs.append(Paragraph(taken, where=where))
    if not paragraphs:
        return unreadable(ProblemCode.SCAN_NO_TEXT, "doc has no text")
    return Outcome(PartKind.DOCUMENT, document=DocumentText(paragraphs=tuple(paragraphs)),
                   warnings=budget.warnings())  # fmt: skip


def read_ole(ctx: Context) -> Outcome:
    """An OLE2 file the sniffer could not name (its directory is past where it looked, or cut off).

    Opened with olefile: a Word stream is read as .doc; a file olefile cannot open is damaged
    (CORRUPT, typically a truncated .doc whose directory sat at the end); anything else is an
    OLE2 application we do not read (old Kingsoft WPS "Contents" files among them).
    """
    try:
        import olefile
    except ImportError:
        return unreadable(ProblemCode.UNSUPPORTED, "OLE2 document of unknown application")
    try:
        ole = olefile.OleFileIO(io.BytesIO(ctx.data))
    except Exception as exc:
        return unreadable(ProblemCode.CORRUPT, f"OLE2 file is damaged or cut short: {short(exc)}")
    try:
        is_word = ole.exists("WordDocument")
    finally:
        ole.close()
    if is_word:
        return read_doc(ctx)
    return unreadable(ProblemCode.UNSUPPORTED, "OLE2 document of unknown application")


def _stories(ole, max_chars: int) -> list[tuple[str, str]]:  # noqa: ANN001 - an OleFileIO
    """(where, text) of the main text, headers/footers and text boxes, in that order."""
    if not ole.exists("WordDocument"):
        raise DocError(Problem(ProblemCode.CORRUPT, "doc: no WordDocument stream"))
    word = ole.openstream("WordDocument").read()
    if len(word) < 0x1AA:
        raise DocError(Problem(ProblemCode.TRUNCATED, "doc: FIB shorter than Word 97's"))
    ident, _nfib = struct.unpack_from("<HH", word, 0)
    if ident != _W_IDENT:
        raise DocError(Problem(ProblemCode.CORRUPT, f"doc: FIB identifier {ident:#06x}"))
    flags = struct.unpack_from("<H", word, 0x0A)[0]
    if flags & 0x0100:
        raise DocError(Problem(ProblemCode.ENCRYPTED_OFFICE, "doc: password protected"))
    table_name = "1Table" if flags & 0x0200 else "0Table"
    if not ole.exists(table_name):
        raise DocError(Problem(ProblemCode.CORRUPT, f"doc: no {table_name} stream"))
    # FibBase (32 bytes), csw + fibRgW, cslw + fibRgLw, cbRgFcLcb + fibRgFcLcbBlob.
    pos = 0x20
    csw = struct.unpack_from("<H", word, pos)[0]
    pos += 2 + 2 * csw
    cslw = struct.unpack_from("<H", word, pos)[0]
    lw_at = pos + 2
    pos = lw_at + 4 * cslw
    cb_fc_lcb = struct.unpack_from("<H", word, pos)[0]
    fc_at = pos + 2
    if cslw < 11 or cb_fc_lcb < 34 or fc_at + 34 * 8 > len(word):
        raise DocError(Problem(ProblemCode.CORRUPT, "doc: FIB too short"))
    ccp = struct.unpack_from("<11i", word, lw_at)  # cbMac, 2 reserved, ccpText, Ftn, Hdd, reserved, Atn, Edn, Txbx, HdrTxbx
    fc_clx, lcb_clx = struct.unpack_from("<II", word, fc_at + 33 * 8)
    table = ole.openstream(table_name).read()
    if lcb_clx == 0 or fc_clx + lcb_clx > len(table):
        raise DocError(Problem(ProblemCode.CORRUPT, "doc: piece table outside the table stream"))
    text = _piece_text(word, table[fc_clx : fc_clx + lcb_clx], max_chars * 2)
    lengths = [max(0, n) for n in ccp[3:11]]
    text_len, ftn, hdd, _res, atn, edn, txbx, hdr_txbx = lengths
    starts = {}
    at = 0
    for name, n in (("text", text_len), ("ftn", ftn), ("hdd", hdd), ("atn", atn), ("edn", edn),
                    ("txbx", txbx), ("hdrtxbx", hdr_txbx)):  # fmt: skip
        starts[name] = (at, at + n)
        at += n

    def story(name: str) -> str:
        a, b = starts[name]
        return text[a:b]

    return [("body", story("text")), ("header", story("hdd")), ("textbox", story("txbx") + story("hdrtxbx")),
            ("footnote", story("ftn") + story("edn"))]  # fmt: skip


def _piece_text(word: bytes, clx: bytes, max_chars: int) -> str:
    """The document's characters in CP order, from the Clx's piece table (at most `max_chars`)."""
    pos = 0
    while pos < len(clx) and clx[pos] == 0x01:  # Prc: property modifiers, skipped
        size = struct.unpack_from("<h", clx, pos + 1)[0]
        if size < 0:
            raise DocError(Problem(ProblemCode.CORRUPT, "doc: negative grpprl size"))
        pos += 3 + size
    if pos + 5 > len(clx) or clx[pos] != 0x02:
        raise DocError(Problem(ProblemCode.CORRUPT, "doc: no piece table in the Clx"))
    lcb = struct.unpack_from("<I", clx, pos + 1)[0]
    plc = clx[pos + 5 : pos + 5 + lcb]
    if len(plc) < lcb or (lcb - 4) % 12:
        raise DocError(Problem(ProblemCode.CORRUPT, "doc: piece table size"))
    count = (lcb - 4) // 12
    if count > _MAX_PIECES:
        raise DocError(Problem(ProblemCode.CORRUPT, f"doc: {count} pieces"))
    cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
    out: list[str] = []
    total = 0
    for i in range(count):
        start, end = cps[i], cps[i + 1]
        n = end - start
        if n <= 0:
            continue
        n = min(n, max_chars - total)
        if n <= 0:
            break
        fc_raw = struct.unpack_from("<I", plc, 4 * (count + 1) + 8 * i + 2)[0]
        if fc_raw & 0x40000000:  # compressed: 8-bit characters at fc / 2
            fc = (fc_raw & 0x3FFFFFFF) // 2
            chunk = word[fc : fc + n].decode("cp1252", "replace")
        else:
            fc = fc_raw & 0x3FFFFFFF
            chunk = word[fc : fc + 2 * n].decode("utf-16-le", "replace")
        out.append(chunk)
        total += len(chunk)
    return "".join(out)


def _paragraphs(text: str) -> list[str]:
    """Split Word's text stream into clean paragraphs: field codes dropped, results kept."""
    text = _drop_field_codes(text)
    for mark in _PARAGRAPH_ENDS:
        text = text.replace(mark, "\n")
    lines = (line.translate(_DROP).strip() for line in text.split("\n"))
    return [line for line in lines if line]


def _drop_field_codes(text: str) -> str:
    """Remove field instructions (0x13 ... 0x14) and the markers, keep the result (0x14 ... 0x15)."""
    if "\x13" not in text:
        return text
    out: list[str] = []
    fields: list[bool] = []  # one entry per open field: True while in its code part
    in_code = 0  # how many entries of `fields` are True (linear time on hostile nesting)
    for ch in text:
        if ch == "\x13":
            fields.append(True)
            in_code += 1
        elif ch == "\x14":
            if fields and fields[-1]:
                fields[-1] = False
                in_code -= 1
        elif ch == "\x15":
            if fields:
                in_code -= fields.pop()
        elif not in_code:
            out.append(ch)
    return "".join(out)
