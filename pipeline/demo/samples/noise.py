"""Unrelated mail in the same mailbox: what a report detector must reject.

(Machine-made and bulk mail lives in automated.py; this module mixes it in.)

Other business from the same hospitals, self-check reports of OTHER campaigns
(网络安全等级保护, 数据安全 ...: they say 自查 and have the same headings),
questions about the template (sometimes with the blank template attached),
acknowledgements quoting the notice, auto-replies, bounces, newsletters that
mention 电子健康码, spam, a colleague's internal tally naming hospitals, and
"forgot the attachment" mails that are never followed up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.demo.samples import automated, documents, mime
from pipeline.demo.samples.campaign import Unit, is_direct
from pipeline.demo.samples.catalog import COMMISSION, Institution, strip_prefix
from pipeline.demo.samples.clients import Attachment, Draft, Mailbox, client_style
from pipeline.demo.samples.common import (
    COLLEAGUES,
    CST,
    NOTICE_AT,
    Composed,
    Context,
    has_gbk_only_chars,
    institution_sender,
    moment_between,
    noise_moment,
    office_moment,
    sender_clock,
)
from pipeline.demo.samples.wording import (
    NOTICE_TITLE,
    SECTION_HEADINGS,
    ReportSpec,
    Section,
    compose_other_selfcheck,
    report_body,
    report_subject,
)

_WEIGHTS = {
    "other-business": 20,
    "other-campaign-selfcheck": 14,
    "template-question": 12,
    "auto-reply": 9,
    "bounce": 4,
    "newsletter": 10,
    "spam": 12,
    "internal-tally": 5,
    "acknowledgement": 8,
    "vendor-notice": 5,
    "read-receipt": 8,
}


def unrelated_mails(ctx: Context, units: list[Unit], count: int) -> list[Composed]:
    """`count` unrelated mails (at least two of each kind), plus the never-resent
    forgotten attachment of one overdue institution and a GBK-named question."""
    rng = ctx.rng
    kinds = [kind for kind in _WEIGHTS for _ in range(2)]
    while len(kinds) < count:
        kinds.append(rng.choices(list(_WEIGHTS), list(_WEIGHTS.values()))[0])
    rng.shuffle(kinds)
    mails = [_BUILDERS[kind](ctx) for kind in kinds[: max(count, len(_WEIGHTS) * 2)]]
    mails.extend(_gbk_question(ctx))
    overdue_direct = [unit for unit in units if unit.fate == "overdue" and is_direct(unit)]
    if overdue_direct:
        mails.append(_forgot_never(ctx, rng.choice(overdue_direct).primary))
    return mails


def _other_business(ctx: Context) -> Composed:
    """Routine business from a listed institution (statistics, training receipts ...)."""
    rng = ctx.rng
    institution, sender, person = institution_sender(ctx)
    moment = noise_moment(ctx)
    topic = rng.choice(
        (
            "关于报送2024年上半年卫生健康统计报表的函",
            "全市医疗质量管理培训班参会回执",
            "互联网医院备案材料补充说明",
            "关于申请延期报送年度信息化项目绩效自评的函",
            "信息系统运维合同续签事宜",
            "关于调整院内网络出口带宽的报备",
        )
    )
    files: tuple[Attachment, ...] = ()
    if rng.random() < 0.6:
        if "报表" in topic:
            data = documents.summary_xlsx(
                topic,
                ("序号", "指标", "数值"),
                [("1", "门诊人次", str(rng.randint(10**5, 10**6)))],
                author=person,
                saved_at=moment,
            )
            files = (
                Attachment(f"{strip_prefix(institution.name)}{topic[2:12]}.xlsx", data, documents.XLSX_TYPE),
            )
        else:
            spec = ReportSpec(
                topic,
                "",
                (f"{institution.name}就{topic[2:]}有关事项报告如下。",),
                (),
                (institution.name,),
                topic,
                person,
            )
            files = (
                Attachment(
                    f"{topic}.docx", documents.docx_report(spec, saved_at=moment), documents.DOCX_TYPE
                ),
            )
    body = f"您好：\n    {topic}，详见附件。\n{institution.name} {person}\n"
    draft = Draft(
        sender,
        ctx.commission(),
        f"{strip_prefix(institution.name)}{topic}",
        body,
        moment,
        sender_clock(rng, moment),
        files,
    )
    return ctx.compose(draft, kind="unrelated", trap="other-business", channel="noise")


def _other_campaign(ctx: Context) -> Composed:
    """A self-check report for another campaign: 自查, same headings, wrong topic."""
    rng = ctx.rng
    institution, sender, person = institution_sender(ctx)
    moment = noise_moment(ctx)
    campaign, spec = compose_other_selfcheck(institution.name, rng, moment, author=person)
    name = strip_prefix(institution.name) if rng.random() < 0.5 else institution.name
    data = documents.docx_report(spec, saved_at=moment) if rng.random() < 0.75 else documents.pdf_report(spec)
    extension = "docx" if data[:2] == b"PK" else "pdf"
    content_type = documents.DOCX_TYPE if extension == "docx" else documents.PDF_TYPE
    subject = rng.choice((f"{name}{campaign}", f"报送{campaign}（{name}）", f"自查报告-{name}"))
    body = f"您好！\n    现报送{name}{campaign}，请查收。\n联系人：{person}\n"
    draft = Draft(
        sender,
        ctx.commission(),
        subject,
        body,
        moment,
        sender_clock(rng, moment),
        (Attachment(f"{name}{campaign}.{extension}", data, content_type),),
    )
    return ctx.compose(draft, kind="unrelated", trap="other-campaign-selfcheck", channel="noise")


_QUESTIONS = (
    ("请问附件2模板在哪里下载？", "您好，通知里提到的附件2模板在哪里可以下载？我们在政务网上没找到。"),
    (
        "咨询：区属医院是否直接报送自查报告",
        "您好，我院是区属医院，自查报告是直接发到这个邮箱，还是交区卫健局汇总？",
    ),
    (
        "咨询：未接入微信电子健康卡是否需要报送",
        "我院今年已停用微信电子健康卡开放平台，是否仍需报送自查情况报告？",
    ),
    ("自查报告是否需要盖章", "请问电子健康码平台应用自查情况报告需要盖章扫描吗？还是word版即可？"),
    ("请问是用这个模板吗", "附件是我们找到的模板，请确认是否是这个格式，谢谢。"),
)


def _template_question(ctx: Context) -> Composed:
    """A question about the template or the channel, sometimes with the blank template attached."""
    rng = ctx.rng
    institution, sender, person = institution_sender(ctx)
    moment = noise_moment(ctx)
    subject, question = rng.choice(_QUESTIONS)
    files: tuple[Attachment, ...] = ()
    if subject.startswith("请问是用这个模板"):
        blank = ReportSpec(
            "XXX 电子健康码平台应用自查情况报告（模板）",
            "",
            (),
            tuple(Section(heading, ()) for heading in SECTION_HEADINGS),
            (),
            "",
            person,
        )
        files = (
            Attachment(
                "附件2：电子健康码平台应用自查情况报告（模板）.docx",
                documents.docx_report(blank, saved_at=moment),
                documents.DOCX_TYPE,
            ),
        )
    body = f"{question}\n{strip_prefix(institution.name)} {person}\n"
    draft = Draft(sender, ctx.commission(), subject, body, moment, sender_clock(rng, moment), files)
    return ctx.compose(draft, kind="unrelated", trap="template-question", channel="noise")


def _gbk_question(ctx: Context) -> list[Composed]:
    """A question whose gb2312-labelled subject carries a GBK-only name (王喆): the
    subject mail-parser 4.8 garbles.  One per corpus when the contacts have such a name."""
    for institution in ctx.catalog.institutions:
        for contact in ctx.catalog.contacts_of(institution.name):
            if has_gbk_only_chars(contact.person):
                moment = noise_moment(ctx)
                subject = f"咨询自查报告模板（联系人：{contact.person}）"
                body = f"请问附件2模板在哪里下载？\n{strip_prefix(institution.name)} {contact.person}\n"
                draft = Draft(
                    Mailbox(contact.person, contact.address),
                    ctx.commission(),
                    subject,
                    body,
                    moment,
                    sender_clock(ctx.rng, moment),
                )
                return [
                    ctx.compose(
                        draft,
                        kind="unrelated",
                        trap="gbk-subject",
                        channel="noise",
                        style=client_style("foxmail"),
                    )
                ]
    return []


def _internal_tally(ctx: Context) -> Composed:
    """A colleague's note naming hospitals as reported or not: names, but no report."""
    rng = ctx.rng
    person, address, _ = rng.choice(COLLEAGUES)
    moment = office_moment(rng, rng.randint(9, 11))
    picks = rng.sample([item for item in ctx.catalog.institutions if item.name != COMMISSION], 5)
    body = (
        f"信息科：\n    据了解，{picks[0].name}、{picks[1].name}已将自查报告发到相关处室邮箱，"
        f"{picks[2].name}、{picks[3].name}反映模板下载不了，{picks[4].name}尚未报送，请核实。\n{person}\n"
    )
    draft = Draft(
        Mailbox(person, address),
        ctx.commission(),
        "电子健康码自查报告收集情况",
        body,
        moment,
        sender_clock(rng, moment),
    )
    return ctx.compose(
        draft, kind="unrelated", trap="internal-tally", channel="noise", style=client_style("coremail", rng)
    )


