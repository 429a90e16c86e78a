"""Reminders: working days and 调休, the schedule, bureau grouping, the ledger, SMTP outcomes, bounces.

Every mail goes to a real aiosmtpd server on 127.0.0.1 and is parsed back with
the standard library.  Expectations are computed from the data files (roster,
bureaus, contacts) by the tests themselves, not by the code under test.
"""

from __future__ import annotations

import csv
import threading
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.clerk.contacts import list_contacts
from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.workdays import LIBRARY_ONLY, add_workdays, in_quiet_hours, is_workday, workdays_between
from pipeline.inbound.ingest import ingest_raw
from pipeline.outbound.reminders import process_bounces, reminder_schedule, run_reminders
from pipeline.outputs.snapshot import build_snapshot
from pipeline.outputs.workbook import WorkbookExtras, build_workbook, reminder_columns
from storage.ledger import fetch_ledger
from tests.conftest import ROOT, write_config
from tests.smtp import SmtpServer, record_report, simple_mail, smtp_config

TZ = ZoneInfo("Asia/Shanghai")
COMMISSION = "广州市卫生健康委员会"


def at(day: int, hour: int = 9, minute: int = 5, month: int = 7) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=TZ)


# ---------------------------------------------------------------- data files, read independently


def _csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader((ROOT / "data" / name).read_text(encoding="utf-8-sig").splitlines()))


ROSTER = _csv("roster.csv")
BUREAUS = _csv("bureaus.csv")
CONTACTS: dict[str, set[str]] = defaultdict(set)
for _row in _csv("contacts.csv"):
    CONTACTS[_row["institution"]].add(_row["address"].strip().lower())
ROW_NAME = {int(r["row"]): r["name"] for r in ROSTER}
BUREAU_OF_DISTRICT = {b["district"]: b for b in BUREAUS}
BUREAU_OF_ROW = {int(b["roster_row"]): b for b in BUREAUS if b["roster_row"]}
SAME_AS = {r["name"]: ROW_NAME[int(r["same_as"])] for r in ROSTER if r["same_as"]}


def group_of(name: str) -> set[str]:
    root = SAME_AS.get(name, name)
    return {root} | {n for n, r in SAME_AS.items() if r == root}


def expected_units(missing: set[str]) -> dict[str, dict]:
    """Unit -> {to, cc, listed} for the reminder policy, from the CSV files alone."""
    units: dict[str, dict] = {}
    for r in ROSTER:
        name, row = r["name"], int(r["row"])
        if name not in missing or name == COMMISSION:
            continue
        if r["channel"] == "bureau" or row in BUREAU_OF_ROW:
            bureau = BUREAU_OF_DISTRICT[r["district"]] if r["channel"] == "bureau" else BUREAU_OF_ROW[row]
            own = ROW_NAME[int(bureau["roster_row"])] if bureau["roster_row"] else ""
            unit = units.setdefault(bureau["name"], {"bureau": True, "listed": set(), "own": set(),
                                                     "to": CONTACTS[bureau["name"]] | CONTACTS[own]})  # fmt: skip
            unit["own" if name == own else "listed"].add(name)
        else:
            unit = units.setdefault(
                SAME_AS.get(name, name), {"bureau": False, "listed": set(), "own": set(), "to": set()}
            )
            unit["listed"].add(name)
            unit["to"] = set().union(*(CONTACTS[n] for n in group_of(name)))
    for unit in units.values():
        unit["cc"] = (
            set().union(*(CONTACTS[n] for n in unit["listed"])) - unit["to"] if unit["bureau"] else set()
        )
    return units


def captured_units(server: SmtpServer, start: int = 0) -> dict[str, dict]:
    """What the server received, keyed by the unit named in the subject (…（unit）)."""
    found: dict[str, dict] = {}
    for item in server.captured[start:]:
        msg = item.message
        subject = str(msg["Subject"])
        unit = subject.split("提醒（", 1)[1][:-1]
        assert unit not in found, f"two reminders for {unit}"
        found[unit] = {"to": {a.addr_spec for a in msg["To"].addresses},
                       "cc": {a.addr_spec for a in msg["Cc"].addresses} if msg["Cc"] else set(),
                       "rcpt": set(item.rcpt_tos), "msg": msg}  # fmt: skip
    return found


def _open(tmp_path: Path, server: SmtpServer | None = None, **overrides: dict):
    settings = smtp_config(server) if server is not None else {}
    for section, values in overrides.items():
        settings.setdefault(section, {}).update(values)
    return open_context(load_config(write_config(tmp_path, settings)))


# ---------------------------------------------------------------- working days


