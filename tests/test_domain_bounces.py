"""Rules of `read_bounce`: which stored messages are delivery failures, and which addresses failed.

Messages are written byte by byte in the shape Postfix and Coremail produce (RFC 3464
multipart/report with a message/delivery-status part), or as plain-text bounces
without a machine-readable report.  `read_bounce` is pure (bytes in, verdict out);
matching a bounce to our sent mail and to its recipients (and refusing the rest) happens
in `process_bounces`, which needs the ledger (covered in test_reminders.py).
"""

from __future__ import annotations

import base64

from pipeline.outbound.reminders import read_bounce

ORIGINAL = b"Message-ID: <reminder.1@gz.gov.cn>\r\nFrom: xxb@gz.gov.cn\r\nSubject: =?utf-8?b?5YKs5oql?=\r\n"


def dsn(*recipients: bytes, sender: bytes = b"MAILER-DAEMON@mail.gz.gov.cn (Mail Delivery System)",
        subject: bytes = b"Undelivered Mail Returned to Sender") -> bytes:  # fmt: skip
    """A multipart/report DSN with one per-recipient block for each of `recipients`."""
    blocks = b"".join(b"\r\n" + block.strip(b"\r\n") + b"\r\n" for block in recipients)
    return (
        b"Return-Path: <>\r\n"
        b"From: " + sender + b"\r\n"
        b"To: xxb@gz.gov.cn\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Message-Id: <20240708010203.ABC@mail.gz.gov.cn>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY.1"\r\n'
        b"\r\n"
        b"--BOUNDARY.1\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"\r\n"
        b"This is the mail system at host mail.gz.gov.cn.\r\n"
        b"\r\n"
        b"--BOUNDARY.1\r\n"
        b"Content-Type: message/delivery-status\r\n"
        b"\r\n"
        b"Reporting-MTA: dns; mail.gz.gov.cn\r\n"
        b"Arrival-Date: Mon,  8 Jul 2024 09:00:02 +0800 (CST)\r\n" + blocks + b"\r\n"
        b"--BOUNDARY.1\r\n"
        b"Content-Type: text/rfc822-headers\r\n"
        b"\r\n" + ORIGINAL + b"\r\n"
        b"--BOUNDARY.1--\r\n"
    )


FAILED_USER_UNKNOWN = (
    b"Final-Recipient: rfc822; HeFeng@Panyu-2y.example\r\n"
    b"Original-Recipient: rfc822;hefeng@panyu-2y.example\r\n"
    b"Action: failed\r\n"
    b"Status: 5.1.1\r\n"
    b"Remote-MTA: dns; mx.panyu-2y.example\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <hefeng@panyu-2y.example>:\r\n"
    b"    Recipient address rejected: User unknown\r\n"
)
DELIVERED = b"Final-Recipient: rfc822; xxk@zoc.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
DELAYED = (
    b"Final-Recipient: rfc822; xxk@zoc.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
    b"Diagnostic-Code: X-Postfix; connect to mx.zoc.example: Connection timed out\r\n"
)


def test_dsn_failure_gives_the_failed_address_and_its_diagnostic() -> None:
    """GIVEN a DSN with one failed recipient (a folded Diagnostic-Code) WHEN read THEN that address, lower-cased,
    maps to the diagnostic with its folding whitespace collapsed."""
    assert read_bounce(dsn(FAILED_USER_UNKNOWN)) == {
        "hefeng@panyu-2y.example": "smtp; 550 5.1.1 <hefeng@panyu-2y.example>: Recipient address rejected: User unknown"
    }


def test_only_recipients_whose_action_is_failed_are_listed() -> None:
    """GIVEN a DSN with a delivered and a failed recipient WHEN read THEN only the failed one is listed."""
    assert set(read_bounce(dsn(DELIVERED, FAILED_USER_UNKNOWN)) or {}) == {"hefeng@panyu-2y.example"}


def test_delay_notice_is_not_a_failure() -> None:
    """GIVEN a DSN whose only recipient is "Action: delayed" WHEN read THEN it is not a bounce (None)."""
    assert read_bounce(dsn(DELAYED, subject=b"Delayed Mail (still being retried)")) is None


def test_original_recipient_stands_in_for_a_missing_final_recipient() -> None:
    """GIVEN a failed block with Original-Recipient only WHEN read THEN that address is listed."""
    block = b"Original-Recipient: rfc822; <LuoJing@panyu-3y.example>\r\nAction: failed\r\nStatus: 5.2.2\r\n"
    assert set(read_bounce(dsn(block)) or {}) == {"luojing@panyu-3y.example"}


def test_status_stands_in_for_a_missing_diagnostic_code() -> None:
    """GIVEN a failed block without Diagnostic-Code WHEN read THEN the diagnostic is the Status code."""
    block = b"Final-Recipient: rfc822; luojing@panyu-3y.example\r\nAction: failed\r\nStatus: 5.2.2\r\n"
    assert read_bounce(dsn(block)) == {"luojing@panyu-3y.example": "5.2.2"}


def test_multipart_report_is_read_whatever_its_sender_and_subject() -> None:
    """GIVEN a DSN from an ordinary-looking sender with an ordinary subject WHEN read THEN its content type
    alone makes it a bounce and the failed address is listed."""
    raw = dsn(FAILED_USER_UNKNOWN, sender=b"notice@mail.gz.gov.cn", subject=b"Re: reminder")
    assert set(read_bounce(raw) or {}) == {"hefeng@panyu-2y.example"}


def test_plain_bounce_from_mailer_daemon_is_not_believed() -> None:
    """GIVEN a plain-text bounce from MAILER-DAEMON with no delivery-status part WHEN read THEN it is not a
    delivery report (None): anyone can type one, so it marks no address (process_bounces lists it)."""
    raw = (
        b"From: MAILER-DAEMON@mx.panyu-2y.example\r\nTo: xxb@gz.gov.cn\r\nSubject: failure notice\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        b"Sorry, we were unable to deliver your message to hefeng@panyu-2y.example.\r\n\r\n" + ORIGINAL
    )
    assert read_bounce(raw) is None


def test_chinese_plain_text_bounce_is_not_believed() -> None:
    """GIVEN a Coremail-style bounce: sender not a daemon, subject "系统退信" as a GBK encoded-word, plain text
    WHEN read THEN it is not a delivery report (None)."""
    subject = b"=?gbk?B?" + base64.b64encode("系统退信".encode("gbk")) + b"?="
    raw = (
        b"From: system@panyu-2y.example\r\nTo: xxb@gz.gov.cn\r\nSubject: " + subject + b"\r\n"
        b"Content-Type: text/plain; charset=gbk\r\n\r\n" + "投递失败".encode("gbk") + b"\r\n"
    )
    assert read_bounce(raw) is None


def test_human_reply_quoting_our_message_is_not_a_bounce() -> None:
    """GIVEN a clerk's reply that quotes our Message-ID in In-Reply-To WHEN read THEN it is not a bounce."""
    raw = (
        b"From: =?utf-8?b?5L2V6ZSL?= <hefeng@panyu-2y.example>\r\nTo: xxb@gz.gov.cn\r\n"
        b"Subject: =?utf-8?b?5Zue5aSN77ya5YKs5oql?=\r\nIn-Reply-To: <reminder.1@gz.gov.cn>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "已收到，马上报送。".encode() + b"\r\n"
    )
    assert read_bounce(raw) is None
