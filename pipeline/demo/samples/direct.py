"""A directly-reporting unit's mails, built from its recipe.

`direct_mails` turns a planned `Unit` (campaign.py) into rendered mails: the
plain report, the Word-then-stamped-PDF pair, resubmissions, duplicates, the
forgotten attachment and its resend, a commission colleague's forward (as an
attached .eml or inline), a personal-mailbox sender, and the one mail that
carries two institutions' reports.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.demo.samples.campaign import NEAR_GROUPS, TWO_IN_ONE, Unit
from pipeline.demo.samples.catalog import Institution, written_name
from pipeline.demo.samples.clients import (
    AttachedMessage,
    Draft,
    Mailbox,
    client_style,
    inline_forward_text,
    render,
)
from pipeline.demo.samples.common import (
    COLLEAGUES,
    CST,
    DEADLINE,
    LAST_MAIL_AT,
    NOTICE_AT,
    Composed,
    Context,
    has_gbk_only_chars,
    moment_between,
    sender_clock,
)
from pipeline.demo.samples.reports import report_files, report_spec
from pipeline.demo.samples.wording import report_body, report_subject

NEAR_NAMES = frozenset(name for group in NEAR_GROUPS for name in group)
# Recipes whose single Word mail may be followed by a separate stamped PDF mail.
_FOLLOWED_BY_STAMPED = frozenset(
    (
        "plain",
        "abbrev",
        "prefix-variant",
        "partner-mention",
        "spaced-name",
        "template-placeholder",
        "bracket-width",
    )
)


def _name_style(recipe: str, ctx: Context) -> str:
    fixed = {
        "abbrev": "abbrev",
        "prefix-variant": "prefix-variant",
        "spaced-name": "spaced",
        "bracket-width": "bracket",
    }
    if recipe in fixed:
        return fixed[recipe]
    return ctx.rng.choice(("full", "full", "full", "prefix-variant", "abbrev"))


def _clean(text: str) -> str:
    """Written name as used in file names and subjects (no double spaces at the ends)."""
    return text.strip().replace("\u3000", " ")


def _report_draft(
    ctx: Context,
    institution: Institution,
    received_at: datetime,
    *,
    recipe: str,
    to: tuple[Mailbox, ...] | None = None,
) -> tuple[Draft, str]:
    """The institution's own report mail for `recipe`; returns (draft, trap tag)."""
    rng = ctx.rng
    contact = ctx.contact(institution.name)
    sender = ctx.mailbox(contact, institution.name)
    style = _name_style(recipe, ctx)
    name = _clean(written_name(institution, style, rng))
    title_name = name if style != "abbrev" or rng.random() < 0.5 else institution.name
    title_form = {"template-placeholder": "placeholder", "spaced-name": "spaced"}.get(recipe, "")
    if recipe == "bracket-width" and "（" not in institution.name:
        title_form = "bracket-suffix"
    late = received_at > DEADLINE
    spec = report_spec(
        ctx,
        institution,
        title_name=title_name,
        received_at=received_at,
        title_form=title_form,
        partner=True if recipe == "partner-mention" else None,
        late=late,
    )
    formats = {
        "pdf-only": ("pdf",),
        "docx-and-pdf": ("docx", "pdf"),
        "unreadable-rar": ("rar",),
        "unreadable-doc": ("doc",),
        "scan-pdf": ("scan",),
    }.get(recipe, ("docx",))
    gbk_person = has_gbk_only_chars(contact.person)
    subject = report_subject(name, contact.person, rng)
    if gbk_person and rng.random() < 0.8:
        subject = f"{name}报送自查报告（联系人：{contact.person}）"
    attachments = (
        ()
        if recipe == "inline-report"
        else tuple(report_files(ctx, spec, file_name=name, received_at=received_at, formats=formats))
    )
    body = report_body(name, contact.person, rng, received_at, attached=bool(attachments))
    if recipe == "inline-report":
        body = body + "\n" + spec.plain_text()
    sent_at = sender_clock(rng, received_at)
    if recipe == "wrong-date":
        sent_at = datetime(2024, 7, 9, rng.randint(9, 17), rng.randint(0, 59), tzinfo=CST)
    elif recipe == "deadline-edge":
        sent_at = received_at - timedelta(seconds=rng.randint(20, 50))
    draft = Draft(sender, to or ctx.commission(), subject, body, received_at, sent_at, attachments)
    tag = recipe
    if recipe == "plain":
        tag = "gbk-subject" if gbk_person else "near-name" if institution.name in NEAR_NAMES else "plain"
    if style in ("abbrev", "prefix-variant") and recipe != style:
        tag = f"{tag}+{style}"  # a random name variant rides along with the recipe
    return draft, tag


