"""What the mail says about its reports (issue 13, items 5 and 6): several reports in one document,
"超大附件" download links, "代××报送", replies disputing the status, unreadable files named as reports,
and the red seal as evidence.

Mail is built byte by byte the way QQ Mail, 163 and Coremail webmail write it (GB18030 base64 bodies,
multipart/alternative, the download block as those services lay it out); documents with python-docx
and reportlab (tests/docfactory.py).
"""

from __future__ import annotations

import base64
import io
import socket
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from docx import Document

from parsers.links import find_linked_files
from parsers.message import parse_message
from parsers.plain import message_from_plain, message_to_plain
from parsers.types import DocumentText, Paragraph, Part, PartKind
from pipeline.config import load_config
from pipeline.domain.attribution import W_STAMP, AttributionFacts, _Attributor, _Sender, attribute_message
from pipeline.domain.recognition import Recognizer
from pipeline.domain.roster import load_roster
from pipeline.vocab import ItemPath, Kind, SenderTrust
from tests import docfactory as f

from .conftest import ROOT

ERYUAN = "广州市番禺区第二人民医院"
SANYUAN = "广州市番禺区第三人民医院"
QIYUAN = "广州市番禺区第七人民医院"
LIUYUAN = "广州市番禺区第六人民医院"
BUREAU = "wjj@panyu-wjj.example"
ERYUAN_ADDRESS = "hefeng@panyu-2y.example"
SANYUAN_ADDRESS = "luojing@panyu-3y.example"
TITLE = "电子健康码平台应用自查情况报告"
SECTIONS = [
    "一、基本情况",
    "我院已接入微信电子健康卡开放平台，经排查存在任意用户绑定风险。",
    "二、整改措施及完成时限",
    "7月31日前中断微信开放平台接入，新注册须本人人脸核验。",
    "三、其他需要说明的事项",
    "无。",
]
CONFIG = load_config(ROOT / "config.toml")
RECOGNIZER = Recognizer(CONFIG.campaign.rules)


@pytest.fixture(scope="module")
def roster():
    return load_roster(CONFIG.campaign)


@pytest.fixture(scope="module")
def facts():
    return AttributionFacts(own_domains=("gz.gov.cn",), mailbox_address="xxb@gz.gov.cn",
                            addresses={ERYUAN_ADDRESS: ERYUAN, SANYUAN_ADDRESS: SANYUAN},
                            bureau_addresses={BUREAU: "广州市番禺区卫生健康局"})  # fmt: skip


def attribute(raw: bytes, roster, facts):  # noqa: ANN001
    return attribute_message(parse_message(raw), roster, facts, RECOGNIZER).decisions


def report_lines(unit: str, *, header: bool = True, date: str = "2024年7月9日") -> list[str]:
    """One unit's report as a 红头 document prints it: unit name, title, addressee, sections, closing."""
    return [*([unit] if header else []), TITLE, "番禺区卫生健康局：", *SECTIONS, f"报送单位（盖章）：{unit}", date]


def docx_of(lines: list[str]) -> bytes:
    doc = Document()
    for line in lines:
        doc.add_paragraph(line)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def mail(*, sender: str, subject: str, body: str = "请查收。", attachments=()) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = "xxb@gz.gov.cn"
    msg["Subject"] = subject
    msg.set_content(body)
    for filename, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    return msg.as_bytes()


def b64(text: str, charset: str = "gb18030") -> str:
    return base64.encodebytes(text.encode(charset)).decode("ascii")


