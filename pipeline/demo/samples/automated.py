"""Machine-made and bulk mail: auto-replies, bounces, read receipts, newsletters,
spam and a vendor's circular.  None of it is a report, though much of it
quotes the notice title or mentions 电子健康码."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.demo.samples import documents, mime
from pipeline.demo.samples.clients import Attachment, Draft, Mailbox, client_style
from pipeline.demo.samples.common import (
    CST,
    NOTICE_AT,
    Composed,
    Context,
    any_institution,
    institution_sender,
    moment_between,
    noise_moment,
    office_moment,
    sender_clock,
)
from pipeline.demo.samples.wording import NOTICE_TITLE, ReportSpec


def auto_reply(ctx: Context) -> Composed:
    """An out-of-office or "received" auto-reply to the notice (Auto-Submitted: auto-replied)."""
    rng = ctx.rng
    institution, sender, _ = institution_sender(ctx)
    moment = moment_between(rng, NOTICE_AT + timedelta(seconds=20), NOTICE_AT + timedelta(minutes=50))
    subject = rng.choice(
        (
            f"自动回复：{NOTICE_TITLE}",
            f"自动回复: {NOTICE_TITLE}",
            f"Auto Reply: {NOTICE_TITLE}",
            "自动回复：休假中",
        )
    )
    body = rng.choice(
        (
            "您好，您的邮件已收到，我将尽快处理。",
            "本人7月8日至7月14日休假，急事请联系办公室。",
            "这是一封自动回复邮件。",
        )
    )
    extra = (("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"))
    draft = Draft(
        sender,
        ctx.commission(),
        subject,
        body + f"\n{institution.name}\n",
        moment,
        moment - timedelta(seconds=2),
        (),
        extra_headers=extra,
    )
    return ctx.compose(draft, kind="unrelated", trap="auto-reply", channel="noise")


def bounce(ctx: Context) -> Composed:
    """A delivery failure for the notice itself, which quotes the report template title."""
    rng = ctx.rng
    institution = any_institution(ctx)
    contact = ctx.contact(institution.name)
    bad_address = "x" + contact.address
    moment = moment_between(rng, NOTICE_AT + timedelta(seconds=30), NOTICE_AT + timedelta(minutes=10))
    explanation = mime.text_entity(
        f"很抱歉，您发送的邮件无法送达以下收件人：\n{bad_address}\n原因：收件人地址不存在 (550 5.1.1 User unknown)\n\n"
        f"This is the mail system at host mail.gz.gov.cn.\nI'm sorry to have to inform you that your message could not be delivered.\n",
        "plain",
        "utf-8",
        "base64",
    )
    status = mime.delivery_status_entity(
        "mail.gz.gov.cn", bad_address, "5.1.1", "550 5.1.1 User unknown", NOTICE_AT
    )
    returned = b"".join(
        (
            mime.header("From", "xxb@gz.gov.cn"),
            mime.header("To", bad_address),
            mime.text_header("Subject", NOTICE_TITLE, "utf-8"),
            mime.header("Date", mime.rfc2822_date(NOTICE_AT)),
        )
    )
    report = mime.multipart(
        "report",
        [explanation, status, mime.headers_entity(returned)],
        f"----=_bounce_{rng.randint(10**8, 10**9)}",
        params="report-type=delivery-status",
    )
    top = [
        mime.header(
            "Received",
            f"by mail.gz.gov.cn (Coremail) id {rng.randint(10**9, 10**10)};\r\n\t{mime.rfc2822_date(moment)}",
        ),
        mime.header("Date", mime.rfc2822_date(moment)),
        mime.header("From", "MAILER-DAEMON@mail.gz.gov.cn (Mail Delivery System)"),
        mime.header("To", "xxb@gz.gov.cn"),
        mime.text_header("Subject", rng.choice(("Undelivered Mail Returned to Sender", "系统退信"))),
        mime.header("Auto-Submitted", "auto-replied"),
    ]
    return Composed(mime.build_message(top, report), moment, "unrelated", (), "bounce", "noise")


def newsletter(ctx: Context) -> Composed:
    """A bulk newsletter (List-Id, Precedence: bulk) whose subject mentions 电子健康码 or 自查."""
    rng = ctx.rng
    moment = office_moment(rng, rng.randint(8, 11))
    subject = rng.choice(
        (
            "【每日资讯】多地部署电子健康码安全专项整治",
            "【信息化周刊】医疗机构数据安全自查要点",
            "【每日资讯】互联网医院监管新规解读",
        )
    )
    body = f"{subject}\n本期要点：电子健康卡开放平台接入调整、人脸核验、数据安全自查……\n退订请回复TD。"
    extra = (
        ("List-Id", "健康资讯日报 <daily.jkzx-news.example>"),
        ("List-Unsubscribe", "<mailto:unsubscribe@jkzx-news.example>"),
        ("Precedence", "bulk"),
    )
    draft = Draft(
        Mailbox("健康资讯日报", "news@jkzx-news.example"),
        ctx.commission(),
        subject,
        body,
        moment,
        sender_clock(rng, moment),
        (),
        extra_headers=extra,
    )
    return ctx.compose(
        draft, kind="unrelated", trap="newsletter", channel="noise", style=client_style("coremail", rng)
    )


def spam(ctx: Context) -> Composed:
    """Invoice, phishing and conference spam, mostly filed in the junk folder."""
    rng = ctx.rng
    moment = noise_moment(ctx)
    subject = rng.choice(
        (
            "代开各地正规发票，验证后付款",
            "【重要】您的邮箱即将停用，请立即验证",
            "2024医院信息化建设高峰论坛邀请函",
            "医疗行业客户名录低价出售",
        )
    )
    sender = Mailbox(
        rng.choice(("系统管理员", "会务组", "王经理")),
        f"{rng.choice(('service', 'admin', 'info'))}{rng.randint(1, 99)}@{rng.choice(('promo-mail', 'bulk-sender', 'cheap-invoice'))}.example",
    )
    draft = Draft(
        sender,
        ctx.commission(),
        subject,
        f"{subject}\n详情请点击链接或添加微信。",
        moment,
        sender_clock(rng, moment),
        (),
        extra_headers=(("X-Spam-Flag", "YES"),),
    )
    folder = "垃圾邮件" if rng.random() < 0.7 else "INBOX"
    return ctx.compose(
        draft,
        kind="unrelated",
        trap="spam",
        channel="noise",
        style=client_style(rng.choice(("qqmail", "netease"))),
        folder=folder,
    )


def vendor_notice(ctx: Context) -> Composed:
    """The platform vendor's integration guide: on topic, but not a report."""
    rng = ctx.rng
    moment = office_moment(rng, rng.randint(8, 11))
    spec = ReportSpec(
        "广州市码管平台线上渠道对接指引",
        "",
        ("各医疗机构按本指引对接码管平台，新注册电子健康卡须本人人脸核验。",),
        (),
        ("码管平台项目组",),
        "对接指引",
        "vendor",
    )
    files = (Attachment("码管平台对接指引V1.2.pdf", documents.pdf_report(spec), documents.PDF_TYPE),)
    draft = Draft(
        Mailbox("码管平台项目组", "support@mgpt-vendor.example"),
        ctx.commission(),
        "码管平台线上渠道对接指引（请转各医疗机构）",
        "附件为对接指引，请查收转发。",
        moment,
        sender_clock(rng, moment),
        files,
    )
    return ctx.compose(draft, kind="unrelated", trap="vendor-notice", channel="noise")


