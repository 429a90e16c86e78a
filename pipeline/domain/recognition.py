"""Is this text a self-check report of this campaign, and which template sections does it fill?

The Annex 2 template: a title "XXX 电子健康码平台应用自查情况报告" and three sections
一、基本情况 / 二、整改措施及完成时限 / 三、其他需要说明的事项.  The mailbox also holds
self-check reports of other campaigns (等级保护, 数据安全 …), template questions and
district summary tables; those must not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.types import DocumentText

SECTIONS = ("基本情况", "整改措施及完成时限", "其他需要说明的事项")
_SECTION_HEADINGS = (
    re.compile(r"^\s*[一1][、.．,，\s]\s*基本情况"),
    re.compile(r"^\s*[二2][、.．,，\s]\s*整改(措施|情况)"),
    re.compile(r"^\s*[三3][、.．,，\s]\s*其他(需要|需)?说明"),
)
_TOPIC = re.compile(r"健康码|健康卡|码管平台")
_SELF_CHECK = re.compile(r"自\s*查|自\s*检|排\s*查|整\s*改")
_OTHER_CAMPAIGN = re.compile(r"等级保护|等保|数据安全自查|网络安全自查|网络安全检查|消防|医保|财务|招标|安全生产")
_SUMMARY_WORDS = re.compile(r"已报送|未报送|报送情况|汇总表|统计表|报送进度|尚未报送|未按时报送")
_BLANK_TEMPLATE = re.compile(r"模板|^X{2,}|ＸＸＸ", re.IGNORECASE)
_MIN_SECTION_CHARS = 1
_SPACES = re.compile(r"\s+")
_TEMPLATE_CHARS = 200  # the blank Annex 2 template with its guidance note is about 110 characters
_NOT_CONTENT = re.compile(r"[\s：:。.，,、；;（）()\-—_]+")
_SENTENCE_ENDS = ("。", "，", "；", "：", ":", "！", "？", ",", ";")


@dataclass(frozen=True, slots=True)
class Recognition:
    is_report: bool
    why: str
    sections: dict[str, bool]  # section name -> present and non-empty
    title: str  # the report's title line, "" when none was found

    @property
    def sections_complete(self) -> bool:
        return all(self.sections.values())


def _compact(text: str) -> str:
    """Text without any white space (Chinese writers space out titles, often with U+3000)."""
    return _SPACES.sub("", text)


def lines_of(document: DocumentText) -> list[str]:
    return [p.text.strip() for p in document.paragraphs if p.text.strip()]


def find_sections(lines: list[str]) -> dict[str, bool]:
    """Which template sections have a heading followed by some content."""
    positions: list[tuple[int, int]] = []
    for index, line in enumerate(lines):
        for number, pattern in enumerate(_SECTION_HEADINGS):
            if pattern.match(line):
                positions.append((index, number))
                break
    result = dict.fromkeys(SECTIONS, False)
    for k, (index, number) in enumerate(positions):
        end = positions[k + 1][0] if k + 1 < len(positions) else len(lines)
        heading_rest = _SECTION_HEADINGS[number].sub("", lines[index], count=1)
        body = _NOT_CONTENT.sub("", "".join(lines[index + 1 : end]) + heading_rest)
        # Any written answer counts, "无。" included: an explicit "nothing to add" fills the section.
        result[SECTIONS[number]] = result[SECTIONS[number]] or len(body) >= _MIN_SECTION_CHARS
    # A heading without content still shows the template was used: record presence separately.
    return result


def section_headings(lines: list[str]) -> int:
    return sum(1 for pattern in _SECTION_HEADINGS if any(pattern.match(line) for line in lines))


def title_line(lines: list[str]) -> str:
    """The line near the top that reads like a self-check report's title (not a sentence about one)."""
    candidates = []
    for line in lines[:15]:
        compact = _compact(line)
        if len(compact) > 80 or compact.endswith(_SENTENCE_ENDS):
            continue
        if _SELF_CHECK.search(compact) and "报告" in compact:
            candidates.append(line)
    topical = [c for c in candidates if _TOPIC.search(_compact(c))]
    return (topical or candidates or [""])[0]


def recognise_text(lines: list[str], *, filename: str = "", is_body: bool = False) -> Recognition:
    """Decide whether document (or mail body) lines are a report of this campaign.

    A document with a report title counts when the title names this campaign's
    topic; one with another title (等级保护, 关键信息基础设施 …) never does, even if it
    borrows the three section headings.  A mail body is usually a cover letter that
    *mentions* the report, so it counts only when it carries the template's sections.
    """
    headings = section_headings(lines)
    title = title_line(lines)
    head_text = "".join(lines[:12])
    sections = find_sections(lines)
    if is_summary_table(lines):
        return Recognition(False, "区汇总表（列出不等于报送）", sections, title)
    compact_title = _compact(title)
    topic_in_title = bool(_TOPIC.search(compact_title))
    if title and not topic_in_title and not _TOPIC.search(filename):
        return Recognition(False, f"其他专项的自查报告：{title[:40]}", sections, title)
    first_heading = next((i for i, line in enumerate(lines) if any(p.match(line) for p in _SECTION_HEADINGS)), 0)
    written = len(_NOT_CONTENT.sub("", "".join(lines[first_heading:])))
    if (_BLANK_TEMPLATE.search(compact_title) and written < _TEMPLATE_CHARS) or (not any(sections.values()) and written < 60):
        return Recognition(False, "空白模板（没有填写内容）", sections, title)
    if is_body and headings < 2:
        return Recognition(False, "正文不是报告（没有附件2的章节）", sections, title)
    if title:
        return Recognition(True, "附件2报告标题", sections, title)
    if headings >= 2 and _TOPIC.search(head_text + filename) and not _OTHER_CAMPAIGN.search(head_text):
        return Recognition(True, f"含附件2的 {headings} 个章节标题", sections, title)
    return Recognition(False, "不是本次自查报告", sections, title)


def is_summary_table(lines: list[str]) -> bool:
    text = "".join(lines[:400])
    hits = len(_SUMMARY_WORDS.findall(text))
    return hits >= 3 or ("汇总" in "".join(lines[:3]) and hits >= 1)


def names_a_report(text: str) -> bool:
    """Whether a filename or subject announces a report of this campaign."""
    compact = _compact(text)
    if _OTHER_CAMPAIGN.search(compact) and not _TOPIC.search(compact):
        return False
    return bool(_TOPIC.search(compact) and (_SELF_CHECK.search(compact) or "报告" in compact)) or (
        "自查" in compact and "报告" in compact and not _OTHER_CAMPAIGN.search(compact)
    )