def webmail(*, sender: str, subject: str, text: str, html: str, mailer: str) -> bytes:
    """A webmail message as QQ/163/Coremail send it: multipart/alternative, GB18030 base64 parts."""
    subject_word = "=?gb18030?B?" + base64.b64encode(subject.encode("gb18030")).decode() + "?="
    return (
        f"From: {sender}\r\nTo: xxb@gz.gov.cn\r\nSubject: {subject_word}\r\n"
        "Date: Tue, 9 Jul 2024 16:02:11 +0800\r\nMessage-ID: <tencent_5B1C@qq.com>\r\n"
        f"X-Mailer: {mailer}\r\nMime-Version: 1.0\r\n"
        'Content-Type: multipart/alternative;\r\n\tboundary="----=_NextPart_668CF1A3_0A1B"\r\n\r\n'
        "This is a multi-part message in MIME format.\r\n\r\n"
        "------=_NextPart_668CF1A3_0A1B\r\n"
        'Content-Type: text/plain;\r\n\tcharset="gb18030"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{b64(text)}\r\n"
        "------=_NextPart_668CF1A3_0A1B\r\n"
        'Content-Type: text/html;\r\n\tcharset="gb18030"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{b64(html)}\r\n"
        "------=_NextPart_668CF1A3_0A1B--\r\n"
    ).encode("ascii")


# --- several reports in one document ------------------------------------------------------------


def test_district_compilation_is_split_into_one_item_per_unit(roster, facts) -> None:
    """GIVEN the district bureau's one .docx compiling four units' complete reports (each with its
    unit name above the title, the sections and its own 报送单位 line), behind a cover line
    WHEN attributed
    THEN there are four report items "1#1".."1#4", each counted for its own unit, via the bureau."""
    units = [ERYUAN, SANYUAN, QIYUAN, LIUYUAN]
    lines = ["番禺区卫生健康局关于报送辖区医疗机构自查报告的函"] + [x for u in units for x in report_lines(u)]
    raw = mail(sender=BUREAU, subject="番禺区报送4家单位电子健康码自查报告",
               attachments=[("番禺区自查报告汇编.docx", docx_of(lines))])  # fmt: skip
    decisions = attribute(raw, roster, facts)
    assert [(d.item_path, d.kind, d.institution) for d in decisions] == [
        (f"1#{n}", Kind.REPORT, unit) for n, unit in enumerate(units, 1)
    ]
    assert all(d.via_bureau == "广州市番禺区卫生健康局" and d.sections and all(d.sections.values()) for d in decisions)


def test_one_pdf_with_two_reports_is_two_items(roster, facts) -> None:
    """GIVEN one text PDF holding two hospitals' reports (the second without a 红头 unit line above its title)
    WHEN attributed
    THEN two items, each for its own hospital."""
    pdf = f.pdf_bytes([report_lines(ERYUAN, header=False), report_lines(SANYUAN, header=False)])
    raw = mail(sender="xinxike2019@163.com", subject="自查报告", attachments=[("两份报告.pdf", pdf)])
    decisions = attribute(raw, roster, facts)
    assert [(d.item_path, d.kind, d.institution) for d in decisions] == [
        ("1#1", Kind.REPORT, ERYUAN), ("1#2", Kind.REPORT, SANYUAN)]  # fmt: skip


@pytest.mark.parametrize(
    "lines",
    [
        # a cover page repeating the title, then the report: one report
        [ERYUAN, TITLE, "2024年7月", *report_lines(ERYUAN)],
        # the same unit's report twice (a resend pasted under the first): one item, not two parts
        [*report_lines(ERYUAN), *report_lines(ERYUAN)],
        # a summary table listing institutions: never a report, never split
        ["番禺区电子健康码自查报告报送情况汇总表", "序号 单位 报送情况",
         *[f"{n} {u} 已报送" for n, u in enumerate([ERYUAN, SANYUAN, QIYUAN], 1)], f"4 {LIUYUAN} 未报送",
         TITLE, *SECTIONS, TITLE, *SECTIONS],
    ],
    ids=["cover-page", "same-unit-twice", "summary-table"],
)
def test_documents_that_are_not_several_reports_stay_one_item(lines: list[str], roster, facts) -> None:
    """GIVEN a report with a cover page, a report pasted twice, or a district summary table
    WHEN attributed
    THEN nothing is split: the file stays one item (path "1") or the message is unrelated."""
    raw = mail(sender=ERYUAN_ADDRESS, subject="材料", attachments=[("材料.docx", docx_of(lines))])
    decisions = attribute(raw, roster, facts)
    assert not any("#" in d.item_path for d in decisions)
    assert len(decisions) == 1


