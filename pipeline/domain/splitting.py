"""Several complete reports in one document (a district bureau's compilation, two reports in one PDF).

A document is split only when it holds two or more COMPLETE reports, each with its own title
line (found by the campaign's `Recognizer`), at least two of the template's section headings and
its own closing (报送单位 line or signature with a date) — and the closings name different units.
Anything less is one document, judged as before: a cover page repeating the title, a running
page header, a summary table listing institutions (never a report), a report that quotes another's
title.  Each part then becomes an item of its own, "<path>#<n>" (n from 1), attributed like one
attachment of a bundle.
"""

from __future__ import annotations

import re

from pipeline.domain.blocks import DATE_LINE, UNIT_LINE, unit_block
from pipeline.domain.recognition import Recognizer, is_summary_table

MIN_LINES = 8  # a complete report has a title, 2+ headings with text and a closing
MIN_HEADINGS = 2
MAX_PARTS = 50  # a compilation of a whole district is ~30 units
_TITLES_PER_PART = 3  # a cover page or a quoted title besides each report's own
_LEAD_LINES = 2  # a part may start this many name-like lines above its title (the 红头 unit name)
_LEAD_CHARS = 40
_SENTENCE = re.compile(r"[。，；：:！？,;!?]")


def part_path(path: str, number: int) -> str:
    """The item path of the `number`-th report (from 1) inside the document at `path`."""
    return f"{path}#{number}"


def split_reports(lines: list[str], recognizer: Recognizer) -> list[list[str]]:
    """The complete reports in `lines` when there are two or more, each as its own lines; [] otherwise."""
    if len(lines) < MIN_LINES * 2 or is_summary_table(lines):
        return []
    titles = [i for i, line in enumerate(lines) if recognizer.title_line([line])]
    if not 2 <= len(titles) <= MAX_PARTS * _TITLES_PER_PART:
        return []  # more title-like lines than any compilation has: a list of titles, not reports
    starts = [0] + [_start(lines, t, floor) for floor, t in zip(titles, titles[1:], strict=False)]
    segments = [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    parts: list[list[str]] = []
    pending: list[str] = []  # an incomplete stretch (a cover page) joins the next part, or the last one
    for segment in segments:
        candidate = pending + segment
        if _complete(candidate, recognizer):
            parts.append(candidate)
            pending = []
        else:
            pending = candidate
    if pending and parts:
        parts[-1] = parts[-1] + pending
    if not 2 <= len(parts) <= MAX_PARTS:
        return []
    units = [unit_block(part) for part in parts]
    if len(set(units)) != len(units):
        return []  # two parts closing with the same unit: one report cut by a repeated title
    return parts


def _start(lines: list[str], title: int, floor: int) -> int:
    """Where the part whose title is at `title` begins: the title, or a short unit-name line just above it."""
    start = title
    for i in range(title - 1, max(floor, title - 1 - _LEAD_LINES), -1):
        line = lines[i]
        if len(line) > _LEAD_CHARS or _SENTENCE.search(line) or DATE_LINE.search(line) or UNIT_LINE.search(line):
            break  # the previous report's closing, or text: not a heading of this one
        start = i
    return start


def _complete(lines: list[str], recognizer: Recognizer) -> bool:
    if len(lines) < MIN_LINES or recognizer.section_headings(lines) < MIN_HEADINGS:
        return False
    if not recognizer.recognise_text(lines).is_report:
        return False
    return bool(unit_block(lines))
