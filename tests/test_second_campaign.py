"""A second, different campaign runs from config.toml and data files alone.

The commission's next notice — 关于开展医疗机构预约挂号平台个人信息保护自查的通知 — has its own
topic words, its own four-section template (附件3), its own deadline, roster, bureaus, contacts
and mailbox.  Nothing in the code is changed for it: the test writes those files into a temp
folder, builds the mail (docx made with python-docx) and runs the real CLI in a child process:
`intake ingest` → `intake status` → `intake report`.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

import docx
import openpyxl
import pytest

from pipeline.config import load_config
from pipeline.domain.recognition import Recognizer
from tests.conftest import ROOT

CST = timezone(timedelta(hours=8))
MAILBOX = "grxxbh@gz.gov.cn"
DEADLINE = "2025-03-14T17:30:00+08:00"
AS_OF = "2025-03-20T09:00:00+08:00"

CONFIG = f"""\
[campaign]
name = "预约挂号平台个人信息保护自查报告"
notice = "广州市卫生健康委关于开展医疗机构预约挂号平台个人信息保护自查的通知"
deadline = "{DEADLINE}"
timezone = "Asia/Shanghai"
roster = "data/roster.csv"
bureaus = "data/bureaus.csv"
exempt = []
mailbox_address = "{MAILBOX}"
own_domains = ["gz.gov.cn"]
topic_words = ["预约挂号", "挂号平台", "号源"]
template_label = "附件3"
sections = [
    {{ title = "自查范围", heading = ["自查范围"], required = true }},
    {{ title = "发现的问题", heading = ["发现的问题", "存在问题"], required = true }},
    {{ title = "整改计划", heading = ["整改计划", "整改安排"], required = true }},
    {{ title = "联系人", required = false }},
]

[storage]
data_dir = "var"

[limits]
isolate_parsing = false

[reminders]
contacts = "data/contacts.csv"
"""

ROSTER = [
    # row, name, district, channel
    ("1", "广州市天河区人民医院", "天河", "bureau"),
    ("2", "广州市海珠区妇幼保健院", "海珠", "direct"),
    ("3", "广州医科大学附属第五医院", "黄埔", "direct"),
    ("4", "广州市白云区中医医院", "白云", "direct"),
    ("5", "广州市越秀区口腔医院", "越秀", "direct"),
]
BUREAUS = [("天河", "广州市天河区卫生健康局", "天河区卫健局;天河区卫生健康局", "")]
CONTACTS = [
    ("广州市天河区人民医院", "xxk@threnmin.example", "陈敏", "信息科"),
    ("广州市海珠区妇幼保健院", "it@hzfy.example", "李娟", "信息科"),
    ("广州医科大学附属第五医院", "xxk@gy5y.example", "王强", "信息科"),
    ("广州市白云区中医医院", "xxk@byzy.example", "黄磊", "信息科"),
    ("广州市越秀区口腔医院", "office@yxkq.example", "张丽", "办公室"),
]
SECTIONS_2 = {
    "一、自查范围": "我院预约挂号平台（微信公众号、自助机、电话预约）及号源管理系统。",
    "二、发现的问题": "患者身份证号在预约短信中未脱敏；号源接口未做访问频率限制。",
    "三、整改计划": "3月底前完成短信脱敏改造，4月15日前上线接口限流。",
    "四、联系人": "信息科 联系电话 020-12345678",
}
SECTIONS_1 = {  # the FIRST campaign's Annex 2 template (电子健康码)
    "一、基本情况": "我院电子健康码平台已完成自查，共排查应用3个。",
    "二、整改措施及完成时限": "已清理过期账号并开启日志审计，7月31日前完成。",
    "三、其他需要说明的事项": "无。",
}


def _csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def campaign_folder(tmp: Path) -> Path:
    """config.toml and the three data files of the second campaign: everything it needs."""
    (tmp / "data").mkdir(parents=True)
    _csv(tmp / "data" / "roster.csv", ("row", "name", "district", "channel", "aliases", "same_as", "note"),
         [(*r, "", "", "") for r in ROSTER])  # fmt: skip
    _csv(tmp / "data" / "bureaus.csv", ("district", "name", "aliases", "roster_row"), BUREAUS)
    _csv(tmp / "data" / "contacts.csv", ("institution", "address", "person", "role"), CONTACTS)
    (tmp / "config.toml").write_text(CONFIG, encoding="utf-8")
    return tmp / "config.toml"


def report_docx(title: str, unit: str, sections: dict[str, str]) -> bytes:
    doc = docx.Document()
    doc.add_paragraph(title, style="Title")
    doc.add_paragraph("市卫生健康委：")
    for heading, text in sections.items():
        doc.add_heading(heading, level=1)
        doc.add_paragraph(text)
    doc.add_paragraph(f"报送单位（盖章）：{unit}")
    doc.add_paragraph("2025年3月10日")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def mail(sender: str, subject: str, received: datetime, filename: str, document: bytes, n: int) -> bytes:
    """A mail as the commission's server stored it: its own Received: line on top carries the receipt time."""
    msg = EmailMessage(policy=SMTP)
    msg["Received"] = (f"from mx.example (mx.example [203.0.113.{n}]) by mail.gz.gov.cn with ESMTP id q{n}; "
                       f"{format_datetime(received)}")  # fmt: skip
    msg["From"] = sender
    msg["To"] = MAILBOX
    msg["Subject"] = subject
    msg["Date"] = format_datetime(received - timedelta(minutes=2))
    msg["Message-ID"] = f"<campaign2-{n}@mail.example>"
    msg.set_content("您好，附件是我院的自查报告，请查收。")
    msg.add_attachment(document, maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename=filename)  # fmt: skip
    return msg.as_bytes()


