"""Receipts (回执), correction requests and the daily digest, delivered to a real aiosmtpd server.

Every captured message is parsed back with the standard library and its
decoded headers, recipients and Chinese text are checked.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.outbound.digest import send_digest
from pipeline.outbound.receipts import send_receipts
from pipeline.outputs.snapshot import build_snapshot
from pipeline.outputs.workbook import WorkbookExtras, build_workbook, reminder_columns
from tests.conftest import write_config
from tests.smtp import SmtpServer, record_report, simple_mail, smtp_config

TZ = ZoneInfo("Asia/Shanghai")
SYS = "中山大学孙逸仙纪念医院"
FILENAME = "中山大学孙逸仙纪念医院电子健康码平台应用自查情况报告.docx"


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2024, 7, day, hour, minute, tzinfo=TZ)


@pytest.fixture
def config_file(tmp_path: Path, smtp_server: SmtpServer) -> Path:
    settings = smtp_config(smtp_server)
    settings["digest"] = {"to": ["clerk1@gz.gov.cn", "clerk2@gz.gov.cn"]}
    return write_config(tmp_path, settings)


@pytest.fixture
def mail_ctx(config_file: Path):
    ctx = open_context(load_config(config_file))
    yield ctx
    ctx.close()


def _report(ctx, *, sender: str = "xxk@syshosp.example", name: str = "周霞", subject: str = "孙逸仙纪念医院自查报告",
            when: datetime | None = None, extra: tuple = (), **decision) -> int:  # noqa: ANN001  # fmt: skip
    raw = simple_mail(sender=sender, sender_name=name, subject=subject, attachment=(FILENAME, b"PK\x03\x04 not really"),
                      extra_headers=extra)  # fmt: skip
    return record_report(ctx, raw, when or at(8), (SYS,), item_path="1", **decision)


def test_receipt_names_institution_files_and_time(
    mail_ctx, smtp_server: SmtpServer, config_file: Path
) -> None:
    """GIVEN a hospital's report WHEN receipts run THEN one 回执 goes to the sender, and never a second."""
    _report(mail_ctx)
    summary = send_receipts(mail_ctx, at(8, 11))
    assert [d.action for d in summary.deliveries.values()] == ["sent"]
    [item] = smtp_server.captured
    msg = item.message
    assert item.rcpt_tos == ("xxk@syshosp.example",)
    assert msg["To"].addresses[0].display_name == "周霞"
    assert str(msg["Subject"]) == f"【回执】已收到{SYS}的电子健康码平台应用自查情况报告"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == msg["References"] and msg["In-Reply-To"].startswith("<")
    body = msg.get_content()
    for text in (SYS, "收到的报告文件：1 个", "2024年7月8日 10:00", "xxb@gz.gov.cn", "电子健康码平台应用自查情况报告"):
        assert text in body
    assert FILENAME not in body and "孙逸仙纪念医院自查报告" not in body, "the sender's words are not echoed"
    send_receipts(mail_ctx, at(8, 12))
    ctx2 = open_context(load_config(config_file))  # a restart
    assert send_receipts(ctx2, at(9, 9)).deliveries == {}
    ctx2.close()
    assert len(smtp_server.captured) == 1


def test_the_same_mail_delivered_twice_gets_one_receipt(mail_ctx, smtp_server: SmtpServer) -> None:
    """GIVEN two copies of one mail (same Message-ID, different bytes: e.g. another Received: line)
    WHEN receipts run THEN only the first copy is answered."""
    raw = simple_mail(sender="xxk@syshosp.example", subject="自查报告", message_id="<same-1@syshosp.example>")
    record_report(mail_ctx, raw, at(8, 9), (SYS,))
    record_report(
        mail_ctx,
        b"Received: by relay.example; Mon, 8 Jul 2024 09:30:00 +0800\r\n" + raw,
        at(8, 9, 30),
        (SYS,),
    )
    summary = send_receipts(mail_ctx, at(8, 11))
    assert len(smtp_server.captured) == 1 and "同一封邮件" in summary.plans[-1].skipped


