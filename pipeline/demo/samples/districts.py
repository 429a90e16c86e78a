"""District health bureaus collecting and forwarding their institutions' reports.

Each district bureau sends one or two batches before the deadline and a
follow-up (补报) for late institutions, packaged in one of four ways: several
attachments, a zip with GBK member names (no UTF-8 flag), a zip with UTF-8
names, or each institution's own mail attached as message/rfc822.  A summary
table lists every institution of the district with 已报送/未报送, and the body
lists who has not reported yet: neither is a submission, only the attached
reports count.  Some bureaus also send the table alone, or a note naming the
institutions that are overdue; a few district-run institutions bypass their
bureau and mail the commission directly first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.demo.samples import documents
from pipeline.demo.samples.campaign import Unit
from pipeline.demo.samples.catalog import DISTRICTS, Bureau, Institution, strip_prefix, written_name
from pipeline.demo.samples.clients import AttachedMessage, Attachment, Draft, Mailbox, render
from pipeline.demo.samples.common import (
    DEADLINE,
    NOTICE_AT,
    Composed,
    Context,
    late_moment,
    moment_between,
    office_moment,
    on_time_moment,
    sender_clock,
)
from pipeline.demo.samples.reports import report_files, report_spec
from pipeline.demo.samples.wording import chinese_date, report_body, report_subject

PACKAGINGS = ("multi", "zip-gbk", "zip-utf8", "forward-rfc822", "one-by-one")
SUMMARY_HEADER = ("序号", "单位名称", "是否接入微信电子健康卡开放平台", "报送情况", "备注")


def _in_district(unit: Unit, district: str) -> bool:
    primary = unit.primary
    return primary.district == district and (primary.channel == "bureau" or primary.is_bureau)


def district_mails(ctx: Context, units: list[Unit]) -> list[Composed]:
    """All mails of all district bureaus, plus the bypassing institutions' own mails."""
    rng = ctx.rng
    mails = _bypass_mails(ctx, units)
    members_of = {
        district: [unit for unit in units if _in_district(unit, district)] for district in DISTRICTS
    }
    larger = [district for district, members in members_of.items() if len(members) >= 3]
    # Every packaging at least once (one-by-one twice), on districts big enough to show it.
    forced = [*PACKAGINGS, "one-by-one"]
    packaging_of = dict(zip(rng.sample(larger, min(len(larger), len(forced))), forced, strict=False))
    # At least one bureau sends its table ahead of the reports.
    table_first = rng.choice(larger or [""])
    for district, members in members_of.items():
        if not members:
            continue
        packaging = packaging_of.get(district) or rng.choice(PACKAGINGS)
        mails.extend(
            _one_district(
                ctx, ctx.catalog.bureau_of(district), members, packaging, table_first=district == table_first
            )
        )
    return mails


def _bypass_mails(ctx: Context, units: list[Unit]) -> list[Composed]:
    """Two or three district-run institutions mail the commission themselves on day one."""
    rng = ctx.rng
    candidates = [unit for unit in units if unit.primary.channel == "bureau" and unit.fate == "on_time"]
    mails = []
    for unit in rng.sample(candidates, min(len(candidates), rng.randint(2, 3))):
        institution = unit.primary
        moment = office_moment(rng, 8)
        unit.recipe = "bureau-bypass"
        unit.moment = moment
        contact = ctx.contact(institution.name)
        spec = report_spec(ctx, institution, title_name=institution.name, received_at=moment)
        files = report_files(ctx, spec, file_name=strip_prefix(institution.name), received_at=moment)
        subject = report_subject(strip_prefix(institution.name), contact.person, rng)
        body = report_body(institution.name, contact.person, rng, moment)
        draft = Draft(
            ctx.mailbox(contact, institution.name),
            ctx.commission(),
            subject,
            body,
            moment,
            sender_clock(rng, moment),
            tuple(files),
        )
        mails.append(
            ctx.compose(
                draft, kind="report", institutions=(institution.name,), trap="bureau-bypass", channel="direct"
            )
        )
    return mails


