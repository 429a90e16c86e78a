"""Chinese wording for sample reports and mails: what hospitals actually write.

`compose_report` returns a `ReportSpec` (title, sections, signature) that
documents.py renders as docx, PDF or inline text; `compose_other_selfcheck`
gives a look-alike report for another campaign (网络安全等级保护, 数据安全 ...),
the classic false positive; `subject_for` and `report_body` word the mail
itself.  All choices come from the `random.Random` passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from pipeline.demo.samples.catalog import spaced, swap_bracket_width

NOTICE_TITLE = "广州市卫生健康委关于全面排查整改电子健康码平台和应用安全的紧急通知"
REPORT_TOPIC = "电子健康码平台应用自查情况报告"
SECTION_HEADINGS = ("一、基本情况", "二、整改措施及完成时限", "三、其他需要说明的事项")

# Fictitious vendors: no real company is named.
_VENDORS = (
    "穗康信息技术有限公司",
    "羊城智医科技有限公司",
    "粤卫通软件有限公司",
    "南粤云医数据服务有限公司",
    "珠江健联网络科技有限公司",
)
_APPS = ("智慧医院", "掌上医院", "健康服务", "便民就医", "互联网医院")
_LEADERS = ("分管副院长", "院长", "党委书记", "分管副主任", "主要负责同志")


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class ReportSpec:
    """The content of one report, independent of file format."""

    title: str  # "" when the document carries no title line
    salutation: str
    preamble: tuple[str, ...]
    sections: tuple[Section, ...]
    signature: tuple[str, ...]  # right-aligned closing lines: unit, date
    core_title: str  # document metadata title, often stale or empty
    author: str
    heading_style: str = "bold"  # "heading" (Word Heading 1) | "bold" | "plain"
    title_style: str = "centered"  # "title" (Word Title style) | "centered"

    def plain_text(self) -> str:
        """The report as text, for inline (body) reports."""
        lines = [self.title, ""] if self.title else []
        if self.salutation:
            lines.append(self.salutation)
        lines.extend(f"    {paragraph}" for paragraph in self.preamble)
        for section in self.sections:
            lines.append(section.heading)
            lines.extend(f"    {paragraph}" for paragraph in section.paragraphs)
        lines.append("")
        lines.extend(self.signature)
        return "\n".join(lines)


def chinese_date(moment: datetime) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日"


def report_title(written_name: str, form: str, rng: random.Random) -> str:
    """The title line in one of the forms seen in submissions.

    form: plain | guanyu-front | guanyu-mid | de | no-name | placeholder | spaced | bracket-suffix
    """
    topic = REPORT_TOPIC if rng.random() < 0.8 else "电子健康码应用自查情况报告"
    if form == "guanyu-front":
        return f"关于{written_name}{topic[:-2]}的报告"
    if form == "guanyu-mid":
        return f"{written_name}关于{topic[:-2]}的报告"
    if form == "de":
        return f"{written_name}的{topic}"
    if form == "no-name":
        return topic
    if form == "placeholder":
        return f"XXX {topic}"
    if form == "spaced":
        return spaced(f"{written_name}{topic}", rng)
    if form == "bracket-suffix":
        title = f"{topic}（{written_name}）"
        return swap_bracket_width(title) if rng.random() < 0.5 else title
    return f"{written_name}{topic}"


def _bureau_facts(rng: random.Random, checked_on: datetime) -> list[str]:
    """A district bureau's own report: it runs no card app itself but oversees the district's."""
    return [
        f"我局未直接运营电子健康卡应用。接到《{NOTICE_TITLE}》后，我局于{checked_on.month}月{checked_on.day}日召开专题会议，"
        "部署辖区区属医疗机构开展电子健康码平台和应用安全自查。",
        f"我局负责的区全民健康信息平台与市码管平台对接，经核查未发现任意用户绑定、任意用户医疗信息泄露等问题；"
        f"辖区接入微信电子健康卡开放平台的区属医疗机构共{rng.randint(1, 12)}家，已逐一督促其按要求整改并报送自查情况报告。",
    ]


def _basic_facts(unit: str, rng: random.Random, checked_on: datetime) -> list[str]:
    if unit == "局":
        return _bureau_facts(rng, checked_on)
    year = rng.choice((2018, 2019, 2020, 2021))
    cards = rng.choice(("3.2", "6.8", "12.6", "21.4", "35.0", "48.7"))
    app = rng.choice(_APPS)
    facts = [
        f"我{unit}于{year}年接入微信电子健康卡开放平台，通过{unit}微信公众号及“{app}”小程序为群众提供电子健康卡注册申领、"
        f"就诊人绑定、预约挂号及检查检验报告查询等服务，截至2024年6月30日累计注册电子健康卡约{cards}万张。",
        f"接到《{NOTICE_TITLE}》后，我{unit}高度重视，立即成立以{rng.choice(_LEADERS)}为组长的专项工作小组，"
        f"会同开发运维单位{rng.choice(_VENDORS)}于{checked_on.month}月{checked_on.day}日对微信小程序注册申领电子健康卡流程开展全面排查，"
        "重点核查任意用户绑定、任意用户医疗信息泄露等问题。",
    ]
    finding = rng.choice(
        (
            f"经核查，我{unit}小程序在“添加就诊人”环节仅校验姓名、身份证号和手机号，未强制进行人脸核验，存在任意用户绑定风险；"
            "经日志回溯，未发现任意用户医疗信息泄露情况。",
            f"经核查，我{unit}电子健康卡新注册流程已启用本人人脸核验，但本人绑定他人电子健康卡时未进行他人人脸核验和短信验证，"
            "存在被冒名绑定的隐患，未发现数据泄露。",
            f"经核查，我{unit}小程序个人信息查询接口存在越权访问漏洞，可通过修改就诊卡号查看他人检查报告，已于当日下线该接口。",
            f"经核查，未发现我{unit}存在任意用户绑定、任意用户医疗信息泄露等问题，相关接口均已进行身份鉴别和访问控制。",
        )
    )
    facts.append(finding)
    if rng.random() < 0.4:
        facts.append(
            f"我{unit}电子健康卡相关数据存储于{unit}内数据中心，接口调用经前置机转发，近三个月未发生网络安全事件，"
            "已按要求落实网络安全等级保护第三级相关措施。"
        )
    return facts


def _measures(unit: str, rng: random.Random) -> list[str]:
    day = rng.choice((8, 9, 10))
    finish = rng.choice(("7月15日", "7月20日", "7月25日", "7月31日"))
    measures = [
        f"（一）7月{day}日起临时关闭小程序“添加就诊人”“绑定他人电子健康卡”功能，待整改完成并经安全测试后再行开放。",
        f"（二）新注册电子健康卡时强制本人人脸核验；本人绑定他人时须通过他人人脸核验和短信验证，预计{finish}前完成。",
        "（三）已与市码管平台工程师对接，7月31日前中断微信电子健康卡开放平台接入，调整接入广州市码管平台线上渠道。",
        f"（四）组织对小程序及后台接口开展渗透测试，已修复越权访问等中高危漏洞{rng.randint(1, 6)}个，{finish}前完成复测。",
        "（五）完善电子健康卡管理制度和网络安全应急预案，明确信息科为责任部门，每季度开展一次专项检查。",
    ]
    keep = sorted(rng.sample(range(len(measures)), rng.randint(2, 4)))
    if 2 not in keep:
        keep = sorted({*keep, 2})
    chosen = [measures[index] for index in keep]
    # Renumber after sampling so the list reads （一）（二）... as a clerk would type it.
    numerals = "一二三四五"
    return [f"（{numerals[position]}）{text.split('）', 1)[1]}" for position, text in enumerate(chosen)]


def _partner_sentence(unit: str, partner: str, rng: random.Random) -> str:
    return rng.choice(
        (
            f"我{unit}与{partner}组建紧密型医联体，{partner}的电子健康卡业务由其自行开展自查并另行报送，不在本报告范围内。",
            f"我{unit}托管{partner}，双方共用同一微信公众号入口，{partner}的自查情况已提醒其按要求单独报送。",
            f"本次整改参照了合作单位{partner}的做法，后续将与{partner}共同对接市码管平台。",
        )
    )


def compose_report(
    *,
    written_name: str,
    signature_name: str,
    unit: str,
    rng: random.Random,
    written_on: datetime,
    title_form: str = "plain",
    partner: str = "",
    author: str = "",
) -> ReportSpec:
    """A self-check report per the Annex 2 template, with realistic deviations.

    `written_name` is how the title names the institution, `signature_name`
    how the closing block does; `unit` is 院/中心/局/所/站 ("我院").  A partner
    institution, when given, is mentioned in the body: it must not be credited.
    """
    checked_on = written_on.replace(day=max(8, written_on.day - 1)) if written_on.day > 8 else written_on
    basic = _basic_facts(unit, rng, checked_on)
    measures = _measures(unit, rng)
    others = [
        rng.choice(
            (
                "无。",
                "无其他需要说明的事项。",
                f"我{unit}小程序由第三方公司开发运维，已要求其签订网络安全承诺书。",
            )
        )
    ]
    if partner:
        sentence = _partner_sentence(unit, partner, rng)
        if rng.random() < 0.5:
            basic.insert(1, sentence)
        else:
            others = [sentence]
    sections = [Section(SECTION_HEADINGS[0], tuple(basic)), Section(SECTION_HEADINGS[1], tuple(measures))]
    sections.append(Section(SECTION_HEADINGS[2], tuple(others)))
    roll = rng.random()
    if roll < 0.1:
        sections.pop()  # the third section is simply left out
    elif roll < 0.18:
        sections[-1] = Section(sections[-1].heading, ())  # heading kept, nothing under it
    salutation = rng.choice(("市卫生健康委：", "广州市卫生健康委员会：", "", ""))
    preamble = (
        (
            f"根据《{NOTICE_TITLE}》要求，我{unit}迅即开展电子健康码平台和应用安全自查整改工作，现将有关情况报告如下：",
        )
        if rng.random() < 0.8
        else ()
    )
    label = rng.choice(("报送单位（盖章）：", "", "", "填报单位："))
    signature = (f"{label}{signature_name}", chinese_date(written_on))
    core_title = rng.choice(("", "", REPORT_TOPIC, "XXX 电子健康码平台应用自查情况报告（模板）", "附件2"))
    return ReportSpec(
        title=report_title(written_name, title_form, rng),
        salutation=salutation,
        preamble=preamble,
        sections=tuple(sections),
        signature=signature,
        core_title=core_title,
        author=author,
        heading_style=rng.choice(("heading", "bold", "bold", "plain")),
        title_style=rng.choice(("title", "centered", "centered")),
    )


OTHER_CAMPAIGNS = (
    ("2024年网络安全等级保护自查报告", ("一、基本情况", "二、存在问题", "三、整改措施及完成时限")),
    ("数据安全风险自查情况报告", ("一、基本情况", "二、自查发现的问题", "三、下一步工作")),
    ("关于个人信息保护合规自查情况的报告", ("一、基本情况", "二、整改措施", "三、其他需要说明的事项")),
    ("医疗机构依法执业自查报告", ("一、自查情况", "二、存在问题及整改措施")),
    (
        "关键信息基础设施安全保护自查报告",
        ("一、基本情况", "二、整改措施及完成时限", "三、其他需要说明的事项"),
    ),
)


def compose_other_selfcheck(
    name: str, rng: random.Random, written_on: datetime, author: str = ""
) -> tuple[str, ReportSpec]:
    """(campaign title, report) for a self-check of a different campaign by `name`."""
    campaign, headings = rng.choice(OTHER_CAMPAIGNS)
    paragraphs = (
        f"按照上级部门工作部署，我院对信息系统开展全面自查，共梳理在用信息系统{rng.randint(18, 96)}个，其中三级系统{rng.randint(2, 9)}个。",
        "发现部分系统弱口令、日志留存不足六个月、数据库未加密存储等问题。",
        f"已于{written_on.month}月底前完成整改，并组织开展应急演练。",
    )
    sections = tuple(
        Section(heading, (paragraphs[index % len(paragraphs)],)) for index, heading in enumerate(headings)
    )
    spec = ReportSpec(
        title=f"{name}{campaign}",
        salutation="",
        preamble=(),
        sections=sections,
        signature=(name, chinese_date(written_on)),
        core_title=campaign,
        author=author,
    )
    return campaign, spec


def report_subject(written_name: str, person: str, rng: random.Random, *, generic: bool = False) -> str:
    """The subject line of a hospital's own report mail."""
    if generic:
        return rng.choice(
            ("电子健康码自查报告", "自查报告", "报送自查情况报告", f"回复：{NOTICE_TITLE}", "电子健康卡自查")
        )
    return rng.choice(
        (
            f"{written_name}{REPORT_TOPIC}",
            f"【{written_name}】电子健康码应用自查情况报告",
            f"关于报送{written_name}{REPORT_TOPIC}的函",
            f"{written_name}-电子健康码自查报告",
            f"报送{REPORT_TOPIC}（{written_name}）",
            f"{written_name}报送自查报告（联系人：{person}）",
            f"回复：{NOTICE_TITLE}",
        )
    )


def report_body(
    written_name: str, person: str, rng: random.Random, moment: datetime, *, attached: bool = True
) -> str:
    """The covering text of a hospital's report mail."""
    greeting = rng.choice(("市卫生健康委信息科：", "您好！", "各位领导：", "市卫健委：", ""))
    where = "详见附件" if attached else "见下文"
    line = rng.choice(
        (
            f"根据《{NOTICE_TITLE}》要求，现报送我单位电子健康码平台应用自查情况报告，{where}，请查收。",
            f"现将{written_name}电子健康码平台应用自查情况报告报上，{where}。",
            "附件为我院电子健康码应用自查情况报告（含盖章扫描件），请审阅。"
            if attached
            else "自查情况如下，请审阅。",
        )
    )
    phone = f"020-{rng.randint(80000000, 89999999)}"
    return (
        f"{greeting}\n    {line}\n\n联系人：{person}  电话：{phone}\n{written_name}\n{chinese_date(moment)}\n"
    )
