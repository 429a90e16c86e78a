"""Attribution traps from real mail: each must give the right institution or a review item, never a wrong one."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from docx import Document

from parsers.message import parse_message
from pipeline.config import load_config
from pipeline.domain.attribution import AttributionFacts, attribute_message
from pipeline.domain.matching import normalise
from pipeline.domain.recognition import Recognizer
from pipeline.domain.roster import load_roster

from .conftest import ROOT

SECTIONS = [
    "一、基本情况",
    "我院已接入微信电子健康卡开放平台，经排查存在任意用户绑定风险。",
    "二、整改措施及完成时限",
    "7月31日前中断微信开放平台接入，新注册须本人人脸核验。",
    "三、其他需要说明的事项",
    "无。",
]


@pytest.fixture(scope="module")
def roster():
    return load_roster(load_config(ROOT / "config.toml").campaign)


@pytest.fixture(scope="module")
def facts():
    return AttributionFacts(own_domains=("gz.gov.cn",), mailbox_address="xxb@gz.gov.cn",
                            bureau_addresses={"wjj@panyu-wjj.example": "广州市番禺区卫生健康局"},
                            exempt=frozenset({"广州市卫生健康委员会"}))  # fmt: skip


def report_docx(title: str, *, unit: str = "", partner: str = "", addressee: str = "", sections=SECTIONS) -> bytes:
    doc = Document()
    if addressee:
        doc.add_paragraph(addressee)
    doc.add_paragraph(title)
    for line in sections:
        doc.add_paragraph(line)
    if partner:
        doc.add_paragraph(f"我院与{partner}组建医联体，双方平台相互独立。")
    if unit:
        doc.add_paragraph(unit)
        doc.add_paragraph("2024年7月9日")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def mail(*, sender: str, subject: str, body: str = "请查收。", attachments=(), attached_message: bytes | None = None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = "xxb@gz.gov.cn"
    msg["Subject"] = subject
    msg.set_content(body)
    for filename, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    if attached_message is not None:
        msg.add_attachment(attached_message, maintype="message", subtype="rfc822")
    return msg.as_bytes()


RECOGNIZER = Recognizer(load_config(ROOT / "config.toml").campaign.rules)


def attribute(raw: bytes, roster, facts):  # noqa: ANN001
    return attribute_message(parse_message(raw), roster, facts, RECOGNIZER)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("中山三院", "中山大学附属第三医院"),
        ("省医", "广东省人民医院"),
        ("广医二院", "广州医科大学附属第二医院"),
        ("市妇儿", "广州市妇女儿童医疗中心"),
        ("番禺区第二人民医院", "广州市番禺区第二人民医院"),
        ("广 州 市 番 禺 区 第 七 人 民 医 院", "广州市番禺区第七人民医院"),
        ("南方医科大学南方医院白云分院(广州市白云区人民医院)", "南方医科大学南方医院白云分院（广州市白云区人民医院）"),
        ("广东省妇幼保健院互联网医院", "广东省妇幼保健院互联网医院"),
        ("广东省妇幼保健院", "广东省妇幼保健院"),
        ("广东省第二中医院", "广东省第二中医院"),
        ("广州医科大学附属第五医院", "广州医科大学附属第五医院"),
    ],
)
def test_written_forms_of_names_attribute_to_the_right_row(written, expected, roster, facts):
    raw = mail(sender="someone@qq.example", subject="自查报告",
               attachments=[("报告.docx", report_docx(f"{written}电子健康码平台应用自查情况报告"))])  # fmt: skip
    result = attribute(raw, roster, facts)
    assert result.institutions == (expected,)


def test_ordinal_neighbours_never_match_each_other(roster):
    for text, forbidden in [
        ("花都区第一人民医院", "广州市第一人民医院"),
        ("番禺区第四人民医院", "广州市番禺区第二人民医院"),
        ("广东省第三人民医院", "广东省第二人民医院"),
        ("广东省医学会", "广东省人民医院"),
    ]:
        keys = {m.key for m in roster.index.find(text)}
        assert forbidden not in keys, (text, keys)


def test_partner_mention_and_addressee_do_not_steal_the_report(roster, facts):
    doc = report_docx("电子健康码平台应用自查情况报告", unit="报送单位（盖章）：广州市番禺区中心医院",
                      partner="广东省人民医院", addressee="广州市卫生健康委员会：")  # fmt: skip
    raw = mail(sender="xxk@qq.example", subject="报告", attachments=[("自查报告.docx", doc)])
    assert attribute(raw, roster, facts).institutions == ("广州市番禺区中心医院",)


def test_conflicting_strong_signals_go_to_review(roster, facts):
    doc = report_docx("广州市番禺区第二人民医院电子健康码平台应用自查情况报告", unit="报送单位（盖章）：广州市番禺区第三人民医院")
    result = attribute(mail(sender="a@qq.example", subject="报告", attachments=[("r.docx", doc)]), roster, facts)
    assert result.institutions == ()
    assert [d.kind for d in result.decisions] == ["needs_review"]
    assert "冲突" in result.decisions[0].reason


def test_report_without_any_name_goes_to_review_not_guessed(roster, facts):
    doc = report_docx("电子健康码平台应用自查情况报告")
    result = attribute(mail(sender="a@qq.example", subject="自查报告", attachments=[("r.docx", doc)]), roster, facts)
    assert [d.kind for d in result.decisions] == ["needs_review"]


def test_bureau_bundle_counts_members_not_the_summary_table(roster, facts):
    members = {
        "番禺区第二人民医院自查报告.docx": report_docx("广州市番禺区第二人民医院电子健康码平台应用自查情况报告"),
        "番禺区第三人民医院自查报告.docx": report_docx("广州市番禺区第三人民医院电子健康码平台应用自查情况报告"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.filename = name
            zf.writestr(info, data)
    summary = Document()
    summary.add_paragraph("番禺区电子健康码自查报告报送情况汇总表")
    table = summary.add_table(rows=4, cols=2)
    for row, (name, state) in enumerate([("机构", "报送情况"), ("广州市番禺区第二人民医院", "已报送"),
                                         ("广州市番禺区第三人民医院", "已报送"), ("广州市番禺区第六人民医院", "未报送")]):  # fmt: skip
        table.cell(row, 0).text, table.cell(row, 1).text = name, state
    summary_bytes = io.BytesIO()
    summary.save(summary_bytes)
    raw = mail(sender="番禺区卫健局 <wjj@panyu-wjj.example>", subject="番禺区第六人民医院等单位自查报告汇总",
               body="尚未报送：广州市番禺区第六人民医院。", attachments=[("汇总.zip", buffer.getvalue()),
                                                             ("汇总表.docx", summary_bytes.getvalue())])  # fmt: skip
    result = attribute(raw, roster, facts)
    assert sorted(result.institutions) == ["广州市番禺区第三人民医院", "广州市番禺区第二人民医院"]
    reports = [d for d in result.decisions if d.kind == "report"]
    assert {d.institution for d in reports} == set(result.institutions)
    assert all(d.via_bureau == "广州市番禺区卫生健康局" for d in reports)


def test_forward_from_colleague_is_attributed_from_the_inner_message(roster, facts):
    inner = mail(sender="信息科 <xxk@hospital.example>", subject="广东省第二人民医院自查报告",
                 attachments=[("报告.docx", report_docx("电子健康码平台应用自查情况报告", unit="广东省第二人民医院"))])  # fmt: skip
    outer = mail(sender="张科长 <zhang@gz.gov.cn>", subject="转发：自查报告",
                 body="请登记。\n张科长\n广州市卫生健康委员会", attached_message=inner)  # fmt: skip
    result = attribute(outer, roster, facts)
    assert result.institutions == ("广东省第二人民医院",)


def test_unreadable_attachment_named_in_filename_counts_but_is_flagged(roster, facts):
    rar = b"Rar!\x1a\x07\x00" + b"\x00" * 64
    raw = mail(sender="a@qq.example", subject="报送", attachments=[("广州市胸科医院电子健康码自查报告.rar", rar)])
    result = attribute(raw, roster, facts)
    assert result.institutions == ("广州市胸科医院",)
    assert result.decisions[0].readable is False


def test_template_question_with_blank_template_is_not_a_report(roster, facts):
    blank = report_docx("XXX 电子健康码平台应用自查情况报告（模板）", sections=["一、基本情况", "二、整改措施及完成时限", "三、其他需要说明的事项"])
    raw = mail(sender="广州市胸科医院 <a@xk.example>", subject="请问模板是这个吗", attachments=[("模板.docx", blank)])
    assert attribute(raw, roster, facts).institutions == ()


def test_other_campaign_report_with_same_headings_is_not_counted(roster, facts):
    doc = report_docx("广州市第一人民医院网络安全等级保护自查报告")
    raw = mail(sender="a@gz1.example", subject="等保自查报告", attachments=[("等保.docx", doc)])
    result = attribute(raw, roster, facts)
    assert result.institutions == ()
    assert [d.kind for d in result.decisions] == ["unrelated"]


def test_normalise_folds_width_spaces_and_brackets():
    assert normalise("南方医科大学（白云） Ｘ") == normalise("南方医科大学(白云)x")