def test_corrections_for_unreadable_or_incomplete_reports(mail_ctx, smtp_server: SmtpServer) -> None:
    _report(mail_ctx, readable=False, sections={})
    # Not a contact of the unit, but our server authenticated the mail: it may be answered.
    authenticated = (("Authentication-Results", "mail.gz.gov.cn; spf=pass smtp.mailfrom=bgs@zoc.example; "
                                                "dkim=pass header.d=zoc.example"),)  # fmt: skip
    _report(mail_ctx, sender="bgs@zoc.example", name="何军", subject="眼科中心报告", extra=authenticated,
            sections={"基本情况": True, "整改措施及完成时限": False, "其他需要说明的事项": True})  # fmt: skip
    summary = send_receipts(mail_ctx, at(8, 11))
    assert sorted(d.kind for d in summary.deliveries.values()) == ["correction", "correction"]
    by_rcpt = {c.rcpt_tos[0]: c.message for c in smtp_server.captured}
    unreadable = by_rcpt["xxk@syshosp.example"]
    assert str(unreadable["Subject"]) == f"【请补正】{SYS}的电子健康码平台应用自查情况报告"
    # "PK\x03\x04 not really": a zip cut short — the same file is asked for again (test_correction_texts.py has all)
    body = unreadable.get_content()
    assert "有 1 个报告文件无法读取：文件不完整（可能在发送途中被截断）。需要重新发送：同一文件" in body and FILENAME not in body
    incomplete = by_rcpt["bgs@zoc.example"].get_content()
    assert "缺少模板规定的内容：二、整改措施及完成时限" in incomplete and "一、基本情况" in incomplete


def test_a_bare_section_three_is_not_sent_back(mail_ctx, smtp_server: SmtpServer) -> None:
    """GIVEN a report whose 三、其他需要说明的事项 is just "无。" (recognition marks it empty)
    WHEN receipts run THEN it is acknowledged, not sent back for correction."""
    _report(mail_ctx, sections={"基本情况": True, "整改措施及完成时限": True, "其他需要说明的事项": False})
    send_receipts(mail_ctx, at(8, 11))
    assert str(smtp_server.captured[0].message["Subject"]).startswith("【回执】")


@pytest.mark.parametrize(
    ("sender", "extra"),
    [
        ("xxk@syshosp.example", (("Auto-Submitted", "auto-replied"),)),
        ("xxk@syshosp.example", (("Precedence", "bulk"),)),
        ("xxk@syshosp.example", (("List-Id", "<news.example.org>"),)),
        ("xxk@syshosp.example", (("Return-Path", "<>"),)),
        ("mailer-daemon@mail.example.org", ()),
        ("noreply@hospital.example", ()),
        ("do-not-reply@hospital.example", ()),
        ("zhangjg@gz.gov.cn", ()),  # a colleague's forward
        ("xxb@gz.gov.cn", ()),
    ],
)
def test_no_receipt_to_automatic_or_own_mail(
    mail_ctx, smtp_server: SmtpServer, sender: str, extra: tuple
) -> None:
    _report(mail_ctx, sender=sender, extra=extra)
    summary = send_receipts(mail_ctx, at(8, 11))
    assert smtp_server.captured == [] and summary.deliveries == {}
    assert summary.plans[0].skipped


def test_auto_reply_subject_is_not_answered(mail_ctx, smtp_server: SmtpServer) -> None:
    _report(mail_ctx, subject="自动回复：孙逸仙纪念医院自查报告")
    send_receipts(mail_ctx, at(8, 11))
    assert smtp_server.captured == []