def read_receipt(ctx: Context) -> Composed:
    """A Foxmail/Outlook read receipt for the notice (multipart/report, disposition-notification)."""
    rng = ctx.rng
    institution, sender, _ = institution_sender(ctx)
    moment = moment_between(rng, NOTICE_AT + timedelta(minutes=5), datetime(2024, 7, 9, 12, tzinfo=CST))
    human = mime.text_entity(
        f"您发送给 {sender.address} 的邮件：\n主题：{NOTICE_TITLE}\n已于 {moment:%Y-%m-%d %H:%M} 被阅读。\n",
        "plain",
        "gb2312",
        "base64",
    )
    notification = mime.Entity(
        (mime.header("Content-Type", "message/disposition-notification"),),
        f"Reporting-UA: {sender.domain}; Foxmail\r\nFinal-Recipient: rfc822; {sender.address}\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n".encode(
            "ascii"
        ),
    )
    report = mime.multipart(
        "report",
        [human, notification],
        f"----=_mdn_{rng.randint(10**8, 10**9)}",
        params="report-type=disposition-notification",
    )
    style = ctx.style_for(sender.address)
    top = [
        mime.received(
            f"mail.{sender.domain}",
            f"203.0.113.{rng.randint(2, 250)}",
            "mail.gz.gov.cn",
            moment,
            str(rng.randint(10**9, 10**10)),
            by_software="Coremail",
            envelope_for="xxb@gz.gov.cn",
        ),
        mime.header("Date", mime.rfc2822_date(moment - timedelta(seconds=rng.randint(2, 30)))),
        mime.address_header("From", [mime.mailbox(sender.display, sender.address, style.header_charset)]),
        mime.header("To", "xxb@gz.gov.cn"),
        mime.text_header("Subject", f"已读: {NOTICE_TITLE}", style.header_charset),
    ]
    return Composed(mime.build_message(top, report), moment, "unrelated", (), "read-receipt", "noise")