def _acknowledgement(ctx: Context) -> Composed:
    """ "收到" with the notice quoted below, template headings and the XXX title included."""
    rng = ctx.rng
    institution, sender, person = institution_sender(ctx)
    moment = moment_between(rng, NOTICE_AT + timedelta(minutes=10), datetime(2024, 7, 8, 18, tzinfo=CST))
    style = ctx.style_for(sender.address)
    quoted = mime.forward_block(
        style.forward_style,
        sender='"广州市卫生健康委员会"<xxb@gz.gov.cn>',
        sent_at=NOTICE_AT,
        to=sender.address,
        subject=NOTICE_TITLE,
    )
    template = "附件2\nXXX 电子健康码平台应用自查情况报告（模板）\n" + "\n".join(SECTION_HEADINGS)
    body = (
        f"收到，我{'院' if '医院' in institution.name else '单位'}将按要求于7月10日前报送。\n{person}"
        + quoted
        + f"各区卫生健康局、各相关医疗卫生机构：\n……\n{template}\n"
    )
    draft = Draft(sender, ctx.commission(), f"回复：{NOTICE_TITLE}", body, moment, sender_clock(rng, moment))
    return ctx.compose(draft, kind="unrelated", trap="acknowledgement", channel="noise")


def _forgot_never(ctx: Context, institution: Institution) -> Composed:
    """An institution announces its report but attaches nothing, and never resends."""
    rng = ctx.rng
    _, sender, person = institution_sender(ctx, institution)
    moment = office_moment(rng, 10)
    name = strip_prefix(institution.name)
    draft = Draft(
        sender,
        ctx.commission(),
        report_subject(name, person, rng),
        report_body(name, person, rng, moment),
        moment,
        sender_clock(rng, moment),
    )
    return ctx.compose(draft, kind="unrelated", trap="forgot-attachment", channel="direct")


_BUILDERS = {
    "other-business": _other_business,
    "other-campaign-selfcheck": _other_campaign,
    "template-question": _template_question,
    "auto-reply": automated.auto_reply,
    "bounce": automated.bounce,
    "newsletter": automated.newsletter,
    "spam": automated.spam,
    "internal-tally": _internal_tally,
    "acknowledgement": _acknowledgement,
    "vendor-notice": automated.vendor_notice,
    "read-receipt": automated.read_receipt,
}