def direct_mails(ctx: Context, unit: Unit) -> list[Composed]:
    """The mails a directly-reporting unit sends for its recipe (first report at unit.moment)."""
    rng = ctx.rng
    moment = unit.moment
    assert moment is not None
    recipe = unit.recipe
    if recipe == "deadline-edge":
        moment = (
            DEADLINE - timedelta(seconds=rng.randint(4, 90))
            if unit.fate == "on_time"
            else DEADLINE + timedelta(seconds=rng.randint(3, 95))
        )
        unit.moment = moment
    if recipe == "same-hospital-pair":
        institution = rng.choice(unit.members)
        draft, _ = _report_draft(ctx, institution, moment, recipe="plain")
        return [
            ctx.compose(draft, kind="report", institutions=(institution.name,), trap=recipe, channel="direct")
        ]
    if recipe == "two-institutions":
        return []  # built once for both rows by two_institution_mail
    if recipe in ("colleague-forward-rfc822", "colleague-forward-inline"):
        return [_colleague_forward(ctx, unit, moment, inline=recipe.endswith("inline"))]
    if recipe == "personal-mailbox":
        return [_personal_mail(ctx, unit, moment)]
    institution = unit.primary
    mails: list[Composed] = []
    if recipe == "forgot-attachment":
        forgot_at = (
            moment_between(rng, datetime(2024, 7, 10, 20, 0, tzinfo=CST), DEADLINE - timedelta(minutes=20))
            if unit.fate == "late"
            else max(NOTICE_AT + timedelta(minutes=30), moment - timedelta(minutes=rng.randint(15, 240)))
        )
        draft, _ = _report_draft(ctx, institution, forgot_at, recipe="plain")
        draft = Draft(
            draft.sender, draft.to, draft.subject, draft.body, forgot_at, sender_clock(rng, forgot_at)
        )
        mails.append(ctx.compose(draft, kind="unrelated", trap="forgot-attachment", channel="direct"))
        again, _ = _report_draft(ctx, institution, moment, recipe="plain")
        resend_body = "抱歉，刚才的邮件漏了附件，现补发，请以此为准。\n\n" + again.body
        again = Draft(
            again.sender,
            again.to,
            f"补发附件：{draft.subject}",
            resend_body,
            moment,
            again.sent_at,
            again.attachments,
        )
        mails.append(
            ctx.compose(
                again,
                kind="report",
                institutions=(institution.name,),
                trap="resend-after-forgot",
                channel="direct",
            )
        )
        return mails
    draft, tag = _report_draft(ctx, institution, moment, recipe=recipe)
    primary, _, secondary = tag.partition("+")
    forced_style = client_style("legacy", rng) if primary == "plain" and rng.random() < 0.3 else None
    if forced_style is not None:
        # An old client: 8-bit GBK file name, 8bit body, Q-encoded or raw subject.
        tag = "+".join(filter(None, ("raw-gbk-filename", secondary)))
    mails.append(
        ctx.compose(
            draft,
            kind="report",
            institutions=(institution.name,),
            trap=tag,
            channel="direct",
            style=forced_style,
        )
    )
    if recipe == "duplicate-send":
        # Send clicked twice: same content, a few seconds later, a new Message-ID.
        again_at = moment + timedelta(seconds=rng.randint(4, 50))
        twin = Draft(
            draft.sender,
            draft.to,
            draft.subject,
            draft.body,
            again_at,
            sender_clock(rng, again_at),
            draft.attachments,
        )
        mails.append(
            ctx.compose(
                twin, kind="report", institutions=(institution.name,), trap="duplicate-send", channel="direct"
            )
        )
    elif recipe in _FOLLOWED_BY_STAMPED and rng.random() < 0.55:
        mails.append(_stamped_followup(ctx, unit, institution, moment))
    if recipe == "resubmission":
        later = min(moment + timedelta(minutes=rng.randint(90, 2200)), LAST_MAIL_AT - timedelta(minutes=3))
        corrected, _ = _report_draft(ctx, institution, later, recipe="plain")
        subject = rng.choice(("【更正版】", "（更正）", "重新报送：", "修改版-")) + corrected.subject
        body = "前报送的版本有误（完成时限填写错误），现报送更正版，请以本版为准。\n\n" + corrected.body
        corrected = Draft(
            corrected.sender, corrected.to, subject, body, later, corrected.sent_at, corrected.attachments
        )
        mails.append(
            ctx.compose(
                corrected,
                kind="report",
                institutions=(institution.name,),
                trap="resubmission-corrected",
                channel="direct",
            )
        )
    return mails


def _stamped_followup(ctx: Context, unit: Unit, institution: Institution, first_at: datetime) -> Composed:
    """The Word version went first; the stamped PDF follows in a separate mail."""
    rng = ctx.rng
    later = min(first_at + timedelta(minutes=rng.randint(30, 1500)), LAST_MAIL_AT - timedelta(minutes=4))
    draft, _ = _report_draft(ctx, institution, later, recipe="pdf-only")
    subject = rng.choice(("补充盖章版：", "【盖章版】", "（盖章扫描件）")) + draft.subject
    body = "上午已报送word版，现补充盖章版PDF，请查收。\n\n" + draft.body
    draft = Draft(draft.sender, draft.to, subject, body, later, draft.sent_at, draft.attachments)
    return ctx.compose(
        draft, kind="report", institutions=(institution.name,), trap="stamped-followup", channel="direct"
    )