def test_split_items_are_addressable_by_the_clerk(ctx) -> None:
    """GIVEN a compilation stored through the pipeline (bureau mail, two units' reports in one .docx)
    WHEN a clerk assigns "<id>:1#2" to another unit
    THEN the item exists in the items table with the file's name, and the assignment takes."""
    from pipeline.clerk.assign import assign
    from pipeline.inbound.ingest import ingest_paths
    from pipeline.outputs.views import message_views
    from storage.decisions import fetch_decisions
    from storage.messages import fetch_items

    lines = [x for u in (ERYUAN, SANYUAN) for x in report_lines(u)]
    raw = mail(sender="wsj@panyu.example", subject="两家单位的自查报告", attachments=[("汇编.docx", docx_of(lines))])
    path = ctx.data_dir.parent / "mail.eml"
    path.write_bytes(raw)
    ingest_paths(ctx, [path])
    (view,) = message_views(ctx)
    with ctx.db.connect() as conn:
        items = {i.path: i for i in fetch_items(conn, view.message.id)}
    assert {"1", "1#1", "1#2"} <= set(items) and items["1#2"].filename == "汇编.docx"
    assert set(view.institutions) == {ERYUAN, SANYUAN}
    assign(ctx, f"{view.message.id}:1#2", QIYUAN, by="测试")
    with ctx.db.connect() as conn:
        manual = [(d.item_path, d.institution) for d in fetch_decisions(conn, message_id=view.message.id)
                  if d.origin == "manual"]  # fmt: skip
    assert manual == [("1#2", QIYUAN)]


def test_split_items_export_their_document_and_links_say_where_the_file_is(ctx) -> None:
    """GIVEN a compilation of two units' reports in one .docx and a large-attachment mail, both stored
    WHEN the reports are exported and the console is asked for the link's file
    THEN each unit's export is the .docx itself (not the whole mail), the linked unit's export is the mail
    with a note naming the link, and the console's download refuses in Chinese with the link."""
    from pipeline.errors import NotFoundError
    from pipeline.inbound.ingest import ingest_paths
    from pipeline.outputs.export import export_reports
    from pipeline.outputs.views import message_views
    from pipeline.web.message_view import part_download

    document = docx_of([x for u in (ERYUAN, SANYUAN) for x in report_lines(u)])
    folder = ctx.data_dir.parent / "in"
    folder.mkdir()
    dated = b"Date: Tue, 09 Jul 2024 10:00:00 +0800\r\n"  # a receipt time, so the reports are submissions
    (folder / "a.eml").write_bytes(dated + mail(sender="wsj@panyu.example", subject="两家单位的自查报告",
                                                attachments=[("汇编.docx", document)]))  # fmt: skip
    (folder / "b.eml").write_bytes(qq_mail(name=f"{LIUYUAN}电子健康码自查报告.pdf", subject="自查报告"))
    ingest_paths(ctx, [folder])
    summary = export_reports(ctx, ctx.data_dir.parent / "out", by="测试")
    by_unit = {f.institution: f for f in summary.files}
    assert by_unit[ERYUAN].path.read_bytes() == document and by_unit[SANYUAN].path.read_bytes() == document
    assert not by_unit[ERYUAN].note and by_unit[ERYUAN].path.suffix == ".docx"
    assert "超大附件的下载链接" in by_unit[LIUYUAN].note and QQ_URL in by_unit[LIUYUAN].note
    linked = next(v for v in message_views(ctx) if LIUYUAN in v.institutions)
    with pytest.raises(NotFoundError) as refused:
        part_download(ctx, linked.message.id, "link1")
    assert "系统也不下载" in str(refused.value) and QQ_URL in str(refused.value)


# --- "超大附件" download links ------------------------------------------------------------------

