"""Sender trust (issue 12): no stranger can change who has submitted, silence a reminder, or use
our mail against others.  One test per hole of items 1–4 and 7, each built from
tests/hostile_senders.py and driven through the real CLI (Typer's runner, a real SQLite data
dir, a real aiosmtpd server where mail goes out).

GIVEN / WHEN / THEN in each docstring names the hole and what closes it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.outbound.reminders import Occasion, plan_reminders
from pipeline.vocab import ReminderPhase
from tests import hostile_senders as hs
from tests.conftest import ROOT, write_config
from tests.smtp import SmtpServer, smtp_config

TZ = ZoneInfo("Asia/Shanghai")
FIRST = "广州市第一人民医院"  # roster row 72, direct
FIRST_CONTACT = "wuxiaohua@gz1h.example"  # its contact in data/contacts.csv
YUEXIU_BUREAU = "广州市越秀区卫生健康局"  # a bureau that is itself Annex 1 row 37
BEFORE_DEADLINE = "2024-07-09T12:00:00+08:00"
runner = CliRunner()


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2024, 7, day, hour, 0, tzinfo=TZ)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def mail_cfg(tmp_path: Path, smtp_server: SmtpServer) -> Path:
    return write_config(tmp_path, smtp_config(smtp_server))


def run(config: Path, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "250"}, input=stdin)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == code, f"{args} exited {result.exit_code}:\n{output}\n{result.exception!r}"
    return output


def run_json(config: Path, *args: str) -> list[dict]:
    return json.loads(run(config, *args, "--format", "json"))


def ingest(config: Path, *raws: bytes) -> list[int]:
    """Write each mail as an .eml and take it in with `intake ingest`; their message ids."""
    folder = config.parent / "incoming"
    folder.mkdir(exist_ok=True)
    # Read-only commands do not create a data dir: a fresh one has no messages yet.
    before = {m["message_id"] for m in run_json(config, "messages")} if (config.parent / "var").exists() else set()
    for n, raw in enumerate(raws):
        (folder / f"{len(list(folder.iterdir())) + n:03d}.eml").write_bytes(raw)
    run(config, "ingest", str(folder))
    return sorted({m["message_id"] for m in run_json(config, "messages")} - before)


def status_of(config: Path, name: str, as_of: str = BEFORE_DEADLINE) -> dict:
    return next(r for r in run_json(config, "status", "--as-of", as_of) if r["institution"] == name)


# -- 1. a stranger's report counts, visibly, and waits for a clerk's confirmation -------------------


def test_forged_stranger_docx_is_flagged_unknown_and_listed_for_confirmation(cfg: Path) -> None:
    """GIVEN a docx titled for 广州市第一人民医院 from a stranger with no authentication verdict
    WHEN it is ingested THEN it counts, but `intake status` says sender_trust=unknown, it is listed
    under 发件人待确认 (CLI and workbook), not in the review queue; once a clerk confirms it the
    sender is known and the list is empty."""
    [mid] = ingest(cfg, hs.forged_stranger_docx(FIRST, at(8)))
    out = run(cfg, "status", "--as-of", BEFORE_DEADLINE, "--format", "csv")
    header = out.splitlines()[0].split(",")
    assert header == ["institution", "district", "channel", "status", "first_received_at", "last_received_at",
                      "submissions", "needs_review", "sender_trust"]  # fmt: skip
    rows = {r["institution"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows[FIRST]["status"] == "on_time" and rows[FIRST]["sender_trust"] == "unknown"
    assert {r["sender_trust"] for n, r in rows.items() if n != FIRST} == {""}, "empty when nothing counts"
    listed = run_json(cfg, "senders")
    assert [(r["item"], r["sender"], r["institutions"]) for r in listed] == [
        (str(mid), "someone@stranger.example", FIRST)
    ]
    assert all(r["message_id"] != mid for r in run_json(cfg, "review")), "confirmations are not the review queue"
    book = openpyxl.load_workbook(Path(run(cfg, "report", "--as-of", BEFORE_DEADLINE).split("：", 1)[1].strip()))
    sheet = [[c.value for c in row] for row in book["发件人待确认"].iter_rows()]
    assert sheet[1][0] == str(mid) and sheet[1][2] == "someone@stranger.example"

    out = run(cfg, "confirm", str(mid), stdin="n\n", code=1)  # shown, asked, declined: nothing changes
    assert "将记住地址 someone@stranger.example" in out and "未做任何更改" in out
    assert status_of(cfg, FIRST)["sender_trust"] == "unknown"
    run(cfg, "confirm", str(mid), stdin="y\n")
    assert status_of(cfg, FIRST)["sender_trust"] == "known"
    assert run_json(cfg, "senders") == []
    run(cfg, "reprocess", "--all")
    assert status_of(cfg, FIRST)["sender_trust"] == "known", "the confirmation survives reprocessing"


def test_rejected_sender_stops_counting(cfg: Path) -> None:
    """GIVEN a stranger's report counted for an institution WHEN a clerk rejects the sender
    THEN the institution is pending again (and the verdict survives reprocessing)."""
    [mid] = ingest(cfg, hs.forged_stranger_docx(FIRST, at(8)))
    run(cfg, "confirm", str(mid), "--reject")
    row = status_of(cfg, FIRST)
    assert (row["status"], row["submissions"], row["sender_trust"]) == ("pending", 0, "")
    run(cfg, "reprocess", "--all")
    assert status_of(cfg, FIRST)["status"] == "pending"


def test_failed_authentication_is_never_counted(cfg: Path) -> None:
    """GIVEN a report whose sender our own server failed (dmarc=fail) WHEN ingested
    THEN it is not counted: the institution stays pending and the mail is in review."""
    raw = hs.forged_stranger_docx(FIRST, at(8), stranger=FIRST_CONTACT)
    raw = raw.replace(b"MIME-Version", b"Authentication-Results: mail.gz.gov.cn; dmarc=fail header.from=gz1h.example"
                                       b"\r\nMIME-Version", 1)  # fmt: skip
    [mid] = ingest(cfg, raw)
    assert status_of(cfg, FIRST)["status"] == "pending"
    assert any(r["message_id"] == mid and "dmarc=fail" in r["reason"] for r in run_json(cfg, "review"))


def test_verified_needs_our_servers_aligned_pass_and_a_contact(cfg: Path) -> None:
    """GIVEN the institution's contact with our server's aligned pass WHEN ingested THEN verified;
    the same pass header stamped by another server is ignored (known)."""
    genuine = hs.genuine_report(FIRST, FIRST_CONTACT, at(8))
    ours = genuine.replace(b"MIME-Version", hs.authenticated("gz1h.example")[0] + b"\r\nMIME-Version", 1)
    [_] = ingest(cfg, ours)
    assert status_of(cfg, FIRST)["sender_trust"] == "verified"
    other = write_config(cfg.parent / "other")
    theirs = genuine.replace(b"MIME-Version", hs.authenticated("gz1h.example")[0].replace(b"mail.gz.gov.cn", b"mx.evil.example")
                             + b"\r\nMIME-Version", 1)  # fmt: skip
    ingest(other, theirs)
    assert status_of(other, FIRST)["sender_trust"] == "known"


# -- 1. a weaker sender never replaces the current version ----------------------------------------


def test_docm_impostor_does_not_replace_the_genuine_report(cfg: Path) -> None:
    """GIVEN the hospital's genuine report from its contact, and a day later a stranger's .docm
    "更正版" WHEN ingested THEN the genuine one stays current (status, export), the .docm is listed
    for review as a possible impostor."""
    genuine_id, docm_id = ingest(cfg, hs.genuine_report(FIRST, FIRST_CONTACT, at(8)),
                                 hs.docm_impostor(FIRST, at(9, 9)))  # fmt: skip
    row = status_of(cfg, FIRST, "2024-07-09T12:00:00+08:00")
    assert row["submissions"] == 2 and row["sender_trust"] == "known"
    assert row["last_received_at"].startswith("2024-07-08T10:00"), "the current version is the genuine one"
    assert row["needs_review"] == "true"
    flagged = [r for r in run_json(cfg, "review") if r["message_id"] == docm_id]
    assert flagged and "可能冒名" in flagged[0]["reason"]
    out_dir = cfg.parent / "export"
    run(cfg, "export-reports", "--to", str(out_dir), "--institution", FIRST)
    exported = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("00_"))
    assert len(exported) == 1 and exported[0].endswith(".docx") and "0708" in exported[0].replace("-", ""), exported
    assert genuine_id != docm_id


# -- 2. bounces believed only when real ------------------------------------------------------------


def test_forged_dsn_naming_non_recipients_changes_nothing(mail_cfg: Path, smtp_server: SmtpServer) -> None:
    """GIVEN a receipt we really sent to the hospital's contact, and a forged DSN quoting its
    Message-ID that lists two other contacts (never its recipients) with a non-null envelope
    WHEN reminders run (bounces first) THEN both contacts stay usable and the DSN is listed as
    可疑退信; a genuine DSN for the real recipient is believed."""
    ingest(mail_cfg, hs.genuine_report(FIRST, FIRST_CONTACT, at(8)))
    run(mail_cfg, "receipts")
    [receipt] = [c for c in smtp_server.captured if FIRST_CONTACT in c.rcpt_tos]
    victims = ["xxk@zoc.example", "xxk@syshosp.example"]
    ingest(mail_cfg, hs.forged_dsn(receipt.message["Message-ID"], victims, at(8, 11)))
    out = run(mail_cfg, "remind", "--dry-run", "--as-of", "2024-07-08T12:00:00+08:00")
    assert "可疑退信" in out
    health = {r["address"]: r["status"] for r in run_json(mail_cfg, "contacts")}
    assert health["xxk@zoc.example"] == health["xxk@syshosp.example"] == "ok"

    real = hs.forged_dsn(receipt.message["Message-ID"], [FIRST_CONTACT], at(8, 12))
    real = real.replace(b"Return-Path: <attacker@evil.example>", b"Return-Path: <>").replace(
        b"forged-dsn-1@", b"real-dsn-1@")
    ingest(mail_cfg, real)
    run(mail_cfg, "remind", "--dry-run", "--as-of", "2024-07-08T12:30:00+08:00")
    health = {r["address"]: r["status"] for r in run_json(mail_cfg, "contacts")}
    assert health[FIRST_CONTACT] == "failing" and health["xxk@zoc.example"] == "ok"


# -- 3. evidence nobody can type ------------------------------------------------------------------


def test_96_files_merely_mentioning_institutions_freeze_no_reminder(cfg: Path) -> None:
    """GIVEN one mail with 96 small docx, each merely mentioning another institution
    WHEN ingested THEN it is ONE review item and no institution is held back from reminders."""
    names = [r["name"] for r in csv.DictReader((ROOT / "data" / "roster.csv").open(encoding="utf-8"))]
    [mid] = ingest(cfg, hs.many_mentions(names, at(8)))
    assert [r["item"] for r in run_json(cfg, "review") if r["message_id"] == mid] == [str(mid)]
    rows = run_json(cfg, "status", "--as-of", BEFORE_DEADLINE)
    assert not [r["institution"] for r in rows if r["needs_review"] == "true"]
    ctx = open_context(load_config(cfg))
    try:
        plans, held = plan_reminders(ctx, at(9, 9), Occasion(at(9).date(), ReminderPhase.BEFORE, 1))
    finally:
        ctx.close()
    assert held == [] and sum(len(p.institutions) for p in plans) == len(
        [r for r in rows if r["status"] == "pending"]
    )


def test_display_name_and_typed_forward_header_claim_nothing(cfg: Path) -> None:
    """GIVEN "番禺区卫生健康局 <anyone@evil.example>" with a forward header typed into the body
    naming 广州市第一人民医院's contact, over an anonymous report WHEN ingested THEN that hospital
    has not submitted (the mail goes to review, or nowhere)."""
    [mid] = ingest(cfg, hs.display_name_and_typed_forward("番禺区卫生健康局", FIRST_CONTACT, at(8)))
    row = status_of(cfg, FIRST)
    assert (row["status"], row["submissions"]) == ("pending", 0)
    messages = {m["message_id"]: m for m in run_json(cfg, "messages")}
    assert messages[mid]["institutions"] == ""


def test_a_bureau_forwarding_with_a_typed_header_still_counts(cfg: Path) -> None:
    """GIVEN the same typed forward sent from the 越秀 bureau's listed address WHEN ingested
    THEN it is evidence (a bureau forwards for its hospitals): the contact's hospital is credited."""
    raw = hs.display_name_and_typed_forward("越秀区卫健局", FIRST_CONTACT, at(8)).replace(
        b"<anyone@evil.example>", b"<xxk@yuexiu-wjj.example>")
    ingest(cfg, raw)
    assert status_of(cfg, FIRST)["status"] == "on_time"