def _batches(ctx: Context, members: list[Unit]) -> list[tuple[datetime, list[Unit]]]:
    """(receipt time, units whose reports it carries): on-time batches, then 补报."""
    rng = ctx.rng
    on_time = [unit for unit in members if unit.fate == "on_time"]
    late = [unit for unit in members if unit.fate == "late"]
    batches: list[tuple[datetime, list[Unit]]] = []
    if on_time:
        groups = [on_time]
        if len(on_time) >= 6 and rng.random() < 0.3:
            first, second = sorted(rng.sample(range(1, len(on_time)), 2))
            groups = [on_time[:first], on_time[first:second], on_time[second:]]
        elif len(on_time) >= 3 and rng.random() < 0.6:
            cut = rng.randint(1, len(on_time) - 1)
            groups = [on_time[:cut], on_time[cut:]]
        moments = sorted(on_time_moment(rng, earliest_day=9) for _ in groups)
        batches.extend(zip(moments, groups, strict=True))
    if late:
        batches.append((late_moment(rng), late))
    for moment, group in batches:
        for unit in group:
            if unit.moment is None or unit.recipe != "bureau-bypass":
                unit.moment = moment
    return batches


def _one_district(
    ctx: Context, bureau: Bureau, members: list[Unit], packaging: str, *, table_first: bool
) -> list[Composed]:
    """One bureau's mails: the table sent ahead (sometimes), the batches, an overdue note."""
    rng = ctx.rng
    contact = ctx.contact(bureau.name)
    sender = ctx.mailbox(contact, bureau.name)
    institutions = [unit for unit in members if not unit.primary.is_bureau]
    batches = _batches(ctx, members)
    mails: list[Composed] = []
    sent: list[Unit] = []
    mislabelled = (
        rng.choice([unit for unit in institutions if unit.fate != "on_time"] or [None])
        if rng.random() < 0.4
        else None
    )
    first_at = batches[0][0] if batches else DEADLINE
    if len(institutions) >= 2 and batches and (table_first or rng.random() < 0.3):
        moment = moment_between(rng, NOTICE_AT + timedelta(hours=15), first_at - timedelta(minutes=30))
        table = _summary(ctx, bureau, institutions, [], moment, mislabelled)
        body = f"市卫健委信息科：\n    现先报送{bureau.district}区电子健康码平台应用自查情况汇总表，各单位自查报告正在收集，随后统一报送。\n{bureau.name}\n"
        draft = Draft(
            sender,
            ctx.commission(),
            f"{bureau.district}区电子健康码自查情况汇总表",
            body,
            moment,
            sender_clock(rng, moment),
            (table,),
        )
        mails.append(ctx.compose(draft, kind="unrelated", trap="bureau-summary-only", channel="bureau"))
    for number, (moment, group) in enumerate(batches, start=1):
        followup = group[0].fate == "late"
        if packaging == "one-by-one":
            # Small bureaus forward each report as it comes in, one mail each.
            for index, unit in enumerate(group):
                sent.append(unit)
                pending = [other for other in institutions if other not in sent]
                # Spread backwards from the batch time, so an on-time batch stays on time.
                at = moment - timedelta(minutes=9 * (len(group) - 1 - index))
                unit.moment = at if unit.recipe != "bureau-bypass" else unit.moment
                mails.append(
                    _batch_mail(
                        ctx,
                        bureau,
                        sender,
                        [unit],
                        institutions,
                        sent,
                        pending,
                        at,
                        "multi",
                        number,
                        followup,
                        mislabelled,
                        single=True,
                    )
                )
            continue
        sent.extend(group)
        pending = [unit for unit in institutions if unit not in sent]
        mails.append(
            _batch_mail(
                ctx,
                bureau,
                sender,
                group,
                institutions,
                sent,
                pending,
                moment,
                packaging,
                number,
                followup,
                mislabelled,
            )
        )
    overdue = [unit for unit in institutions if unit.fate == "overdue"]
    if overdue and rng.random() < 0.5:
        moment = moment_between(rng, DEADLINE + timedelta(hours=9), DEADLINE + timedelta(hours=18))
        names = "、".join(unit.primary.name for unit in overdue)
        body = f"市卫健委：\n    截至7月10日24时，我区{names}仍未报送电子健康码平台应用自查情况报告，我局已电话督促，请予谅解。\n{bureau.name}\n"
        draft = Draft(
            sender,
            ctx.commission(),
            f"关于{bureau.district}区未按时报送自查报告单位的情况说明",
            body,
            moment,
            sender_clock(rng, moment),
        )
        mails.append(ctx.compose(draft, kind="unrelated", trap="bureau-overdue-note", channel="bureau"))
    return mails