QQ_URL = ("https://wx.mail.qq.com/ftn/download?func=3&key=7d363834fce09c93f603333f4265514b02575a06505156061a5709"
          "01064857540e07150c5c535249&code=7684decd&k=7d363834fce09c93f603333f4265514b02575a06")  # fmt: skip
QQ_NAME = "番禺区第二人民医院电子健康码自查报告（盖章扫描件）.pdf"


def qq_mail(*, name: str = QQ_NAME, subject: str = "电子健康码自查报告", url: str = QQ_URL) -> bytes:
    text = (f"各位领导：\n扫描件太大，用超大附件发送，请查收。\n\n何锋 13800138000\n\n\n从QQ邮箱发来的超大附件\n\n"
            f"{name} (86.20M, 2024年07月23日 16:02 到期)进入下载页面：{url}\n")  # fmt: skip
    html = ("<div>各位领导：</div><div>扫描件太大，用超大附件发送，请查收。</div><div>何锋 13800138000</div>"
            '<div id="QQMailBigAttach"><div style="padding:2px 0 4px"><b>从QQ邮箱发来的超大附件</b></div>'
            '<div class="att_bt"><div class="name">'
            f'<a href="{url.replace("&", "&amp;")}" target="_blank">{name}</a></div>'
            '<span class="size">(86.20M, 2024年07月23日 16:02 到期)</span>'
            f'<a href="{url.replace("&", "&amp;")}" target="_blank">进入下载页面</a></div></div>')  # fmt: skip
    return webmail(sender='"=?gb18030?B?us630g==?=" <1234567@qq.com>', subject=subject, text=text, html=html,
                   mailer="QQMail 2.x")  # fmt: skip


NETEASE_URL = "https://mail.163.com/large-attachment-download/index.html?p=X-NETEASE-HUGE-ATTACHMENT&file=Sy2W9lTU-w7v"


def netease_html(files: list[tuple[str, str, str]]) -> str:
    """163's block: per file (name, expiry, file key) an icon link, the name as a link, size and "… 到期"
    in a span, and a 下载 link — the same address three times."""
    rows = []
    for name, expiry, key in files:
        url = f"{NETEASE_URL}{key}".replace("&", "&amp;")
        rows.append(
            f'<div style="height:36px;padding:6px 4px"><div style="float:left;width:36px"><a href="{url}"></a></div>'
            f'<div><div style="font-size:12px"><a href="{url}">{name}</a>'
            f'<span style="color:#bbb"> (112.4M, {expiry} 到期)</span></div>'
            f'<div style="font-size:12px"><a href="{url}">下载</a></div></div></div>'
        )
    return (
        '<div style="padding:4px"><div style="font-size:14px"><b>从网易163邮箱发来的超大附件</b>'
        '<a class="bigattach-mailmaster-download" href="http://u.163.com/RcUwvU56g">推荐客户端极速下载</a></div>'
        f'<div style="padding:4px">{"".join(rows)}</div></div>'
    )


def test_qq_large_attachment_counts_by_its_name_and_is_flagged(roster, facts) -> None:
    """GIVEN a QQ Mail message with no attachment but a "从QQ邮箱发来的超大附件" block naming
    番禺区第二人民医院's report, its size, expiry and download link (text and HTML alternatives)
    WHEN parsed and attributed
    THEN the parsed message carries one linked file (name, link, expiry), and the decision counts
    it for 番禺区第二人民医院, unreadable, with "请下载后核对", the link and the expiry in its reason."""
    parsed = parse_message(qq_mail())
    assert parsed.attachments == ()
    (link,) = parsed.linked_files
    assert (link.path, link.filename, link.url, link.expires, link.size, link.provider) == (
        "link1", QQ_NAME, QQ_URL, "2024年07月23日 16:02", "86.20M", "qq")
    assert message_from_plain(message_to_plain(parsed)) == parsed  # crosses the sandbox boundary intact
    (d,) = attribute_message(parsed, roster, facts, RECOGNIZER).decisions
    assert (d.item_path, d.kind, d.institution, d.readable) == ("link1", Kind.REPORT, ERYUAN, False)
    assert "请下载后核对" in d.reason and QQ_URL in d.reason and "2024年07月23日 16:02到期" in d.reason
    assert d.sender_trust == SenderTrust.UNKNOWN  # a personal QQ address: counted, to be confirmed
    assert any(e["signal"] == "linked_file" for e in d.evidence)