def two_institution_mail(ctx: Context, units: list[Unit]) -> list[Composed]:
    """广东省妇幼保健院 sends its own and its 互联网医院's reports in one mail."""
    pair = [unit for unit in units if unit.primary.name in TWO_IN_ONE and unit.recipe == "two-institutions"]
    if len(pair) != 2:
        return []
    moment = min(unit.moment for unit in pair if unit.moment)
    for unit in pair:
        unit.moment = moment
    owner = next(unit for unit in pair if unit.primary.name == TWO_IN_ONE[0]).primary
    draft, _ = _report_draft(ctx, owner, moment, recipe="plain")
    extra = []
    for unit in pair:
        if unit.primary is owner:
            continue
        spec = report_spec(ctx, unit.primary, title_name=unit.primary.name, received_at=moment)
        extra = report_files(ctx, spec, file_name=unit.primary.name, received_at=moment)
    subject = f"{owner.name}及{TWO_IN_ONE[1].removeprefix(owner.name)}电子健康码平台应用自查情况报告"
    body = draft.body + "\n（另附我院互联网医院自查报告一份。）\n"
    draft = Draft(
        draft.sender, draft.to, subject, body, moment, draft.sent_at, draft.attachments + tuple(extra)
    )
    return [
        ctx.compose(draft, kind="report", institutions=TWO_IN_ONE, trap="two-institutions", channel="direct")
    ]


def _colleague_forward(ctx: Context, unit: Unit, moment: datetime, *, inline: bool) -> Composed:
    """The hospital mailed a commission colleague instead of xxb@; the colleague forwards."""
    rng = ctx.rng
    person, address, title = rng.choice(COLLEAGUES)
    colleague = Mailbox(person, address)
    original_at = max(NOTICE_AT + timedelta(minutes=20), moment - timedelta(minutes=rng.randint(20, 1500)))
    original, _ = _report_draft(ctx, unit.primary, original_at, recipe="plain", to=(Mailbox(title, address),))
    note = rng.choice(
        (
            "信息科：\n    该院报告误发到我邮箱，转你们汇总。\n",
            "请信息科查收汇总。\n",
            "转发给你们，请统计。\n",
        )
    )
    note += f"{person}\n"
    style = client_style("coremail", rng)
    if inline:
        body = inline_forward_text(original, style, note)
        draft = Draft(
            colleague,
            ctx.commission(),
            f"转发：{original.subject}",
            body,
            moment,
            sender_clock(rng, moment),
            original.attachments,
        )
    else:
        inner = render(original, ctx.style_for(original.sender.address), rng)
        attached = AttachedMessage(inner, f"{original.subject[:40]}.eml")
        draft = Draft(
            colleague,
            ctx.commission(),
            f"Fw: {original.subject}",
            note,
            moment,
            sender_clock(rng, moment),
            (attached,),
        )
    trap = "colleague-forward-inline" if inline else "colleague-forward-rfc822"
    return ctx.compose(
        draft, kind="report", institutions=(unit.primary.name,), trap=trap, channel="forward", style=style
    )


def _personal_mail(ctx: Context, unit: Unit, moment: datetime) -> Composed:
    """A staff member sends from a personal mailbox: generic subject and file name,
    only the document itself names the institution.  Often lands in the junk folder."""
    rng = ctx.rng
    institution = unit.primary
    domain = rng.choice(("qq.example", "163.example", "126.example", "sina.example"))
    local = (
        str(rng.randint(10**7, 10**10))
        if domain == "qq.example"
        else rng.choice(("xiaowang", "lihua", "abc_xxk", "chen88")) + str(rng.randint(1, 999))
    )
    sender = Mailbox(rng.choice(("小王", "Hua", "", "信息科小陈", "A.Chen")), f"{local}@{domain}")
    spec = report_spec(
        ctx,
        institution,
        title_name=institution.name,
        received_at=moment,
        partner=False,
        late=moment > DEADLINE,
    )
    files = report_files(ctx, spec, file_name="", received_at=moment)
    generic = rng.choice(("自查报告", "电子健康码平台应用自查情况报告", "附件2", "报告（终稿）"))
    files = [
        type(file)(f"{generic}.{file.filename.rsplit('.', 1)[1]}", file.data, file.content_type)
        for file in files
    ]
    subject = report_subject("", "", rng, generic=True)
    body = rng.choice(("见附件。", "您好，自查报告请查收。", "附件是我们单位的自查报告，谢谢！", ""))
    draft = Draft(sender, ctx.commission(), subject, body, moment, sender_clock(rng, moment), tuple(files))
    style = ctx.style_for(sender.address, ("qqmail", "netease", "coremail"))
    folder = "垃圾邮件" if rng.random() < 0.5 else "INBOX"
    return ctx.compose(
        draft,
        kind="report",
        institutions=(institution.name,),
        trap="personal-mailbox",
        channel="personal",
        style=style,
        folder=folder,
    )