def second_campaign_report(unit: str) -> bytes:
    return report_docx(f"{unit}预约挂号平台个人信息保护自查报告", unit, SECTIONS_2)


def first_campaign_report(unit: str) -> bytes:
    return report_docx(f"{unit}电子健康码平台应用自查情况报告", unit, SECTIONS_1)


def intake(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "INTAKE_DATA_DIR"}
    done = subprocess.run([sys.executable, "-m", "pipeline", *args, "-c", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=CST)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second campaign's folder with five mails ingested through the CLI."""
    tmp = tmp_path_factory.mktemp("campaign2")
    config = campaign_folder(tmp)
    inbox = tmp / "inbox"
    inbox.mkdir()
    mails = {
        "1-on-time.eml": mail("陈敏 <xxk@threnmin.example>", "天河区人民医院预约挂号平台个人信息保护自查报告",
                              at(12, 10), "自查报告.docx", second_campaign_report("广州市天河区人民医院"), 1),
        "2-late.eml": mail("李娟 <it@hzfy.example>", "报送自查报告", at(17, 9, 30), "海珠区妇幼保健院自查报告.docx",
                           second_campaign_report("广州市海珠区妇幼保健院"), 2),
        # Row 3 sends the FIRST campaign's report (电子健康码) to this campaign's mailbox: it must not count.
        "3-other-campaign.eml": mail("王强 <xxk@gy5y.example>", "关于电子健康码平台应用自查情况的报告", at(11, 15),
                                     "电子健康码平台应用自查情况报告.docx",
                                     first_campaign_report("广州医科大学附属第五医院"), 3),
        "4-just-in-time.eml": mail("黄磊 <xxk@byzy.example>", "白云区中医医院自查报告（预约挂号平台）", at(14, 17, 0),
                                   "白云区中医医院预约挂号平台自查报告.docx",
                                   second_campaign_report("广州市白云区中医医院"), 4),
    }  # fmt: skip
    for name, raw in mails.items():
        (inbox / name).write_bytes(raw)
    done = intake(config, "ingest", str(inbox))
    assert "Traceback" not in done.stderr
    return config


def status_rows(config: Path, as_of: str) -> dict[str, dict[str, str]]:
    out = intake(config, "status", "--as-of", as_of, "-f", "csv").stdout
    return {row["institution"]: row for row in csv.DictReader(io.StringIO(out))}


def test_the_second_campaigns_statuses_come_from_its_own_rules(campaign: Path) -> None:
    """GIVEN the second campaign's config and data, four mails and one institution silent
    WHEN `intake status` runs after the deadline THEN rows are on_time / late / overdue as received,
    and the first campaign's report sent by row 3 is not counted (row 3 is overdue, no submission)."""
    rows = status_rows(campaign, AS_OF)
    assert list(rows) == [name for _, name, _, _ in ROSTER]
    assert {name: r["status"] for name, r in rows.items()} == {
        "广州市天河区人民医院": "on_time",
        "广州市海珠区妇幼保健院": "late",
        "广州医科大学附属第五医院": "overdue",
        "广州市白云区中医医院": "on_time",
        "广州市越秀区口腔医院": "overdue",
    }
    assert rows["广州市海珠区妇幼保健院"]["first_received_at"] == "2025-03-17T09:30:00+08:00"
    assert rows["广州市白云区中医医院"]["first_received_at"] == "2025-03-14T17:00:00+08:00"
    assert rows["广州医科大学附属第五医院"]["submissions"] == "0"
    assert all(r["needs_review"] == "false" for r in rows.values())


def test_before_the_deadline_the_silent_rows_are_pending(campaign: Path) -> None:
    rows = status_rows(campaign, "2025-03-13T12:00:00+08:00")
    assert [rows[name]["status"] for _, name, _, _ in ROSTER] == ["on_time", "pending", "pending", "pending", "pending"]


def test_the_first_campaigns_report_is_listed_as_unrelated_with_the_reason(campaign: Path) -> None:
    out = intake(campaign, "messages", "-f", "csv").stdout
    by_subject = {row["subject"]: row for row in csv.DictReader(io.StringIO(out))}
    other = by_subject["关于电子健康码平台应用自查情况的报告"]
    assert other["kind"] == "unrelated" and other["institutions"] == ""
    shown = intake(campaign, "show", other["message_id"]).stdout
    assert "其他专项的自查报告" in shown


def test_the_workbook_lists_the_second_campaigns_rows(campaign: Path, tmp_path: Path) -> None:
    """WHEN `intake report` runs THEN 报送情况 has the five roster rows with their Chinese statuses
    and every report counted complete against the four-section template."""
    out = tmp_path / "campaign2.xlsx"
    intake(campaign, "report", "--as-of", AS_OF, "--out", str(out))
    sheet = openpyxl.load_workbook(out, read_only=True)["报送情况"]
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    rows = {r[header.index("机构")]: r for r in values[1:]}
    status = {name: rows[name][header.index("状态")] for _, name, _, _ in ROSTER}
    assert status == {
        "广州市天河区人民医院": "按时报送",
        "广州市海珠区妇幼保健院": "逾期报送",
        "广州医科大学附属第五医院": "逾期未报",
        "广州市白云区中医医院": "按时报送",
        "广州市越秀区口腔医院": "逾期未报",
    }
    complete = header.index("四部分齐全")  # the column follows the template: four sections
    assert [rows[name][complete] for _, name, _, _ in ROSTER] == ["是", "是", None, "是", None]


def test_each_campaigns_rules_reject_the_others_report(campaign: Path) -> None:
    """The control for the tests above: the same two documents under each campaign's rules. The first
    campaign's report IS a report under the shipped rules, so row 3's overdue status is the rules' doing."""
    first = Recognizer(load_config(ROOT / "config.toml").campaign.rules)
    second = Recognizer(load_config(campaign).campaign.rules)
    lines_1 = ["广州医科大学附属第五医院电子健康码平台应用自查情况报告", *[x for kv in SECTIONS_1.items() for x in kv]]
    lines_2 = ["广州医科大学附属第五医院预约挂号平台个人信息保护自查报告", *[x for kv in SECTIONS_2.items() for x in kv]]
    assert first.recognise_text(lines_1).is_report and not first.recognise_text(lines_2).is_report
    assert second.recognise_text(lines_2).is_report and not second.recognise_text(lines_1).is_report
    assert second.find_sections(lines_2) == {"自查范围": True, "发现的问题": True, "整改计划": True, "联系人": True}
    assert second.recognise_text(lines_2).why == "附件3报告标题"