def test_163_and_coremail_blocks(roster, facts) -> None:
    """GIVEN a 163 mail whose HTML block links each of two files three times (icon, name, 下载) and a Coremail
    government mailbox's plain block ("有效期至：")
    WHEN parsed
    THEN each file is one linked file with its own name and expiry, and 163's promotion link is
    not taken for a file."""
    html = netease_html([(f"{SANYUAN}自查报告.docx", "2024年7月24日 10:05", "gqZ"), ("附件2.xlsx", "2024年7月25日 9:00", "Hk1")])
    raw = webmail(sender="panyu3y@163.com", subject="自查报告", text="请查收", html=html, mailer="Coremail Webmail")
    assert [(x.path, x.filename, x.expires, x.provider, x.url) for x in parse_message(raw).linked_files] == [
        ("link1", f"{SANYUAN}自查报告.docx", "2024年7月24日 10:05", "163", NETEASE_URL + "gqZ"),
        ("link2", "附件2.xlsx", "2024年7月25日 9:00", "163", NETEASE_URL + "Hk1"),
    ]
    coremail = ("您好，报告附件较大，已作为超大附件发送：\n\n超大附件列表：\n"
                f"{QIYUAN}自查报告.zip （156.3M）\n有效期至：2024-07-25 17:30\n"
                "下载地址：https://mail.panyu7y.example/coremail/common/nfFile.jsp?share_link=5c1f0e&uid=xxk\n")  # fmt: skip
    (link,) = find_linked_files(coremail, "")
    assert (link.filename, link.expires, link.size, link.provider) == (
        f"{QIYUAN}自查报告.zip", "2024-07-25 17:30", "156.3M", "coremail")


def test_a_link_named_as_nothing_in_particular_is_not_counted(roster, facts) -> None:
    """GIVEN a QQ large attachment named "资料.zip" in a mail whose subject does not announce a report
    WHEN attributed
    THEN nothing is counted: the message is unrelated, its reason names the link."""
    decisions = attribute(qq_mail(name="资料.zip", subject="资料"), roster, facts)
    assert [d.kind for d in decisions] == [Kind.UNRELATED]
    assert "资料.zip" in decisions[0].reason


def test_the_link_is_never_fetched(ctx) -> None:
    """GIVEN a large-attachment mail whose link points at a listening socket on 127.0.0.1
    WHEN the mail is ingested (parsed in the sandbox, attributed, stored)
    THEN nothing connects to that socket, and the link's item row is stored (kind linked)."""
    from pipeline.inbound.ingest import ingest_paths
    from pipeline.outputs.views import message_views
    from storage.messages import fetch_items

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/ftn/download?func=3&key=abc&code=1"
        path = ctx.data_dir.parent / "qq.eml"
        path.write_bytes(qq_mail(url=url))
        ingest_paths(ctx, [path])
        with pytest.raises(BlockingIOError):
            server.accept()
    (view,) = message_views(ctx)
    assert view.institutions == (ERYUAN,) or list(view.institutions) == [ERYUAN]
    with ctx.db.connect() as conn:
        (item,) = fetch_items(conn, view.message.id)
    assert (item.path, item.kind, item.problem_code, item.filename) == ("link1", PartKind.LINKED, "linked_file", QQ_NAME)


# --- 代××报送 -------------------------------------------------------------------------------------

NAMELESS = docx_of([TITLE, *SECTIONS, "2024年7月9日"])  # a report that names no unit


