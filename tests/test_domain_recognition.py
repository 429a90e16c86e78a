"""Rules of report recognition: is this text a self-check report of this campaign, which sections are filled.

Documents are real `DocumentText`/`Paragraph` objects written line by line here; the
reasons asserted are the distinguishing words of each rule's verdict, so a rule that
stops firing fails by name even when another rule happens to give the same yes/no.
"""

from __future__ import annotations

from pathlib import Path

from parsers.types import DocumentText, Paragraph
from pipeline.config import load_config
from pipeline.domain.recognition import Recognizer, lines_of

# The shipped campaign's rules (config.toml), compiled as every job compiles them.
RECOGNIZER = Recognizer(load_config(Path(__file__).resolve().parent.parent / "config.toml").campaign.rules)
SECTIONS = RECOGNIZER.sections
find_sections = RECOGNIZER.find_sections
names_a_report = RECOGNIZER.names_a_report
recognise_text = RECOGNIZER.recognise_text
title_line = RECOGNIZER.title_line

TITLE = "广州市番禺区第二人民医院电子健康码平台应用自查情况报告"
BODY = [
    "一、基本情况",
    "我院使用电子健康码平台的系统共3个，均已完成自查，未发现数据泄露。",
    "二、整改措施及完成时限",
    "已于7月9日关闭对外测试接口，修改默认口令，完成时限为7月15日。",
    "三、其他需要说明的事项",
    "无。",
]



def document(*lines: str) -> DocumentText:
    return DocumentText(paragraphs=tuple(Paragraph(line) for line in lines))