def test_national_day_holiday_and_make_up_days() -> None:
    """GIVEN 2024's National Day arrangement WHEN asking for working days THEN 10-01..07 rest, 09-29 and 10-12 work."""
    assert all(not is_workday(date(2024, 10, d), LIBRARY_ONLY) for d in range(1, 8))
    assert is_workday(date(2024, 9, 29), LIBRARY_ONLY)  # Sunday, make-up working day
    assert is_workday(date(2024, 10, 12), LIBRARY_ONLY)  # Saturday, make-up working day
    assert not is_workday(date(2024, 10, 13), LIBRARY_ONLY)
    assert add_workdays(date(2024, 9, 30), 1, LIBRARY_ONLY) == date(2024, 10, 8)
    assert add_workdays(date(2024, 10, 8), 4, LIBRARY_ONLY) == date(2024, 10, 12)
    assert add_workdays(date(2024, 10, 8), -1, LIBRARY_ONLY) == date(2024, 9, 30)
    assert add_workdays(date(2024, 9, 27), 1, LIBRARY_ONLY) == date(2024, 9, 29)
    assert workdays_between(date(2024, 9, 28), date(2024, 10, 8), LIBRARY_ONLY) == 3  # 09-29, 09-30, 10-08
    assert [d for d in range(1, 32) if not is_workday(date(2024, 7, d), LIBRARY_ONLY)] == [6, 7, 13, 14, 20, 21, 27, 28]


def test_quiet_hours_wrap_midnight() -> None:
    quiet = (time(20, 0), time(8, 0))
    assert in_quiet_hours(at(8, 21, 0), quiet)
    assert in_quiet_hours(at(8, 7, 59), quiet)
    assert not in_quiet_hours(at(8, 8, 0), quiet)
    assert not in_quiet_hours(at(8, 19, 59), quiet)
    assert in_quiet_hours(at(8, 12, 30), (time(12, 0), time(14, 0)))
    assert not in_quiet_hours(at(8, 23, 0), None)


def test_schedule_follows_the_chinese_calendar(tmp_path: Path) -> None:
    """GIVEN a deadline just before National Day WHEN the schedule is built THEN it counts 09-29 (a make-up
    Sunday) as a working day, skips the holiday week and uses the make-up Saturday 10-12."""
    ctx = _open(tmp_path, campaign={"deadline": "2024-09-30T23:59:59+08:00"})
    days = [(o.day, o.phase, o.round) for o in reminder_schedule(ctx)]
    assert days == [(date(2024, 9, 27), "before", 1), (date(2024, 9, 30), "before", 2),
                    (date(2024, 10, 8), "overdue", 1), (date(2024, 10, 10), "overdue", 2),
                    (date(2024, 10, 12), "overdue", 3)]  # fmt: skip
    ctx.close()
    ctx = _open(tmp_path / "b")
    assert [o.day for o in reminder_schedule(ctx)] == [date(2024, 7, d) for d in (8, 10, 11, 15, 17)]
    ctx.close()


