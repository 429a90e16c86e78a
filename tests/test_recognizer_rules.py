"""The Recognizer compiles a campaign's rules: each rule of that compilation, by name."""

from __future__ import annotations

from pipeline.config import CampaignRules, SectionRule
from pipeline.domain.recognition import Recognizer

DATA_SECURITY = CampaignRules(
    topic_words=("数据安全",),
    sections=(
        SectionRule("数据资产", ("数据资产", "数据资源"), True),
        SectionRule("风险与整改", ("风险与整改",), True),
    ),
    template_label="附件4",
)
BODY = ["广州市白云区中医医院", "一、数据资源", "共有业务系统12个，涉及患者数据库3个。", "二、风险与整改", "已关闭外网数据库端口。"]


def test_a_campaign_about_an_other_campaign_word_keeps_its_own_reports() -> None:
    """GIVEN a campaign whose topic is 数据安全 (a word of the generic other-campaign list, 数据安全自查)
    WHEN a headings-only report or a filename names it THEN it is this campaign's, not "another's"."""
    recognizer = Recognizer(DATA_SECURITY)
    lines = ["数据安全自查情况", *BODY]
    result = recognizer.recognise_text(lines, filename="白云区中医医院数据安全自查.docx")
    assert result.is_report and result.why == "含附件4的 2 个章节标题"
    assert recognizer.names_a_report("数据安全自查报告.docx")


def test_the_generic_other_campaign_words_still_apply_to_a_campaign_without_them() -> None:
    """GIVEN the same document under a campaign about 预约挂号 THEN the 数据安全自查 report is another campaign's."""
    other = CampaignRules(("预约挂号",), DATA_SECURITY.sections, "附件3")
    recognizer = Recognizer(other)
    assert not recognizer.recognise_text(["数据安全自查情况", *BODY], filename="数据安全自查.docx").is_report
    assert not recognizer.names_a_report("数据安全自查报告.docx")


def test_any_heading_word_and_either_number_style_marks_a_section() -> None:
    """A heading is the section's number (一、 or 1.) and one of its heading words; content must follow."""
    recognizer = Recognizer(DATA_SECURITY)
    assert recognizer.find_sections(["1.数据资产", "12个系统", "二、风险与整改"]) == {"数据资产": True, "风险与整改": False}
    assert recognizer.find_sections(["二、数据资产", "12个系统"]) == {"数据资产": False, "风险与整改": False}
