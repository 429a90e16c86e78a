"""The closing blocks of a report that say whose it is: the 报送单位 line, the signature, the seal.

Shared by attribution (which weighs them) and the splitting of several reports in one document
(which needs each part to carry its own).
"""

from __future__ import annotations

import re

from parsers.types import DocumentText
from pipeline.domain.matching import normalise
from pipeline.domain.roster import Roster

# Linear on any line: each optional piece starts with a non-space character, so no two `\s*` can
# compete for the same run of spaces ("单位" + 1,500 spaces used to backtrack for minutes).
UNIT_LINE = re.compile(r"(报送单位|填报单位|单位名称|报告单位|上报单位|单位)\s*(?:[（(]\s*)?(?:(?:盖章|公章)\s*)?(?:[）)]\s*)?[:：]")
DATE_LINE = re.compile(r"20\d\d\s*[年.\-/]\s*\d{1,2}\s*[月.\-/]\s*\d{1,2}\s*日?")
_SENTENCE_MARKS = re.compile(r"[。，；！？,;!?]")
_SIGNATURE_MAX_CHARS = 40
STAMP_SUFFIX = "-stamp"  # OCR's paragraph for a red seal's ring text: where="ocr-page-N-stamp"
_RING_CHARS = 60  # a seal's ring holds ~20 glyphs; anything longer is not one
_MIN_RING_NAME = 6  # shorter aliases ("太和医院") are too easy to hit by chance
_GLYPHS_PER_MISS = 8


def signature_indexes(lines: list[str]) -> list[int]:
    """Lines of the closing signature block: the short, name-like lines just above (or on) the date line.

    A sentence ("我院与某医院组建医联体。") is never a signature, however short.
    """

    def name_like(line: str) -> bool:
        return len(line) <= _SIGNATURE_MAX_CHARS and not _SENTENCE_MARKS.search(line)

    start = max(-1, len(lines) - 8)
    date_index = next((i for i in range(len(lines) - 1, start, -1) if DATE_LINE.search(lines[i])), None)
    if date_index is None:
        return [i for i in range(max(0, len(lines) - 3), len(lines)) if name_like(lines[i])]
    picked = [date_index] if name_like(lines[date_index]) else []
    for i in range(date_index - 1, max(-1, date_index - 4), -1):
        if not name_like(lines[i]):
            break
        picked.append(i)
    return picked


def signature_lines(body_lines: list[str]) -> list[str]:
    lines = [line.strip() for line in body_lines if line.strip()]
    return [lines[i] for i in signature_indexes(lines)] if lines else []


def stamp_texts(document: DocumentText | None) -> set[str]:
    """The ring texts OCR read from red seals (each a paragraph of its own)."""
    if document is None:
        return set()
    return {p.text.strip() for p in document.paragraphs if p.where.endswith(STAMP_SUFFIX) and p.text.strip()}


def unit_block(lines: list[str]) -> str:
    """What a report's closing says about its unit: its 报送单位 line(s), else its signature block ("" when none)."""
    units = [line[m.end() :].strip() for line in lines if (m := UNIT_LINE.search(line)) and line[m.end() :].strip()]
    if units:
        return units[-1]
    signature = [lines[i] for i in sorted(signature_indexes(lines)) if not DATE_LINE.search(lines[i])]
    return " ".join(signature) if any(DATE_LINE.search(line) for line in lines[-8:]) else ""


def near_stamp_name(text: str, roster: Roster) -> str:
    """The roster name a seal's ring text reads as when OCR misread a glyph or two ("番里区" for "番禺区").

    A ring is set in a circle and OCR'd after unwrapping: single-glyph misreadings are common, whole
    words rarely are.  A name counts when some window of the text differs from it (or an alias of
    6+ characters) in at most one glyph per `_GLYPHS_PER_MISS`, and no other name comes as close;
    "" otherwise (two hospitals differing in one glyph, 第二/第三人民医院, then need the text to decide).
    """
    compact = normalise(text)[:_RING_CHARS]
    best: dict[str, int] = {}
    for inst in roster:
        for name in (inst.name, *inst.aliases):
            target = normalise(name)
            if len(target) < _MIN_RING_NAME or len(target) > len(compact):
                continue
            allowed = max(1, len(target) // _GLYPHS_PER_MISS)
            misses = min(sum(a != b for a, b in zip(compact[i : i + len(target)], target, strict=True))
                         for i in range(len(compact) - len(target) + 1))  # fmt: skip
            if misses <= allowed:
                best[inst.name] = min(best.get(inst.name, misses), misses)
    ranked = sorted(best.items(), key=lambda kv: kv[1])
    if not ranked or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return ""
    return ranked[0][0]