def test_no_reminders_on_rest_days_in_quiet_hours_or_before_time(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    ctx = _open(tmp_path, smtp_server)
    for moment, why in ((at(8, 8, 59), "尚未到"), (at(13, 10, 0), "不是工作日"), (at(11, 21, 0), "免打扰")):
        summary = run_reminders(ctx, moment)
        assert summary.occasion is None and why in summary.why_none
    assert smtp_server.captured == []
    ctx.close()


# ---------------------------------------------------------------- grouping and content


def test_first_nudge_groups_by_bureau_and_skips_submitted_and_exempt(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """GIVEN three institutions reported (one direct, one district-run, one half of a same-hospital pair)
    WHEN the 07-08 reminder runs THEN every other direct unit gets one mail at its contacts, each bureau one
    mail listing its missing institutions with their contacts in Cc, and nobody who reported or is exempt."""
    ctx = _open(tmp_path, smtp_server)
    done = {"中山大学中山眼科中心", "广州市番禺区第二人民医院", "广州中医药大学附属第一医院"}
    for n, name in enumerate(sorted(done)):
        record_report(ctx, simple_mail(sender=f"r{n}@example.org", subject="自查报告"), at(8, 8, n), (name,))
    summary = run_reminders(ctx, at(8))
    assert summary.occasion is not None and summary.occasion.phase == "before"
    missing = {r["name"] for r in ROSTER} - set().union(*(group_of(n) for n in done))
    expected = expected_units(missing)
    got = captured_units(smtp_server)
    assert set(got) == set(expected)
    for unit, want in expected.items():
        assert got[unit]["to"] == want["to"], unit
        assert got[unit]["rcpt"] == want["to"] | got[unit]["cc"]
        body = got[unit]["msg"].get_content()
        for name in want["listed"] - {unit}:
            assert name in body, (unit, name)
        assert got[unit]["cc"] == want["cc"], unit
        if want["bureau"]:
            assert "请贵局督促上述单位" in body
    assert "广州中医药大学一附院" not in got and COMMISSION not in got and "中山大学中山眼科中心" not in got
    assert "广州市番禺区第二人民医院" not in got["广州市番禺区卫生健康局"]["msg"].get_content()
    # 天河: the bureau on Annex 1 as 广东省广州市天河区卫生健康局 is covered by the bureau's own mail.
    tianhe = got["广州市天河区卫生健康局"]
    assert (
        "bgs@tianhe-wjj.example" in tianhe["to"]
        and "贵局本级的报告亦请一并报送" in tianhe["msg"].get_content()
    )
    ctx.close()


def test_mime_headers_decode_and_carry_the_campaign_facts(tmp_path: Path, smtp_server: SmtpServer) -> None:
    ctx = _open(tmp_path, smtp_server)
    run_reminders(ctx, at(8))
    item = next(c for c in smtp_server.captured if "中山大学肿瘤防治中心" in str(c.message["Subject"]))
    msg = item.message
    assert str(msg["Subject"]) == "关于报送电子健康码平台应用自查情况报告的提醒（中山大学肿瘤防治中心）"
    assert msg["From"].addresses[0].display_name == "广州市卫生健康委员会信息办"
    assert msg["From"].addresses[0].addr_spec == item.mail_from == "xxb@gz.gov.cn"
    assert msg["To"].addresses[0].display_name == "邝慧"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@gz.gov.cn>")
    assert msg["Date"].datetime == at(8)
    head = item.data.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head and all(ord(ch) < 128 for ch in head.decode("ascii"))
    body = msg.get_content()
    assert msg.get_content_charset() == "utf-8"
    for fact in ("2024年7月10日 23:59", "xxb@gz.gov.cn", "附件2《电子健康码平台应用自查情况报告（模板）》",
                 "广州市卫生健康委关于全面排查整改电子健康码平台和应用安全的紧急通知"):  # fmt: skip
        assert fact in body
    ctx.close()


# ---------------------------------------------------------------- never twice


def test_rerun_and_restart_send_nothing_twice(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config_path = write_config(tmp_path, smtp_config(smtp_server))
    ctx = open_context(load_config(config_path))
    first = run_reminders(ctx, at(8))
    count = len(smtp_server.captured)
    assert count == len(first.plans) > 50
    run_reminders(ctx, at(8, 11))
    ctx.close()
    ctx = open_context(load_config(config_path))  # a restart
    again = run_reminders(ctx, at(9, 9))  # 07-09: still the 07-08 occasion, all recorded
    assert {d.action for d in again.deliveries.values()} == {"already"}
    assert len(smtp_server.captured) == count
    ctx.close()


def test_two_concurrent_runs_send_each_occasion_once(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = load_config(write_config(tmp_path, smtp_config(smtp_server)))
    open_context(config).close()  # migrate once
    barrier = threading.Barrier(3)
    results: list = []

    def worker() -> None:
        ctx = open_context(config)
        try:
            barrier.wait()
            results.append(run_reminders(ctx, at(8)))
        finally:
            ctx.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [c.message["Message-ID"] for c in smtp_server.captured]
    assert len(results) == 3 and len(ids) == len(set(ids)) == len(results[0].plans)
    assert sum(d.action == "sent" for r in results for d in r.deliveries.values()) == len(ids)


def test_overdue_rounds_every_two_working_days_at_most_three(tmp_path: Path, smtp_server: SmtpServer) -> None:
    ctx = _open(tmp_path, smtp_server)
    per_day = {}
    for day in range(11, 20):
        before = len(smtp_server.captured)
        summary = run_reminders(ctx, at(day))
        per_day[day] = (
            summary.occasion.round if summary.occasion else None,
            len(smtp_server.captured) - before,
        )
    sent_days = [d for d, (_, n) in per_day.items() if n]
    assert sent_days == [11, 15, 17]
    assert per_day[12] == (1, 0) and per_day[16] == (2, 0) and per_day[19] == (3, 0)
    msg = smtp_server.captured[-1].message
    assert "第3次提醒" in msg.get_content() and "尽快报送" in str(msg["Subject"])
    ctx.close()


def test_an_institution_that_reports_is_not_chased_again(tmp_path: Path, smtp_server: SmtpServer) -> None:
    ctx = _open(tmp_path, smtp_server)
    run_reminders(ctx, at(11))
    assert "广州市胸科医院" in captured_units(smtp_server)
    start = len(smtp_server.captured)
    record_report(
        ctx, simple_mail(sender="xk@example.org", subject="胸科医院自查报告"), at(12, 10), ("广州市胸科医院",)
    )
    run_reminders(ctx, at(15))
    later = captured_units(smtp_server, start)
    assert later and "广州市胸科医院" not in later
    cols = reminder_columns(build_snapshot(ctx, datetime.now(UTC)), ctx.config.campaign.timezone)
    assert cols["已发催报次数"]["广州市胸科医院"] == 1 and cols["已发催报次数"]["中山大学肿瘤防治中心"] == 2
    assert cols["最近催报时间"]["中山大学肿瘤防治中心"] == datetime(2024, 7, 15, 9, 5)
    assert COMMISSION not in cols["最近催报时间"]
    ctx.close()


def test_dry_run_by_default_writes_the_outbox_then_sending_sends_once(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    settings = smtp_config(smtp_server, send=False)
    config_path = write_config(tmp_path, settings)
    ctx = open_context(load_config(config_path))
    summary = run_reminders(ctx, at(8))
    assert summary.dry_run and smtp_server.captured == []
    with ctx.db.connect() as conn:
        rows = list(fetch_ledger(conn))
    assert {r.status for r in rows} == {"dry_run"} and len(rows) == len(summary.plans)
    assert all((ctx.data_dir / r.eml_path).is_file() and r.eml_path.startswith("outbox/") for r in rows)
    run_reminders(ctx, at(8, 10), dry_run=True)
    assert smtp_server.captured == []
    ctx.close()
    settings["reminders"]["send"] = True
    ctx = open_context(load_config(write_config(tmp_path, settings)))
    run_reminders(ctx, at(8, 11))
    run_reminders(ctx, at(8, 12))
    assert len(smtp_server.captured) == len(rows)
    ctx.close()


# ---------------------------------------------------------------- SMTP outcomes


def test_451_is_retried_next_run_with_the_same_message(tmp_path: Path, smtp_tempfail: SmtpServer) -> None:
    config_path = write_config(tmp_path, smtp_config(smtp_tempfail))
    ctx = open_context(load_config(config_path))
    summary = run_reminders(ctx, at(8))
    retry = [d for d in summary.deliveries.values() if d.action == "retry"]
    assert len(retry) == 1 and "451" in retry[0].error
    assert len(smtp_tempfail.captured) == len(summary.plans) - 1
    ctx.close()
    ctx = open_context(load_config(config_path))
    second = run_reminders(ctx, at(8, 10))
    assert second.deliveries[retry[0].occasion].action == "sent"
    last = smtp_tempfail.captured[-1]
    assert last.message["Message-ID"] == retry[0].message_id
    assert last.data == (ctx.data_dir / retry[0].eml_path).read_bytes()
    assert len(smtp_tempfail.captured) == len(summary.plans)
    ctx.close()


def test_550_is_recorded_not_retried_and_shown_in_the_spreadsheet(
    tmp_path: Path, smtp_reject: SmtpServer
) -> None:
    ctx = _open(tmp_path, smtp_reject)
    summary = run_reminders(ctx, at(8))
    assert {d.action for d in summary.deliveries.values()} == {"failed"}
    again = run_reminders(ctx, at(8, 10))
    assert {d.action for d in again.deliveries.values()} == {"already"}
    assert smtp_reject.handler.failures == len(summary.plans)
    columns = reminder_columns(build_snapshot(ctx, datetime.now(UTC)), ctx.config.campaign.timezone)
    assert "550 5.7.1 Message rejected by policy" in columns["邮件发送问题"]["中山大学肿瘤防治中心"]
    out = build_workbook(ctx, at(8), tmp_path / "r.xlsx", WorkbookExtras(status_columns=columns))
    import openpyxl

    sheet = openpyxl.load_workbook(out)["报送情况"]
    header = [c.value for c in sheet[1]]
    assert {"已发催报次数", "最近催报时间", "邮件发送问题"} <= set(header)
    problems = [row[header.index("邮件发送问题")] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert any(p and "550" in p for p in problems)
    ctx.close()


def test_tls_with_verification_and_login(tmp_path: Path, smtp_tls: SmtpServer) -> None:
    ctx = _open(tmp_path, smtp_tls)
    summary = run_reminders(ctx, at(8))
    assert {d.action for d in summary.deliveries.values()} == {"sent"}
    assert len(smtp_tls.captured) == len(summary.plans)
    ctx.close()


def test_tls_refuses_an_unverified_certificate(tmp_path: Path, smtp_tls: SmtpServer) -> None:
    """GIVEN the server's self-signed certificate is not trusted WHEN sending THEN nothing goes out, rows retry."""
    ctx = _open(tmp_path, None, **smtp_config(smtp_tls, verify=False))
    summary = run_reminders(ctx, at(8))
    assert {d.action for d in summary.deliveries.values()} == {"retry"}
    assert "CERTIFICATE_VERIFY_FAILED" in next(iter(summary.deliveries.values())).error
    assert smtp_tls.captured == []
    ctx.close()


def test_starttls_with_verification(tmp_path: Path, smtp_starttls: SmtpServer) -> None:
    ctx = _open(tmp_path, smtp_starttls)
    summary = run_reminders(ctx, at(8))
    assert len(smtp_starttls.captured) == len(summary.plans) > 0
    ctx.close()


# ---------------------------------------------------------------- bounces


def _dsn(bounced, address: str) -> bytes:  # noqa: ANN001 - a Captured
    msg_id = bounced.message["Message-ID"]
    return (
        "From: MAILER-DAEMON@mail.gz.gov.cn (Mail Delivery System)\r\nTo: xxb@gz.gov.cn\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nDate: Mon, 08 Jul 2024 09:20:00 +0800\r\n"
        "Message-ID: <bounce1@mail.gz.gov.cn>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.gz.gov.cn\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: xxb@gz.gov.cn\r\nTo: {address}\r\n"
        f"Message-ID: {msg_id}\r\n\r\n--B--\r\n"
    ).encode()


def test_bounce_marks_the_address_failing_and_it_is_skipped(tmp_path: Path, smtp_server: SmtpServer) -> None:
    ctx = _open(tmp_path, smtp_server)
    run_reminders(ctx, at(8))
    bounced = next(c for c in smtp_server.captured if "xxk@zoc.example" in c.rcpt_tos)
    ooo = simple_mail(sender="xxk@syshosp.example", subject="自动回复：休假中",
                      extra_headers=(("Auto-Submitted", "auto-replied"),
                                     ("In-Reply-To", bounced.message["Message-ID"])))  # fmt: skip
    ingest_raw(ctx, ooo, source="file", ref="ooo", received_at=at(8, 9, 10))
    ingest_raw(ctx, _dsn(bounced, "xxk@zoc.example"), source="file", ref="dsn", received_at=at(8, 9, 20))
    found = process_bounces(ctx)
    assert [(b.address, b.occasion) for b in found] == [
        ("xxk@zoc.example", "reminder:中山大学中山眼科中心:2024-07-08")
    ]
    assert process_bounces(ctx) == []  # idempotent
    status = {u.contact.address: u for u in list_contacts(ctx)}
    assert (
        status["xxk@zoc.example"].status == "failing" and "550 5.1.1" in status["xxk@zoc.example"].last_error
    )
    assert status["xxk@syshosp.example"].status == "ok"  # an out-of-office reply is not a bounce
    assert status["kuanghui@sysucc.example"].last_used_at == at(8)
    summary = run_reminders(ctx, at(10))
    plan = next(p for p in summary.plans if p.unit == "中山大学中山眼科中心")
    assert plan.skipped and any("xxk@zoc.example" in n for n in plan.notes)
    assert "退信" in reminder_columns(build_snapshot(ctx, datetime.now(UTC)), ctx.config.campaign.timezone)["邮件发送问题"]["中山大学中山眼科中心"]
    ctx.close()


def test_stale_retry_is_cancelled_once_the_institution_reports(
    tmp_path: Path, smtp_tempfail: SmtpServer
) -> None:
    ctx = _open(tmp_path, smtp_tempfail)
    summary = run_reminders(ctx, at(8))
    retry = next(d for d in summary.deliveries.values() if d.action == "retry")
    unit = retry.occasion.split(":")[1]
    names = [r["name"] for r in ROSTER if r["name"] == unit] or [
        r["name"]
        for r in ROSTER
        if r["channel"] == "bureau" and BUREAU_OF_DISTRICT[r["district"]]["name"] == unit
    ]
    for n, name in enumerate(names):
        record_report(ctx, simple_mail(sender=f"s{n}@example.org", subject="报告"), at(8, 9, 30), (name,))
    later = run_reminders(ctx, at(8, 10) + timedelta(minutes=1))
    assert later.deliveries[retry.occasion].action == "cancelled"
    assert all(retry.message_id != c.message["Message-ID"] for c in smtp_tempfail.captured)
    ctx.close()


# ---------------------------------------------------------------- the campaign, day by day


CHECKPOINTS = (time(8, 30), time(9, 0), time(12, 0), time(18, 0), time(23, 59))
OCCASIONS = {8: ("before", 1), 10: ("before", 2), 11: ("overdue", 1), 15: ("overdue", 2), 17: ("overdue", 3)}
DEADLINE = datetime(2024, 7, 10, 23, 59, 59, tzinfo=TZ)
AUTOMATIC = ("auto-submitted", "precedence", "list-id", "list-unsubscribe")


def _corpus():
    from pipeline.demo.samples.corpus import generate_corpus

    data = ROOT / "data"
    return generate_corpus(data / "roster.csv", data / "bureaus.csv", data / "contacts.csv", seed=7,
                           as_of=datetime(2024, 7, 20, 23, 59, tzinfo=TZ))  # fmt: skip


def _first_checkpoint(moment: datetime) -> datetime:
    day = moment.astimezone(TZ).date()
    while True:
        for cp in CHECKPOINTS:
            candidate = datetime.combine(day, cp, TZ)
            if candidate >= moment and candidate >= datetime(2024, 7, 8, 8, 30, tzinfo=TZ):
                return candidate
        day += timedelta(days=1)


def _truth_status(corpus, as_of: datetime) -> dict[str, str]:
    result = {}
    for name, final in corpus.expected_status.items():
        first = corpus.expected_first_received.get(name)
        if final == "exempt":
            result[name] = "exempt"
        elif first is not None and first <= as_of:
            result[name] = "on_time" if first <= DEADLINE else "late"
        else:
            result[name] = "overdue" if as_of > DEADLINE else "pending"
    return result


def _row_name(row: str) -> str:
    return next((r["name"] for r in ROSTER if row and r["row"] == row), "")


def _expected(corpus) -> dict[str, dict]:
    """Every mail the policy calls for, from the corpus truth and the data files (not from the code)."""
    import email as email_lib
    import email.policy

    receipts = {}
    answered: set[tuple[str, date]] = set()
    for mail in sorted(corpus.mails, key=lambda m: m.received_at):
        if mail.expected_kind != "report":
            continue
        head = email_lib.message_from_bytes(mail.raw, policy=email.policy.default)
        sender = head["From"].addresses[0].addr_spec.lower()
        if sender.endswith("@gz.gov.cn") or any(head.get(h) and head.get(h) != "no" for h in AUTOMATIC):
            continue
        # Receipts only to a contact of the reporting institution or of its bureau (no mail in the corpus
        # is authenticated by our server), and one per address per day of arrival (the first).
        trusted = set()
        for name in mail.expected_institutions:
            for member in group_of(name):
                trusted |= CONTACTS[member]
                row = next(r for r in ROSTER if r["name"] == member)
                bureaus = [b for b in BUREAUS if b["roster_row"] == row["row"]]
                if row["channel"] == "bureau":
                    bureaus.append(BUREAU_OF_DISTRICT[row["district"]])
                for bureau in bureaus:
                    trusted |= CONTACTS[bureau["name"]] | CONTACTS.get(_row_name(bureau["roster_row"]), set())
        day = mail.received_at.astimezone(TZ).date()
        if sender not in trusted or (sender, day) in answered:
            continue
        answered.add((sender, day))
        receipts[mail.name] = {"to": sender, "date": _first_checkpoint(mail.received_at),
                               "in_reply_to": head.get("Message-ID", "").strip(), "trap": mail.trap}  # fmt: skip
    reminders = {}
    for day, (phase, _round) in OCCASIONS.items():
        status = _truth_status(corpus, at(day, 9, 0))
        missing = {n for n, s in status.items() if s == ("pending" if phase == "before" else "overdue")}
        for unit, want in expected_units(missing).items():
            reminders[(day, unit)] = want
    digests = {}
    previous = None
    for day in range(8, 21):
        as_of = at(day, 8, 30)
        if not is_workday(as_of.date(), LIBRARY_ONLY):
            continue
        status = _truth_status(corpus, as_of)
        arrived = set()
        for mail in corpus.mails:
            if (
                mail.expected_kind == "report"
                and mail.received_at <= as_of
                and (previous is None or mail.received_at > previous)
            ):
                arrived |= set().union(*(group_of(n) for n in mail.expected_institutions))
        before = _truth_status(corpus, previous) if previous else {}
        newly = {n for n, s in status.items() if s == "overdue" and before.get(n) != "overdue"}
        digests[day] = {"status": status, "arrived": arrived, "newly_overdue": newly}
        previous = as_of
    return {"receipts": receipts, "reminders": reminders, "digests": digests}


def _play(tmp_path: Path, server: SmtpServer, corpus, *, clerk_confirms_truth: bool) -> Path:
    """Walk 2024-07-08 .. 07-20: at each checkpoint ingest what has arrived, run receipts; digest at 08:30,
    reminders at 09:00.  The context is reopened every day (a restart)."""
    from pipeline.outbound.digest import send_digest
    from pipeline.outbound.receipts import send_receipts
    from storage.decisions import save_manual_decision
    from storage.rows import Decision

    settings = smtp_config(server)
    settings["digest"] = {"to": ["clerk@gz.gov.cn"]}
    config_path = write_config(tmp_path, settings)
    waiting = sorted(corpus.mails, key=lambda m: m.received_at)
    for day in range(8, 21):
        ctx = open_context(load_config(config_path))
        for cp in CHECKPOINTS:
            now = datetime.combine(date(2024, 7, day), cp, TZ)
            while waiting and waiting[0].received_at <= now:
                mail = waiting.pop(0)
                result = ingest_raw(ctx, mail.raw, source="file", ref=mail.name, received_at=mail.received_at)
                if clerk_confirms_truth:
                    with ctx.db.begin() as conn:
                        save_manual_decision(
                            conn, result.message_id, Decision("message", "unrelated"), by="clerk"
                        )
                        for n, name in enumerate(
                            mail.expected_institutions if mail.expected_kind == "report" else ()
                        ):
                            decision = Decision(f"truth/{n}", "report", institution=name, readable=True,
                                                sections=dict.fromkeys(("基本情况", "整改措施及完成时限", "其他需要说明的事项"), True))  # fmt: skip
                            save_manual_decision(conn, result.message_id, decision, by="clerk")
            send_receipts(ctx, now)
            if cp == time(8, 30):
                extras = WorkbookExtras(status_columns=reminder_columns(build_snapshot(ctx, datetime.now(UTC)), ctx.config.campaign.timezone))
                book = build_workbook(ctx, now, tmp_path / f"日报_{day:02d}.xlsx", extras)
                send_digest(ctx, now, book)
            if cp == time(9, 0):
                run_reminders(ctx, now)
        ctx.close()
    return config_path


def _check_campaign(server: SmtpServer, corpus, config_path: Path, *, kinds: bool) -> None:
    expected = _expected(corpus)
    by_kind: dict[str, list] = defaultdict(list)
    for item in server.captured:
        by_kind[item.message["Subject"].split("】")[0] if str(item.message["Subject"]).startswith("【") else
                ("digest" if "日报" in str(item.message["Subject"]) else "reminder")].append(item)  # fmt: skip
    ids = [c.message["Message-ID"] for c in server.captured]
    assert len(ids) == len(set(ids))

    # Receipts: one per report mail from an outside sender, at the first run after it arrived.
    receipts = by_kind["【回执"] + by_kind["【请补正"]
    # Keyed by (recipient, date, In-Reply-To): some clients send no Message-ID, so there is no In-Reply-To.
    got: dict[tuple, list] = defaultdict(list)
    for item in receipts:
        got[(item.rcpt_tos, item.message["Date"].datetime, item.message.get("In-Reply-To", ""))].append(item)
    want: dict[tuple, list] = defaultdict(list)
    for receipt in expected["receipts"].values():
        want[((receipt["to"],), receipt["date"], receipt["in_reply_to"])].append(receipt["trap"])
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in want.items()}
    for key, items in got.items():
        for item in items:
            subject, body = str(item.message["Subject"]), item.message.get_content()
            if not kinds:
                assert subject.startswith("【回执】"), key
                continue
            # A lone unreadable report must be sent back; a correction is only ever about unreadable files.
            if len(items) == 1 and any(t in want[key][0].split("+")[0] for t in ("unreadable", "scan-pdf")):
                assert subject.startswith("【请补正】"), want[key]
            if subject.startswith("【请补正】"):
                assert "无法读取" in body and "缺少" not in body, want[key]

    # Reminders: exactly the units the policy names on each occasion day, at their contacts.
    got_reminders = {}
    for item in by_kind["reminder"]:
        msg = item.message
        unit = str(msg["Subject"]).split("提醒（", 1)[1][:-1]
        key = (msg["Date"].datetime.day, unit)
        assert key not in got_reminders and msg["Date"].datetime.time() == time(9, 0)
        got_reminders[key] = {"to": {a.addr_spec for a in msg["To"].addresses},
                              "cc": {a.addr_spec for a in msg["Cc"].addresses} if msg["Cc"] else set(), "body": msg.get_content()}  # fmt: skip
    assert set(got_reminders) == set(expected["reminders"])
    for key, want_unit in expected["reminders"].items():
        assert got_reminders[key]["to"] == want_unit["to"] and got_reminders[key]["cc"] == want_unit["cc"], (
            key
        )
        assert all(name in got_reminders[key]["body"] for name in want_unit["listed"] - {key[1]}), key

    # Digests: one per working day at 08:30 with the true counts.
    labels = {
        "on_time": "按时报送",
        "late": "逾期报送",
        "overdue": "逾期未报",
        "pending": "未报（未到期）",
        "exempt": "免报",
    }
    got_digests = {c.message["Date"].datetime.day: c for c in by_kind["digest"]}
    assert len(got_digests) == len(by_kind["digest"]) and set(got_digests) == set(expected["digests"])
    for day, want_digest in expected["digests"].items():
        item = got_digests[day]
        assert item.rcpt_tos == ("clerk@gz.gov.cn",)
        body = item.message.get_body(("plain",)).get_content()
        for status, label in labels.items():
            count = sum(1 for s in want_digest["status"].values() if s == status)
            assert f"{label} {count} 家" in body or f"{label}{count} 家" in body, (day, status, count)
        assert f"新收到报告的单位（{len(want_digest['arrived'])} 家）" in body, day
        assert f"新增逾期未报单位（{len(want_digest['newly_overdue'])} 家）" in body, day

    assert len(server.captured) == len(receipts) + len(got_reminders) + len(got_digests)
    # The walk is not trivial: every kind of mail and both phases happen.
    assert len(receipts) > 50 and len(got_digests) == 10 and {d for d, _ in got_reminders} == set(OCCASIONS)
    ctx = open_context(load_config(config_path))
    with ctx.db.connect() as conn:
        assert {r.status for r in fetch_ledger(conn)} == {"sent"}
    columns = reminder_columns(build_snapshot(ctx, datetime.now(UTC)), ctx.config.campaign.timezone)
    rounds = defaultdict(int)
    for want_unit in expected["reminders"].values():
        for name in want_unit["listed"] | want_unit["own"]:
            rounds[name] += 1
    for name, count in rounds.items():
        assert columns["已发催报次数"][name] == count, name
    ctx.close()


@pytest.mark.slow
def test_campaign_days_send_exactly_what_the_policy_says(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """GIVEN the demo corpus and send = true, with the clerk confirming each mail as the truth says
    WHEN 2024-07-08 .. 07-20 are played day by day THEN the reminders, receipts and digests are exactly
    those the policy calls for, each once."""
    corpus = _corpus()
    config_path = _play(tmp_path, smtp_server, corpus, clerk_confirms_truth=True)
    _check_campaign(smtp_server, corpus, config_path, kinds=False)


@pytest.mark.slow
def test_campaign_days_end_to_end_with_automatic_attribution(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """The same walk with no clerk: attribution decides alone, so every wrong or missing attribution shows
    up here as a wrong receipt or reminder."""
    corpus = _corpus()
    config_path = _play(tmp_path, smtp_server, corpus, clerk_confirms_truth=False)
    _check_campaign(smtp_server, corpus, config_path, kinds=True)


def test_migration_0003_upgrades_an_older_ledger(tmp_path: Path) -> None:
    """GIVEN a database whose mail_ledger predates 0003 WHEN it is opened THEN the columns are added, rows kept."""
    import sqlite3

    from storage.db import open_database
    from storage.schema import MIGRATIONS

    con = sqlite3.connect(tmp_path / "intake.sqlite3")
    con.executescript(
        "CREATE TABLE schema_migrations (name VARCHAR(100) PRIMARY KEY, applied_at DATETIME NOT NULL);"
        "CREATE TABLE mail_ledger (id INTEGER PRIMARY KEY, occasion TEXT NOT NULL UNIQUE, kind VARCHAR(20) NOT NULL,"
        " institutions JSON NOT NULL, recipients JSON NOT NULL, subject TEXT NOT NULL, message_id_header TEXT NOT NULL,"
        " eml_path TEXT NOT NULL, status VARCHAR(20) NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL,"
        " created_at DATETIME NOT NULL, sent_at DATETIME);"
        "INSERT INTO mail_ledger VALUES (1, 'reminder:x:2024-07-08', 'reminder', '[\"x\"]', '[\"a@b.example\"]', 's',"
        " '<m@gz.gov.cn>', '', 'sent', 1, '', '2024-07-08 01:00:00', '2024-07-08 01:00:01');"
    )
    done = [name for name, _ in MIGRATIONS if name != "0003_mail_ledger_notes"]
    con.executemany("INSERT INTO schema_migrations VALUES (?, '2024-01-01 00:00:00')", [(n,) for n in done])
    con.commit()
    con.close()
    db = open_database(tmp_path)
    with db.connect() as conn:
        [row] = list(fetch_ledger(conn))
    assert row.occasion == "reminder:x:2024-07-08" and row.note == "" and row.as_of is None
    db.dispose()


def test_cli_remind_outbox_contacts_receipts(tmp_path: Path) -> None:
    """The four commands run against a dry-run config and print who would be mailed and why."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    config_path = str(write_config(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["remind", "--as-of", "2024-07-08T09:05:00+08:00", "-c", config_path])
    assert result.exit_code == 0, result.output
    assert "预览模式" in result.output and "截止前提醒" in result.output
    result = runner.invoke(app, ["outbox", "-f", "csv", "-c", config_path])
    assert result.exit_code == 0 and result.output.startswith("occasion,kind,status,recipients")
    assert "reminder:广州市番禺区卫生健康局:2024-07-08,reminder,dry_run" in result.output
    result = runner.invoke(app, ["contacts", "-f", "csv", "-c", config_path])
    assert result.exit_code == 0 and "kuanghui@sysucc.example,邝慧,联系人,file,ok" in result.output
    result = runner.invoke(app, ["receipts", "--dry-run", "-c", config_path])
    assert result.exit_code == 0 and "没有需要发回执的新来信" in result.output