def test_proxy_claim_from_a_known_unit_counts_for_the_named_unit(roster, facts) -> None:
    """GIVEN 番禺区第二人民医院's known address sending "代番禺区第三人民医院报送…" with a report naming nobody
    WHEN attributed
    THEN it counts for 第三人民医院 (not the sender's own unit), the evidence shows the 代 claim with the
    sender, and the sender is unconfirmed for 第三人民医院 (its address is 第二人民医院's)."""
    raw = mail(sender=ERYUAN_ADDRESS, subject="代番禺区第三人民医院报送电子健康码自查报告",
               body=f"附件为三院的报告，他们邮箱故障，由我院代为发送。\n{ERYUAN} 信息科 何锋",
               attachments=[("自查报告.docx", NAMELESS)])  # fmt: skip
    (d,) = attribute(raw, roster, facts)
    assert (d.kind, d.institution, d.sender_trust) == (Kind.REPORT, SANYUAN, SenderTrust.UNKNOWN)
    claim = next(e for e in d.evidence if e["signal"] == "proxy_claim")
    assert "代番禺区第三人民医院报送" in claim["text"] and ERYUAN_ADDRESS in claim["text"]
    assert all(e["weight"] == 0 for e in d.evidence if e["institution"] == ERYUAN)  # its own signals are silenced


def test_a_strangers_proxy_claim_does_not_beat_the_document(roster, facts) -> None:
    """GIVEN a stranger's mail "代番禺区第三人民医院报送" carrying a report whose title and 报送单位 line are 第七人民医院's
    WHEN attributed
    THEN it counts for 第七人民医院 (what the document says), unconfirmed; the claim alone wins nothing."""
    raw = mail(sender="abc@126.com", subject="代番禺区第三人民医院报送自查报告",
               attachments=[("报告.docx", docx_of(report_lines(QIYUAN)))])  # fmt: skip
    (d,) = attribute(raw, roster, facts)
    assert (d.kind, d.institution, d.sender_trust) == (Kind.REPORT, QIYUAN, SenderTrust.UNKNOWN)


def test_a_strangers_proxy_claim_is_counted_but_unconfirmed(roster, facts) -> None:
    """GIVEN a stranger writing "代第三人民医院上报" in the body, with an unreadable .rar report
    WHEN attributed
    THEN it counts for 第三人民医院 by the claim, flagged unreadable and sender unknown (发件人待确认)."""
    raw = mail(sender="abc@126.com", subject="电子健康码自查报告", body="领导好，现代番禺区第三人民医院上报自查报告。",
               attachments=[("自查报告.rar", b"Rar!\x1a\x07\x01\x00" + bytes(200))])  # fmt: skip
    (d,) = attribute(raw, roster, facts)
    assert (d.kind, d.institution, d.readable, d.sender_trust) == (Kind.REPORT, SANYUAN, False, SenderTrust.UNKNOWN)


# --- replies disputing the status --------------------------------------------------------------

REMINDER_QUOTE = ("\n\n在 2024年7月10日 09:00，xxb@gz.gov.cn 写道：\n> 截至目前，贵单位尚未报送电子健康码自查报告，"
                  "请于7月12日前报送。\n> 我委已收到其他单位报送的报告。\n")  # fmt: skip


@pytest.mark.parametrize("claim", ["我院已于7月8日报送", "我单位已按时报送", "我们已经报送过了"])
def test_a_reply_disputing_the_status_goes_to_review_with_the_claim(claim: str, roster, facts) -> None:
    """GIVEN a reply to the reminder saying it has already reported, with no report attached
    WHEN attributed
    THEN the message goes to review, the claim quoted in the reason, suggesting the sender's unit."""
    raw = mail(sender=ERYUAN_ADDRESS, subject="回复：关于报送电子健康码自查报告的提醒",
               body=f"您好，{claim}，请核实。\n何锋" + REMINDER_QUOTE)  # fmt: skip
    (d,) = attribute(raw, roster, facts)
    assert (d.item_path, d.kind, d.institution) == (ItemPath.MESSAGE, Kind.NEEDS_REVIEW, ERYUAN)
    assert claim in d.reason and "来信称已报送" in d.reason