def _encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def test_header_injection_in_display_name_and_subject_stays_inert(mail_ctx, smtp_server: SmtpServer) -> None:
    """GIVEN a received mail whose encoded display name and subject decode to CR/LF + "Bcc: …"
    WHEN a receipt answers it THEN no header is added and the only recipient is the sender."""
    evil_name = _encoded("张三\r\nBcc: evil@attacker.example")
    evil_subject = _encoded("自查报告\r\nBcc: evil@attacker.example\r\nX-Injected: yes")
    raw = (
        f"From: {evil_name} <xxk@syshosp.example>\r\nTo: xxb@gz.gov.cn\r\nSubject: {evil_subject}\r\n"
        "Date: Mon, 08 Jul 2024 10:00:00 +0800\r\nMessage-ID: <inj-1@syshosp.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n请查收。\r\n"
    ).encode()
    record_report(mail_ctx, raw, at(8), (SYS,))
    send_receipts(mail_ctx, at(8, 11))
    [item] = smtp_server.captured
    msg = item.message
    assert item.rcpt_tos == ("xxk@syshosp.example",)
    assert {k.lower() for k in msg}.isdisjoint({"bcc", "x-injected"})
    assert "\r" not in str(msg["Subject"]) and "\n" not in str(msg["Subject"])
    assert "evil" not in str(msg["Subject"]) and "evil" not in msg.get_content(), "the subject is not echoed"
    assert [a.addr_spec for a in msg["To"].addresses] == ["xxk@syshosp.example"]
    assert "\n" not in msg["To"].addresses[0].display_name
    head = item.data.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith((b"bcc:", b"x-injected:")) for line in head.split(b"\r\n"))


def test_concurrent_receipt_runs_answer_each_message_once(config_file: Path, smtp_server: SmtpServer) -> None:
    config = load_config(config_file)
    ctx = open_context(config)
    for n in range(5):
        _report(ctx, sender=f"r{n}@hospital.example", subject=f"报告 {n}", when=at(8, 10, n),
                extra=(("Authentication-Results", "mail.gz.gov.cn; dmarc=pass header.from=hospital.example"),))
    ctx.close()
    barrier = threading.Barrier(2)

    def run() -> None:
        own = open_context(config)
        barrier.wait()
        send_receipts(own, at(8, 11))
        own.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c.rcpt_tos[0] for c in smtp_server.captured) == [f"r{n}@hospital.example" for n in range(5)]


def test_daily_digest_attaches_the_workbook_once(mail_ctx, smtp_server: SmtpServer, tmp_path: Path) -> None:
    _report(mail_ctx, when=at(8, 9))
    as_of = at(9, 8, 30)
    book = build_workbook(mail_ctx, as_of, extras=WorkbookExtras(status_columns=reminder_columns(build_snapshot(mail_ctx, datetime.now(UTC)), mail_ctx.config.campaign.timezone)))
    summary = send_digest(mail_ctx, as_of, book)
    assert summary.delivery is not None and summary.delivery.action == "sent"
    [item] = smtp_server.captured
    msg = item.message
    assert sorted(item.rcpt_tos) == ["clerk1@gz.gov.cn", "clerk2@gz.gov.cn"]
    assert str(msg["Subject"]) == "电子健康码平台应用自查情况报告报送情况日报（2024年7月9日）"
    assert msg["Auto-Submitted"] == "auto-generated"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "自查报告报送情况_20240709_0830.xlsx" == book.name
    assert b"filename*0*=utf-8''" in item.data or b"filename*=utf-8''" in item.data  # RFC 2231
    assert (
        attachment.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert attachment.get_content() == book.read_bytes()
    body = msg.get_body(("plain",)).get_content()
    assert "按时报送 1 家" in body and "未报（未到期）94 家" in body and "免报 1 家" in body
    assert f"新收到报告的单位（1 家）：{SYS}" in body
    assert send_digest(mail_ctx, at(9, 17), book).delivery.action == "already"
    assert send_digest(mail_ctx, at(13, 8, 30), book).skipped  # a Saturday
    assert len(smtp_server.captured) == 1
