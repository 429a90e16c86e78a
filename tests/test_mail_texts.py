"""Mails that read right (issue 15, item 7): every template rendered for every case, read as a clerk would.

Before: the direct reminder said both 「如已报送，请回复本邮件告知发送时间」 and 「如已报送，请忽略本提醒」,
its 落款 had no contact person or phone, and units the commission does not direct got a bare 请.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import load_config
from pipeline.domain.courtesy import is_subordinate, request_word
from pipeline.domain.roster import load_roster
from pipeline.outbound.compose import Recipient, render
from pipeline.outbound.reminders import Occasion, ReminderPlan, compose_reminder
from pipeline.vocab import Channel, ReminderPhase

from .conftest import write_config

TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2024, 7, 12, 9, 0, tzinfo=TZ)
# A mail must not say both; the last two: a stamped (盖章) report is often a scan, which OCR reads.
CONTRADICTIONS = [("请忽略", "请回复"), ("请忽略", "告知发送时间"), ("盖章", "勿用扫描"), ("盖章", "扫描图片）")]


class _Ctx:
    def __init__(self, config):  # noqa: ANN001
        self.config = config


def _config(tmp_path, *, person: str, phone: str):  # noqa: ANN001
    return load_config(write_config(tmp_path, {"campaign": {"contact_person": person, "contact_phone": phone}}))


def _check(text: str, config) -> None:  # noqa: ANN001
    assert "{{" not in text and "{%" not in text
    for a, b in CONTRADICTIONS:
        assert not (a in text and b in text), (a, b, text)
    campaign = config.campaign
    assert config.smtp.from_name in text
    if campaign.contact_person:
        assert f"联系人：{campaign.contact_person}" in text
    else:
        assert "联系人：" not in text
    if campaign.contact_phone:
        assert campaign.contact_phone in text


@pytest.mark.parametrize("person,phone", [("李文", "020-83000000"), ("", "")])
def test_every_reminder_case_reads_right(tmp_path, person, phone):
    """GIVEN every reminder case (direct / bureau, before / overdue, directed or not, one or two roster rows)
    WHEN rendered THEN no self-contradiction, the 落款 names office, contact person and phone, 烦请 goes to
    units the commission does not direct and 请 to those it does, and the template's sections are the
    config's."""
    config = _config(tmp_path, person=person, phone=phone)
    roster = load_roster(config.campaign)
    ctx = _Ctx(config)
    sections = [config.campaign.rules.numbered(s.title) for s in config.campaign.rules.sections]
    direct = ["中山大学附属第三医院", "广东省人民医院", "第七十四集团军医院", "广州市第一人民医院"]
    pair = [i.name for i in roster if i.same_as] + [roster.by_row[i.same_as].name for i in roster if i.same_as]
    bureau = roster.bureau_by_district["番禺"]
    districts = [i.name for i in roster if i.channel == Channel.BUREAU and i.district == "番禺"][:3]
    for phase, round_ in itertools.product(ReminderPhase, (1, 2)):
        occasion = Occasion(date(2024, 7, 12), phase, round_)
        for names in [[n] for n in direct] + [pair[:2]]:
            plan = ReminderPlan(f"reminder:{names[0]}", names[0], Channel.DIRECT, tuple(names),
                                (Recipient("a@x.example"),), (), "")  # fmt: skip
            mail = compose_reminder(ctx, roster, plan, occasion, AS_OF)
            _check(mail.body, config)
            ask = "请" if all(is_subordinate(roster, n) for n in names) else "烦请"
            assert ("烦请" in mail.body) == (ask == "烦请"), (names, mail.body)
            assert all(s in mail.body for s in sections)
            assert ("第2次提醒" in mail.body) == (phase == ReminderPhase.OVERDUE and round_ == 2)
        plan = ReminderPlan(f"reminder:{bureau.name}", bureau.name, Channel.BUREAU, tuple(districts),
                            (Recipient("b@x.example"),), (), "")  # fmt: skip
        mail = compose_reminder(ctx, roster, plan, occasion, AS_OF)
        _check(mail.body, config)
        assert "烦请" not in mail.body and all(n in mail.body for n in districts)


def test_courtesy_rule_reads_the_roster(tmp_path):
    """GIVEN the roster THEN provincial, university, military and private hospitals are not directed by the
    commission (烦请); municipal ones, district bureaus and district-run institutions are (请)."""
    roster = load_roster(_config(tmp_path, person="", phone="").campaign)
    for name in ("广东省人民医院", "中山大学肿瘤防治中心", "南方医科大学珠江医院", "广州医科大学附属第一医院",
                 "中国人民解放军南部战区空军医院", "武警广东省总队医院", "第七十四集团军医院", "广东三九脑科医院"):  # fmt: skip
        assert not is_subordinate(roster, name), name
    for name in ("广州市第一人民医院", "广州市胸科医院", "广州市越秀区卫生健康局", "广东省广州市天河区卫生健康局",
                 *(i.name for i in roster if i.channel == Channel.BUREAU)):  # fmt: skip
        assert is_subordinate(roster, name), name
    assert request_word(roster, ["广州市胸科医院", "广东省人民医院"]) == "烦请"


@pytest.mark.parametrize("person,phone", [("李文", "020-83000000"), ("", "")])
def test_receipt_correction_and_digest_render(tmp_path, person, phone):
    """GIVEN receipts and corrections to a directed and a non-directed unit, and the digest THEN each renders
    with the 落款 and, for the correction, the template's name, the stamp and the right 请 / 烦请."""
    config = _config(tmp_path, person=person, phone=phone)
    roster = load_roster(config.campaign)
    for name in ("广州市胸科医院", "广东省人民医院"):
        facts = dict(greeting=name, institutions=[name], file_count=1,
                     problems=["报告.rar：无法读取"], received_at="2024年7月9日 10:00", now="2024年7月9日 10:05",
                     ask=request_word(roster, [name]))  # fmt: skip
        for template in ("receipt.txt.j2", "correction.txt.j2"):
            subject, body = render(config, template, **facts)
            assert subject and name in body
            _check(body, config)
            if template == "correction.txt.j2":  # the sections appear in a problem line that names them
                assert config.campaign.rules.template_label in body and "加盖单位公章" in body
                assert ("烦请" in body) == (name == "广东省人民医院")
    subject, body = render(config, "digest.txt.j2", as_of="2024年7月12日 09:00", today="2024年7月12日",
                           workbook="报表.xlsx", total=96, counts={s: 1 for s in ("on_time", "late", "overdue",
                           "pending", "exempt")}, arrived=["广州市胸科医院"], newly_overdue=[], review=0, problems=[],
                           since="截至目前")  # fmt: skip
    assert "{{" not in body and re.search(r"名单单位 96 家", body)