def test_a_claim_beside_a_report_keeps_the_report_and_shows_the_claim(roster, facts) -> None:
    """GIVEN "我院已于7月8日报送，现重新发送" with the report attached
    WHEN attributed
    THEN the report counts; the claim is in its evidence (weight 0)."""
    raw = mail(sender=ERYUAN_ADDRESS, subject="Re: 电子健康码自查报告", body="我院已于7月8日报送，现重新发送一次。",
               attachments=[("自查报告.docx", docx_of(report_lines(ERYUAN)))])  # fmt: skip
    (d,) = attribute(raw, roster, facts)
    assert (d.kind, d.institution) == (Kind.REPORT, ERYUAN)
    assert [e["text"] for e in d.evidence if e["signal"] == "status_claim"] == ["我院已于7月8日报送，现重新发送一次"]


@pytest.mark.parametrize("body", ["现报送我院自查报告，请查收。", "我院已完成自查，现将报告报送如下。"])
def test_ordinary_report_mails_are_not_claims(body: str, roster, facts) -> None:
    """GIVEN an ordinary cover letter ("现报送我院自查报告", "我院已完成自查，现将报告报送如下") with the report
    WHEN attributed
    THEN the report counts and no status claim is recorded; quoted reminder text is never read as one."""
    raw = mail(sender=ERYUAN_ADDRESS, subject="电子健康码自查报告", body=body + REMINDER_QUOTE,
               attachments=[("自查报告.docx", docx_of(report_lines(ERYUAN)))])  # fmt: skip
    (d,) = attribute(raw, roster, facts)
    assert (d.kind, d.institution) == (Kind.REPORT, ERYUAN)
    assert not any(e["signal"] == "status_claim" for e in d.evidence)


# --- unreadable, but named as the unit's report: counted and flagged, whatever the cause ---------

NAME = f"{ERYUAN}电子健康码自查报告"
REPORT_DOCX = docx_of(report_lines(ERYUAN))


def _deep() -> bytes:
    data = REPORT_DOCX
    for level in range(5):
        data = f.zip_bytes({(f"{NAME}.zip" if level else f"{NAME}.docx"): data})
    return data