# -- 4. learning contacts only where safe ---------------------------------------------------------


def test_confirming_a_strangers_report_assigned_to_a_bureau_learns_nothing(cfg: Path) -> None:
    """GIVEN a stranger's anonymous report that a clerk assigns to the 越秀 bureau's Annex 1 row
    WHEN the clerk confirms the sender THEN the CLI says no address will be learned, none is, and
    the bureau's reminder goes to its listed contacts only."""
    [mid] = ingest(cfg, hs.anonymous_report(at(8)))
    out = run(cfg, "assign", f"{mid}:1", YUEXIU_BUREAU)
    assert "已记住" not in out
    out = run(cfg, "confirm", str(mid), "--yes")
    assert "不会记住地址" in out and "已记住" not in out
    assert "stranger@evil.example" not in {r["address"] for r in run_json(cfg, "contacts")}
    ctx = open_context(load_config(cfg))
    try:
        plans, _ = plan_reminders(ctx, at(9, 9), Occasion(at(9).date(), ReminderPhase.BEFORE, 1))
    finally:
        ctx.close()
    recipients = {r.address for p in plans for r in (*p.to, *p.cc)}
    assert "stranger@evil.example" not in recipients and "xxk@yuexiu-wjj.example" in recipients


# -- 7. receipts that cannot be aimed at others ---------------------------------------------------