def _summary(
    ctx: Context,
    bureau: Bureau,
    institutions: list[Unit],
    sent: list[Unit],
    moment: datetime,
    mislabelled: Unit | None,
) -> Attachment:
    """The district table: every institution, reported or not (a listing, never a report)."""
    rng = ctx.rng
    rows = []
    for index, unit in enumerate(institutions, start=1):
        done = unit in sent or unit is mislabelled
        note = (
            "已报送纸质版"
            if unit is mislabelled
            else ("" if done else rng.choice(("督促中", "", "正在盖章")))
        )
        name = unit.primary.name if rng.random() < 0.7 else strip_prefix(unit.primary.name)
        rows.append((str(index), name, "是", "已报送" if done else "未报送", note))
    title = f"{bureau.district}区电子健康码平台应用自查情况汇总表（{moment.month}月{moment.day}日）"
    saved_at = moment - timedelta(minutes=rng.randint(5, 90))
    if rng.random() < 0.7:
        data = documents.summary_xlsx(title, SUMMARY_HEADER, rows, author=bureau.name, saved_at=saved_at)
        return Attachment(f"{title}.xlsx", data, documents.XLSX_TYPE)
    data = documents.summary_docx(title, SUMMARY_HEADER, rows, author=bureau.name, saved_at=saved_at)
    return Attachment(f"{title}.docx", data, documents.DOCX_TYPE)


def _unit_files(ctx: Context, institution: Institution, moment: datetime) -> tuple[str, list[Attachment]]:
    """One institution's report files as collected by the bureau (mixed formats)."""
    rng = ctx.rng
    name = written_name(institution, rng.choice(("full", "full", "prefix-variant", "abbrev")), rng)
    spec = report_spec(ctx, institution, title_name=name, received_at=moment, late=moment > DEADLINE)
    formats = rng.choices((("docx",), ("pdf",), ("docx", "pdf"), ("scan",), ("doc",)), (62, 20, 8, 5, 5))[0]
    return name, report_files(ctx, spec, file_name=name, received_at=moment, formats=formats)