def _encrypted(member: str) -> bytes:
    return f.raw_zip([f.RawEntry(member.encode("gbk"), REPORT_DOCX, password=b"2024gz")])


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        (f"{NAME}.zip", _deep()),  # nested deeper than max_archive_depth
        (f"{NAME}.zip", f.raw_zip([f.RawEntry(f"{NAME}.docx".encode("gbk"), bytes(10_000_000))])),  # bomb refused
        (f"{NAME}.zip", _encrypted(f"{NAME}.docx")),  # encrypted, no password in the mail
        (f"{NAME}.zip", _encrypted("报告.docx")),  # encrypted member with a plain name: the zip's name speaks
        (f"{NAME}.docx", REPORT_DOCX[: len(REPORT_DOCX) // 2]),  # a corrupt (truncated) docx
        ("材料.zip", f.zip_bytes({f"{NAME}.docx": REPORT_DOCX[: len(REPORT_DOCX) // 2]})),  # a corrupt member
    ],
    ids=["too-deep", "bomb", "encrypted-zip", "encrypted-member", "corrupt-docx", "corrupt-member"],
)
def test_unreadable_but_named_is_counted_and_flagged(filename: str, data: bytes, roster, facts) -> None:
    """GIVEN a file that cannot be read (for each cause) whose name, or whose archive's name, says it is
    番禺区第二人民医院's report, from a stranger with an uninformative subject
    WHEN attributed
    THEN exactly one report counts for that unit, unreadable (a clerk checks the file), the reason
    naming the cause."""
    raw = mail(sender="xinxike2019@163.com", subject="材料", attachments=[(filename, data)])
    reports = [d for d in attribute(raw, roster, facts) if d.kind != Kind.UNRELATED]
    assert [(d.kind, d.institution, d.readable) for d in reports] == [(Kind.REPORT, ERYUAN, False)]
    assert reports[0].reason.startswith("附件无法读取：")


# --- the red seal --------------------------------------------------------------------------------


def test_the_seal_ring_text_is_evidence_like_a_signature(roster, facts) -> None:
    """GIVEN a scanned report (OCR paragraphs) whose unit appears only in the seal's ring text
    WHEN attributed
    THEN the seal counts as a "stamp" signal with the signature's weight and decides the unit."""
    paragraphs = [Paragraph(line, where="ocr-page-1") for line in [TITLE, *SECTIONS, "报送单位（盖章）：", "2024年7月9日"]]
    document = DocumentText((*paragraphs, Paragraph(ERYUAN, where="ocr-page-1-stamp")))
    part = Part("1", "扫描件.pdf", "application/pdf", "", 1, "", PartKind.DOCUMENT, document=document)
    parsed = parse_message(mail(sender="xinxike2019@163.com", subject="材料"))
    (d,) = _Attributor(roster, facts, RECOGNIZER).part(part, parsed, _Sender(True, "", ()), single=False)
    assert (d.kind, d.institution) == (Kind.REPORT, ERYUAN)
    assert [(e["signal"], e["weight"]) for e in d.evidence if e["institution"] == ERYUAN] == [("stamp", W_STAMP)]


def test_a_scanned_page_counts_by_its_seal(roster, facts) -> None:
    """GIVEN a photographed page (OCR) whose 报送单位 line is blank under a red seal with the unit's name
    WHEN parsed (real OCR) and attributed
    THEN the seal's ring text is read (a glyph misread on the ring is tolerated: OCR reads 番禺 as 番里 here)
    and the report counts for that unit with a "stamp" signal."""
    from tests import scanfactory as scan

    image = scan.page([TITLE, *SECTIONS[:4], "报送单位（盖章）：", "2024年7月9日"], stamp=ERYUAN, rotate=0.8)
    raw = mail(sender="xinxike2019@163.com", subject="材料", attachments=[("扫描.png", scan.png(image))])
    (d,) = attribute(raw, roster, facts)
    assert (d.kind, d.institution) == (Kind.REPORT, ERYUAN), d.evidence
    assert any(e["signal"] == "stamp" and e["institution"] == ERYUAN for e in d.evidence)


def test_link_scan_is_linear_on_hostile_bodies() -> None:
    """GIVEN bodies built to make the block scan slow: a "超大附件" heading followed by thousands of links
    on one line, 100,000 name-like characters without an extension, and unclosed HTML anchors
    WHEN scanned
    THEN each takes well under a second and at most 20 files come back."""
    import time

    hostile = [
        "超大附件\n" + " ".join(f"报告{i}.docx http://x.example/{i}" for i in range(20_000)),
        "超大附件\n" + "报" * 100_000 + " https://wx.mail.qq.com/ftn/download?k=1\n" * 3,
        "",
    ]
    html = "<div>超大附件</div>" + '<a href="https://mail.163.com/large-attachment-download/?file=' * 20_000
    for text, markup in ((hostile[0], ""), (hostile[1], ""), (hostile[2], html)):
        started = time.monotonic()
        files = find_linked_files(text, markup)
        assert time.monotonic() - started < 1.0
        assert len(files) <= 20


def test_splitting_is_bounded_on_hostile_documents() -> None:
    """GIVEN a document of 20,000 title-like lines (and one of 300 titles each followed by sections)
    WHEN checked for several reports
    THEN the answer (no split) comes at once: the title count is capped before any part is weighed."""
    import time

    from pipeline.domain.splitting import split_reports

    for lines in ([TITLE] * 20_000, [x for _ in range(300) for x in (TITLE, *SECTIONS)]):
        started = time.monotonic()
        assert split_reports(lines, RECOGNIZER) == []
        assert time.monotonic() - started < 2.0