def recognise(lines: list[str], **kwargs: object):  # noqa: ANN201 - Recognition
    return recognise_text(lines_of(document(*lines)), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- what counts as a report


def test_document_titled_with_the_campaign_topic_is_a_report() -> None:
    """GIVEN a document titled "…电子健康码平台应用自查情况报告" with the three sections filled
    WHEN recognised THEN it is a report, the title is found and all sections are complete."""
    result = recognise([TITLE, *BODY])
    assert result.is_report and "报告标题" in result.why
    assert result.title == TITLE
    assert result.sections == dict.fromkeys(SECTIONS, True) and result.sections_complete


def test_report_of_another_campaign_is_not_a_report_even_with_the_same_sections() -> None:
    """GIVEN a 网络安全等级保护自查报告 that borrows the three section headings WHEN recognised THEN it is not
    a report of this campaign."""
    result = recognise(
        ["广州市番禺区第二人民医院网络安全等级保护自查报告", *BODY], filename="等保自查报告.docx"
    )
    assert not result.is_report and "其他专项" in result.why


def test_district_summary_table_is_not_a_report() -> None:
    """GIVEN a bureau's table listing who has and has not reported WHEN recognised THEN it is not a report
    (being listed is not reporting)."""
    lines = ["番禺区电子健康码平台应用自查报送情况汇总表", "单位 报送情况", "番禺区第二人民医院 已报送",
             "番禺区第三人民医院 未报送", "番禺区第五人民医院 尚未报送"]  # fmt: skip
    result = recognise(lines)
    assert not result.is_report and "汇总表" in result.why


def test_blank_template_is_not_a_report() -> None:
    """GIVEN the Annex 2 template unfilled (title "XXX…", headings only) WHEN recognised THEN not a report."""
    result = recognise(
        [
            "XXX电子健康码平台应用自查情况报告",
            "一、基本情况",
            "二、整改措施及完成时限",
            "三、其他需要说明的事项",
        ]
    )
    assert not result.is_report and "空白模板" in result.why


def test_filled_template_that_kept_the_xxx_title_is_a_report() -> None:
    """GIVEN a template whose title still reads "XXX…" but with 200+ characters written under the headings
    WHEN recognised THEN it is a report (the content decides, not the forgotten placeholder)."""
    answer = (
        "我院使用电子健康码平台的系统共3个，均已完成自查，关闭测试接口并修改默认口令，未发现数据泄露。" * 2
    )
    lines = ["XXX电子健康码平台应用自查情况报告", "一、基本情况", answer, "二、整改措施及完成时限", answer,
             "三、其他需要说明的事项", answer]  # fmt: skip
    result = recognise(lines)
    assert result.is_report and result.sections_complete


def test_heading_only_document_without_content_is_not_a_report() -> None:
    """GIVEN a document with the campaign's title but nothing written under its headings (under 60 characters)
    WHEN recognised THEN it is not a report."""
    result = recognise([TITLE, "一、基本情况", "二、整改措施及完成时限", "三、其他需要说明的事项"])
    assert not result.is_report and not any(result.sections.values())


def test_untitled_document_with_two_section_headings_and_the_topic_near_the_top_is_a_report() -> None:
    """GIVEN no report title but two template headings and 健康码 in the first lines WHEN recognised
    THEN it is a report by its sections."""
    result = recognise(["广州市番禺区第二人民医院", "关于电子健康码平台应用情况", *BODY[:4]])
    assert result.is_report and "章节标题" in result.why and result.title == ""


def test_untitled_document_gets_the_topic_from_its_filename() -> None:
    """GIVEN no title and no topic word in the text, but the filename names 健康码 WHEN recognised
    THEN the section headings make it a report; without that filename it is not."""
    lines = ["广州市番禺区第二人民医院", "一、基本情况", "我院共有对外服务系统3个，均已完成检查。",
             "二、整改措施及完成时限", "已关闭对外测试接口，修改默认口令。"]  # fmt: skip
    assert recognise(lines, filename="健康码自查.docx").is_report
    assert not recognise(lines, filename="材料.docx").is_report


def test_untitled_document_naming_another_campaign_near_the_top_is_not_a_report() -> None:
    """GIVEN two headings and 健康码 near the top, but also 等级保护 WHEN recognised THEN it is not a report."""
    result = recognise(["关于电子健康码与等级保护工作的情况", *BODY])
    assert not result.is_report


def test_mail_body_that_only_mentions_the_report_is_not_a_report() -> None:
    """GIVEN a cover letter in the mail body that mentions the report (long enough not to be blank)
    WHEN recognised as a body THEN it is not a report."""
    lines = ["各位领导：", "您好！附件是我院电子健康码平台应用自查情况报告的电子版和盖章扫描件，请查收。",
             "如有问题请联系信息科何锋，电话020-12345678，谢谢！", "广州市番禺区第二人民医院信息科"]  # fmt: skip
    result = recognise(lines, is_body=True)
    assert not result.is_report and "正文" in result.why


def test_mail_body_carrying_the_template_sections_is_a_report() -> None:
    """GIVEN a mail body that is the report itself (title and sections) WHEN recognised as a body
    THEN it is a report."""
    assert recognise([TITLE, *BODY], is_body=True).is_report


# ---------------------------------------------------------------- titles


def test_title_may_be_spaced_out_with_ideographic_spaces() -> None:
    """GIVEN a title written "自\u3000查\u3000报\u3000告" WHEN the title line is looked for THEN it is found."""
    spaced = "电子健康码平台应用自\u3000查\u3000报\u3000告"
    assert title_line(["广州市番禺区第二人民医院", spaced]) == spaced


def test_a_sentence_about_a_report_is_not_a_title() -> None:
    """GIVEN a line that mentions the self-check report and ends with 。 WHEN the title is looked for
    THEN it is not taken."""
    assert title_line(["现将我院电子健康码平台应用自查报告报送如下。"]) == ""


def test_title_naming_the_topic_is_preferred_over_an_earlier_generic_one() -> None:
    """GIVEN a generic 自查报告 title line and then a topical one WHEN the title is looked for THEN the topical
    one is returned."""
    assert title_line(["信息安全自查报告", TITLE]) == TITLE


# ---------------------------------------------------------------- sections


def test_section_headed_but_empty_is_not_filled() -> None:
    """GIVEN headings one and three with nothing under them and heading two with text WHEN sections are
    read THEN only 整改措施及完成时限 is filled."""
    sections = find_sections(["一、基本情况", "二、整改措施及完成时限", "已整改。", "三、其他需要说明的事项"])
    assert sections == {"基本情况": False, "整改措施及完成时限": True, "其他需要说明的事项": False}


def test_explicit_none_fills_a_section() -> None:
    """GIVEN "无。" under 其他需要说明的事项 WHEN sections are read THEN that section is filled."""
    assert find_sections(["三、其他需要说明的事项", "无。"])["其他需要说明的事项"]


def test_punctuation_alone_does_not_fill_a_section() -> None:
    """GIVEN only "：。" under a heading WHEN sections are read THEN the section is not filled."""
    assert not find_sections(["一、基本情况", "：。"])["基本情况"]


def test_content_on_the_heading_line_fills_the_section() -> None:
    """GIVEN "一、基本情况：我院共有系统2个。" on one line WHEN sections are read THEN 基本情况 is filled."""
    assert find_sections(["一、基本情况：我院共有系统2个。"])["基本情况"]


def test_heading_variants_with_arabic_numerals_and_short_wording_are_recognised() -> None:
    """GIVEN "1．基本情况", "2、整改情况", "3. 其他需说明的事项" each followed by text WHEN sections are read
    THEN all three are filled."""
    lines = ["1．基本情况", "有。", "2、整改情况", "有。", "3. 其他需说明的事项", "无。"]
    assert find_sections(lines) == dict.fromkeys(SECTIONS, True)


def test_lines_of_a_document_are_stripped_and_blank_paragraphs_dropped() -> None:
    """GIVEN paragraphs with surrounding spaces and empty ones WHEN lines are taken THEN only stripped text."""
    assert lines_of(document("  标题 ", "", "\u3000", "正文")) == ["标题", "正文"]


# ---------------------------------------------------------------- filenames and subjects


def test_filename_with_topic_and_self_check_names_a_report() -> None:
    """GIVEN "附件2：…电子健康码平台应用自查情况报告.docx" WHEN checked THEN it names a report."""
    assert names_a_report(f"附件2：{TITLE}.docx")


def test_generic_self_check_report_filename_names_a_report() -> None:
    """GIVEN "自查报告.docx" (no topic, no other campaign) WHEN checked THEN it names a report."""
    assert names_a_report("自查报告.docx")


def test_filename_of_another_campaign_does_not_name_a_report() -> None:
    """GIVEN "网络安全等级保护自查报告.docx" WHEN checked THEN it does not name a report of this campaign."""
    assert not names_a_report("网络安全等级保护自查报告.docx")


def test_filename_without_report_words_does_not_name_a_report() -> None:
    """GIVEN "会议通知.docx" and "健康码.docx" WHEN checked THEN neither names a report."""
    assert not names_a_report("会议通知.docx") and not names_a_report("健康码.docx")


def test_spaced_subject_names_a_report() -> None:
    """GIVEN a subject "健康码 自 查 报 告" spaced out WHEN checked THEN it names a report."""
    assert names_a_report("健康码 自 查 报 告")