def _batch_mail(
    ctx: Context,
    bureau: Bureau,
    sender: Mailbox,
    group: list[Unit],
    institutions: list[Unit],
    sent: list[Unit],
    pending: list[Unit],
    moment: datetime,
    packaging: str,
    number: int,
    followup: bool,
    mislabelled: Unit | None,
    *,
    single: bool = False,
) -> Composed:
    """One bureau mail carrying `group`'s reports, packaged as `packaging`.

    The summary table (if any) lists every institution of the district as of
    this mail; the body names those still `pending`.  Only `group` is carried.
    """
    rng = ctx.rng
    district = bureau.district
    attachments: list[Attachment | AttachedMessage] = []
    collected: list[tuple[str, Attachment]] = []
    for index, unit in enumerate(group, start=1):
        institution = unit.primary
        _, files = _unit_files(ctx, institution, moment)
        if packaging == "forward-rfc822" and not institution.is_bureau:
            attachments.append(_institution_mail_to_bureau(ctx, institution, bureau, files, moment))
        else:
            collected.extend((f"{index:02d}", file) for file in files)
    tags = ["bureau-followup" if followup else "bureau-one-by-one" if single else f"bureau-{packaging}"]
    with_table = institutions and (not single or not pending or rng.random() < 0.25)
    summary = _summary(ctx, bureau, institutions, sent, moment, mislabelled) if with_table else None
    if summary is not None:
        tags.append("summary-table")
    if packaging.startswith("zip") and collected:
        folder = f"{district}区电子健康码自查报告/" if rng.random() < 0.5 else ""
        members = [(f"{folder}{prefix}.{file.filename}", file.data) for prefix, file in collected]
        if summary is not None and rng.random() < 0.5:
            members.append((f"{folder}{summary.filename}", summary.data))
            summary = None
        data = documents.zip_bundle(
            members, saved_at=moment - timedelta(minutes=5), gbk_names=packaging == "zip-gbk"
        )
        attachments.append(
            Attachment(
                f"{district}区电子健康码平台应用自查情况报告（{len(group)}家）.zip", data, documents.ZIP_TYPE
            )
        )
    else:
        attachments.extend(file for _, file in collected)
    if summary is not None:
        attachments.append(summary)
    if pending:
        tags.append("pending-list")
    names = tuple(unit.primary.name for unit in group)
    if single and not group[0].primary.is_bureau:
        forwarded = written_name(group[0].primary, rng.choice(("full", "prefix-variant")), rng)
        subject = rng.choice(
            (f"转发：{forwarded}电子健康码平台应用自查情况报告", f"{district}区卫健局转报{forwarded}自查报告")
        )
    elif followup:
        subject = rng.choice(
            (f"{district}区补报电子健康码平台应用自查情况报告", f"【补报】{bureau.name}电子健康码自查报告")
        )
    else:
        subject = rng.choice(
            (
                f"{district}区卫生健康局报送辖区医疗机构电子健康码平台应用自查情况报告",
                f"【{district}区】电子健康码平台应用自查情况报告汇总（第{number}批）",
                f"{bureau.name}关于报送电子健康码应用自查情况的函",
            )
        )
    lines = [rng.choice(("市卫健委信息科：", "市卫生健康委：", "您好！"))]
    own = [unit for unit in group if unit.primary.is_bureau]
    if own and len(group) == 1 and not institutions:
        lines.append(
            "    我区无区属医疗机构接入微信电子健康卡开放平台，现报送我局电子健康码平台应用自查情况报告，请查收。"
        )
    elif own and len(group) == 1:
        lines.append("    现报送我局自身的电子健康码平台应用自查情况报告，请查收。")
    elif single:
        lines.append(f"    现转报{group[0].primary.name}电子健康码平台应用自查情况报告，请查收。")
    else:
        lines.append(
            f"    现将我区{len(group)}家单位的电子健康码平台应用自查情况报告汇总报送（详见附件），请查收。"
        )
    if pending:
        pending_names = "、".join(
            unit.primary.name if rng.random() < 0.6 else strip_prefix(unit.primary.name) for unit in pending
        )
        lines.append(
            f"    截至{chinese_date(moment)}{moment.hour}时，{pending_names}尚未报送，我局正督促其尽快报送。"
        )
    lines.append(f"\n联系人：{ctx.contact(bureau.name).person}\n{bureau.name}")
    draft = Draft(
        sender,
        ctx.commission(),
        subject,
        "\n".join(lines) + "\n",
        moment,
        sender_clock(rng, moment),
        tuple(attachments),
    )
    return ctx.compose(draft, kind="report", institutions=names, trap="+".join(tags), channel="bureau")


def _institution_mail_to_bureau(
    ctx: Context, institution: Institution, bureau: Bureau, files: list[Attachment], moment: datetime
) -> AttachedMessage:
    """The institution's original mail to its bureau, kept whole inside the bureau's forward."""
    rng = ctx.rng
    contact = ctx.contact(institution.name)
    bureau_box = ctx.catalog.contacts_of(bureau.name)[0]
    sent = max(NOTICE_AT + timedelta(hours=1), moment - timedelta(hours=rng.randint(2, 40)))
    subject = report_subject(strip_prefix(institution.name), contact.person, rng)
    body = report_body(institution.name, contact.person, rng, sent)
    draft = Draft(
        ctx.mailbox(contact, institution.name),
        (Mailbox(bureau.name, bureau_box.address),),
        subject,
        body,
        sent,
        sender_clock(rng, sent),
        tuple(files),
    )
    raw = render(
        draft, ctx.style_for(contact.address), rng, server=f"mail.{bureau_box.address.rsplit('@', 1)[1]}"
    )
    return AttachedMessage(raw, f"{subject[:40]}.eml")