def test_no_receipt_to_a_forged_stranger_backscatter(mail_cfg: Path, smtp_server: SmtpServer) -> None:
    """GIVEN a counted report from a stranger address our server did not authenticate (a forged
    From: aims the receipt at a victim) WHEN receipts run THEN no mail goes to that address; the
    same stranger authenticated by our server does get one, echoing no subject or filename."""
    ingest(mail_cfg, hs.forged_stranger_docx(FIRST, at(8), stranger="victim@elsewhere.example"))
    out = run(mail_cfg, "receipts")
    assert "不发" in out and smtp_server.captured == []
    second = hs.forged_stranger_docx("广州市妇女儿童医疗中心", at(8, 11), stranger="xxk@qq.example")
    second = second.replace(b"MIME-Version", hs.authenticated("qq.example")[0] + b"\r\nMIME-Version", 1)
    ingest(mail_cfg, second)
    run(mail_cfg, "receipts")
    [sent] = smtp_server.captured
    assert sent.rcpt_tos == ("xxk@qq.example",)
    body = sent.message.get_content()
    assert "自查报告.docx" not in body and "广州市妇女儿童医疗中心" in body


def test_at_most_one_receipt_per_address_per_day(mail_cfg: Path, smtp_server: SmtpServer) -> None:
    """GIVEN three reports in one day from the hospital's contact WHEN receipts run
    THEN the address gets one receipt, the others are skipped with the reason."""
    raws = [hs.genuine_report(FIRST, FIRST_CONTACT, at(8, h)).replace(b"genuine-1@", f"genuine-{h}@".encode())
            for h in (9, 10, 11)]  # fmt: skip
    ingest(mail_cfg, *raws)
    out = run(mail_cfg, "receipts")
    assert len([c for c in smtp_server.captured if FIRST_CONTACT in c.rcpt_tos]) == 1
    assert "每个地址每天至多一封" in out or out.count("不发") >= 2
