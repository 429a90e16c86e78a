"""Is this text a self-check report of this campaign, and which template sections does it fill?

Pure rules, compiled once from the campaign's data: `Recognizer(rules)` where
`rules` is `config.campaign.rules` ([campaign] topic_words, template_label,
sections in config.toml).  Nothing here reads the config or module state.

What is campaign data (config.toml) and what is generic vocabulary (here):

- campaign data: the topic words a report's title must name (健康码 …), the
  template's section titles and heading words, the template's label (附件2).
- generic vocabulary, the same for any self-check campaign: the words of a
  report title (自查/自检/排查/整改 + 报告), other campaigns that share the
  general inbox (等级保护, 数据安全自查, 消防 …; a word that overlaps this
  campaign's topic words is dropped from that list), the words of a district
  summary table (已报送, 汇总表 …) and of a blank template (模板, XXX).

The mailbox holds self-check reports of other campaigns, template questions and
district summary tables; those must not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from parsers.types import DocumentText
from pipeline.config import SECTION_NUMERALS, CampaignRules
from pipeline.domain.deadline import check_deadline

_SELF_CHECK = re.compile(r"自\s*查|自\s*检|排\s*查|整\s*改")
_OTHER_CAMPAIGNS = (
    "等级保护", "等保", "数据安全自查", "网络安全自查", "网络安全检查", "消防", "医保", "财务", "招标", "安全生产",
)  # fmt: skip
_SUMMARY_WORDS = re.compile(r"已报送|未报送|报送情况|汇总表|统计表|报送进度|尚未报送|未按时报送")
_BLANK_TEMPLATE = re.compile(r"模板|^X{2,}|ＸＸＸ", re.IGNORECASE)
_MIN_SECTION_CHARS = 1
_SPACES = re.compile(r"\s+")
_TEMPLATE_CHARS = 200  # the blank template with its guidance note is about 110 characters
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


def _words(words: tuple[str, ...] | list[str]) -> re.Pattern[str]:
    """A pattern matching any of the literal words (longest first, so a longer word wins)."""
    return re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))


def lines_of(document: DocumentText) -> list[str]:
    return [p.text.strip() for p in document.paragraphs if p.text.strip()]


def is_summary_table(lines: list[str]) -> bool:
    text = "".join(lines[:400])
    hits = len(_SUMMARY_WORDS.findall(text))
    return hits >= 3 or ("汇总" in "".join(lines[:3]) and hits >= 1)


def _title_tail_removed(rest: str, title: str) -> str:
    """What follows a section heading once the rest of its title is dropped.

    The heading pattern matches the title's first words ("二、整改措施"); the rest of the
    printed title ("及完成时限", "的事项") is not an answer and must not fill the section.
    """
    rest = _compact(rest)
    cut = 0
    while cut < len(rest) and rest[: cut + 1] in title:
        cut += 1
    return rest[cut:]


@dataclass(frozen=True)
class Recognizer:
    """The campaign's recognition rules, compiled.  Build once per job: `Recognizer(config.campaign.rules)`."""

    rules: CampaignRules

    @cached_property
    def topic(self) -> re.Pattern[str]:
        return _words(self.rules.topic_words)

    @cached_property
    def other_campaign(self) -> re.Pattern[str]:
        # A campaign about 数据安全 must not reject its own reports as "another campaign's".
        topic = self.rules.topic_words
        own = [w for w in _OTHER_CAMPAIGNS if not any(t in w or w in t for t in topic)]
        return _words(own) if own else re.compile(r"(?!)")

    @cached_property
    def headings(self) -> tuple[re.Pattern[str], ...]:
        """Per section: its number (一 or 1) and separator, then one of its heading words."""
        return tuple(
            re.compile(rf"^\s*(?:{SECTION_NUMERALS[i]}|{i + 1})[、.．,，\s]\s*(?:{_words(s.heading).pattern})")
            for i, s in enumerate(self.rules.sections)
        )

    @property
    def sections(self) -> tuple[str, ...]:
        return self.rules.section_titles

    @property
    def _label(self) -> str:
        return self.rules.template_label or "模板"

    def find_sections(self, lines: list[str]) -> dict[str, bool]:
        """Which template sections have a heading followed by some content."""
        positions: list[tuple[int, int]] = []
        for index, line in enumerate(lines):
            for number, pattern in enumerate(self.headings):
                if pattern.match(line):
                    positions.append((index, number))
                    break
        titles = self.sections
        result = dict.fromkeys(titles, False)
        for k, (index, number) in enumerate(positions):
            end = positions[k + 1][0] if k + 1 < len(positions) else len(lines)
            heading_rest = _title_tail_removed(self.headings[number].sub("", lines[index], count=1), titles[number])
            body = _NOT_CONTENT.sub("", "".join(lines[index + 1 : end]) + heading_rest)
            # Any written answer counts, "无。" included: an explicit "nothing to add" fills the section.
            result[titles[number]] = result[titles[number]] or len(body) >= _MIN_SECTION_CHARS
        return result

    def section_headings(self, lines: list[str]) -> int:
        return sum(1 for pattern in self.headings if any(pattern.match(line) for line in lines))

    def title_line(self, lines: list[str]) -> str:
        """The line near the top that reads like a self-check report's title (not a sentence about one)."""
        candidates = []
        for line in lines[:15]:
            compact = _compact(line)
            if len(compact) > 80 or compact.endswith(_SENTENCE_ENDS):
                continue
            if _SELF_CHECK.search(compact) and "报告" in compact:
                candidates.append(line)
        topical = [c for c in candidates if self.topic.search(_compact(c))]
        return (topical or candidates or [""])[0]

    def recognise_text(self, lines: list[str], *, filename: str = "", is_body: bool = False) -> Recognition:
        """Decide whether document (or mail body) lines are a report of this campaign.

        A document with a report title counts when the title names this campaign's
        topic; one with another title (等级保护, 关键信息基础设施 …) never does, even if it
        borrows the template's section headings.  A mail body is usually a cover letter that
        *mentions* the report, so it counts only when it carries the template's sections.
        """
        check_deadline()
        headings = self.section_headings(lines)
        title = self.title_line(lines)
        head_text = "".join(lines[:12])
        sections = self.find_sections(lines)
        if is_summary_table(lines):
            return Recognition(False, "区汇总表（列出不等于报送）", sections, title)
        compact_title = _compact(title)
        topic_in_title = bool(self.topic.search(compact_title))
        if title and not topic_in_title and not self.topic.search(filename):
            return Recognition(False, f"其他专项的自查报告：{title[:40]}", sections, title)
        first_heading = next((i for i, line in enumerate(lines) if any(p.match(line) for p in self.headings)), 0)
        written = len(_NOT_CONTENT.sub("", "".join(lines[first_heading:])))
        blank = _BLANK_TEMPLATE.search(compact_title) and written < _TEMPLATE_CHARS
        if blank or (not any(sections.values()) and written < 60):
            return Recognition(False, "空白模板（没有填写内容）", sections, title)
        if is_body and headings < 2:
            return Recognition(False, f"正文不是报告（没有{self._label}的章节）", sections, title)
        if title:
            return Recognition(True, f"{self._label}报告标题", sections, title)
        if headings >= 2 and self.topic.search(head_text + filename) and not self.other_campaign.search(head_text):
            return Recognition(True, f"含{self._label}的 {headings} 个章节标题", sections, title)
        return Recognition(False, "不是本次自查报告", sections, title)

    def names_a_report(self, text: str) -> bool:
        """Whether a filename or subject announces a report of this campaign."""
        compact = _compact(text)
        topical = bool(self.topic.search(compact))
        if self.other_campaign.search(compact) and not topical:
            return False
        return (topical and bool(_SELF_CHECK.search(compact) or "报告" in compact)) or (
            "自查" in compact and "报告" in compact and not self.other_campaign.search(compact)
        )
