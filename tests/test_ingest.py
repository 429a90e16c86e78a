"""Ingest from files: nothing lost, nothing duplicated, resumable after a kill."""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import func, select

from pipeline.inbound.ingest import ingest_paths
from storage.schema import message_sources, messages

from .test_message_parsing import b64word, message


def sample_mail(n: int, *, received: str = "Tue, 09 Jul 2024 10:00:00 +0800") -> bytes:
    return message(
        [b"Received: from mx by mail.gz.gov.cn; " + received.encode(), b"From: h%d@hospital.example" % n,
         b"Subject: " + b64word(f"第{n}封测试邮件"), b"Message-ID: <m%d@hospital.example>" % n],
        f"正文 {n}".encode("gbk"),
    )  # fmt: skip


def write_folder(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (folder / f"{n:04d}.eml").write_bytes(sample_mail(n))


def count_rows(ctx, table) -> int:  # noqa: ANN001
    with ctx.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_ingesting_a_folder_twice_duplicates_nothing(ctx, tmp_path):
    """GIVEN a folder of 12 messages WHEN ingested twice THEN 12 rows, the second run counts 12 duplicates."""
    folder = tmp_path / "mail"
    write_folder(folder, 12)
    first = ingest_paths(ctx, [folder])
    second = ingest_paths(ctx, [folder])
    assert (first.new, first.duplicates) == (12, 0)
    assert (second.new, second.duplicates) == (0, 12)
    assert count_rows(ctx, messages) == 12
    assert count_rows(ctx, message_sources) == 12
    raw_files = list((ctx.data_dir / "raw").rglob("*.eml"))
    assert len(raw_files) == 12
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in raw_files)


def test_same_bytes_under_two_names_are_one_message_with_two_sources(ctx, tmp_path):
    (tmp_path / "a.eml").write_bytes(sample_mail(1))
    (tmp_path / "b.eml").write_bytes(sample_mail(1))
    summary = ingest_paths(ctx, [tmp_path / "a.eml", tmp_path / "b.eml"])
    assert (summary.new, summary.duplicates) == (1, 1)
    assert count_rows(ctx, message_sources) == 2


def test_mbox_and_maildir_sources(ctx, tmp_path):
    box = mailbox.mbox(tmp_path / "inbox.mbox")
    for n in range(3):
        box.add(sample_mail(100 + n))
    box.close()
    md = mailbox.Maildir(tmp_path / "Maildir")
    for n in range(2):
        md.add(sample_mail(200 + n))
    summary = ingest_paths(ctx, [tmp_path / "inbox.mbox", tmp_path / "Maildir"])
    assert summary.new == 5


def test_unparseable_message_is_stored_and_listed_with_reason(ctx, tmp_path):
    """GIVEN a mail over the size limit and a garbage file WHEN ingested THEN the mail is stored as failed with
    its reason; the garbage is not a message at all (refused, see test_ingest_refusals.py)."""
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "bad.eml").write_bytes(b"\x00\xff garbage without headers")
    (folder / "huge.eml").write_bytes(b"Subject: big\r\n\r\n" + b"x" * 200)
    ctx = replace(ctx, config=replace(ctx.config, max_message_bytes=100))
    summary = ingest_paths(ctx, [folder])
    assert summary.new == 1
    assert [(Path(p.ref).name, p.reason) for p in summary.unreadable_sources] == [("bad.eml", "not_mail")]
    with ctx.db.connect() as conn:
        rows = {r.size: r for r in conn.execute(select(messages))}
    huge = rows[max(rows)]
    assert huge.parse_status == "failed" and "超过上限" in huge.parse_error


def test_receipt_time_falls_back_to_date_and_says_so(ctx, tmp_path):
    raw = message([b"From: a@b.example", b"Subject: x", b"Date: Wed, 10 Jul 2024 08:00:00 +0800"], b"x")
    (tmp_path / "m.eml").write_bytes(raw)
    ingest_paths(ctx, [tmp_path])
    with ctx.db.connect() as conn:
        row = conn.execute(select(messages)).one()
    assert row.received_basis == "date"
    assert any("Date" in p for p in row.problems)


def test_killed_ingest_completes_on_rerun_without_loss(config_path, tmp_path):
    """GIVEN 300 messages WHEN `intake ingest` is SIGKILLed midway and rerun THEN all 300 are stored once."""
    folder = tmp_path / "mail"
    write_folder(folder, 300)
    cmd = [sys.executable, "-m", "pipeline", "ingest", str(folder), "--config", str(config_path)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raw_dir = tmp_path / "var" / "raw"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(raw_dir.rglob("*.eml"))) < 40:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored_before = len(list(raw_dir.rglob("*.eml")))
    assert 0 < stored_before < 300, "the kill must land mid-run for this test to mean anything"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    from pipeline.config import load_config
    from pipeline.context import open_context

    ctx = open_context(load_config(config_path))
    try:
        assert count_rows(ctx, messages) == 300
        with ctx.db.connect() as conn:
            statuses = set(conn.execute(select(messages.c.parse_status)).scalars())
            integrity = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
        assert statuses == {"ok"}
        assert integrity == "ok"
        assert len([p for p in raw_dir.rglob("*.eml") if not p.name.startswith(".tmp-")]) == 300
    finally:
        ctx.close()


def test_stale_temp_files_of_a_killed_writer_are_swept(ctx, tmp_path):
    """GIVEN a temp file a killed writer left in the raw store (old) and one being written now
    WHEN an ingest runs THEN the old one is gone and the fresh one is left alone."""
    folder = ctx.data_dir / "raw" / "ab" / "cd"
    folder.mkdir(parents=True)
    stale, fresh = folder / ".tmp-stale.eml", folder / ".tmp-fresh.eml"
    stale.write_bytes(b"half a message")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    (tmp_path / "m.eml").write_bytes(sample_mail(1))
    ingest_paths(ctx, [tmp_path / "m.eml"])
    assert not stale.exists() and fresh.exists()


def test_messages_and_show_commands_print_decoded_fields(config_path, tmp_path):
    """GIVEN an ingested GBK-subject message WHEN listed and shown through the CLI THEN the decoded subject,
    the stable CSV columns, the receipt time with its offset and where the message came from are printed."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    (tmp_path / "m.eml").write_bytes(sample_mail(7))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(tmp_path / "m.eml"), "-c", str(config_path)]).exit_code == 0
    listing = runner.invoke(app, ["messages", "-f", "csv", "-c", str(config_path)])
    header, row = listing.output.strip().splitlines()
    # The contract's columns stay first and unchanged; issue 15 added two at the end.
    assert header == "message_id,received_at,sender,subject,kind,institutions,message_id_header,sender_name"
    assert row.startswith("1,2024-07-09T10:00:00+08:00,h7@hospital.example,第7封测试邮件,unrelated,")
    assert row.endswith(",m7@hospital.example,")
    shown = runner.invoke(app, ["show", "1", "-c", str(config_path)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "第7封测试邮件" in shown.output
    assert f"来源：文件 {tmp_path / 'm.eml'}" in shown.output
    missing = subprocess.run([sys.executable, "-m", "pipeline", "show", "99", "-c", str(config_path)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 2 and "没有找到邮件 99" in missing.stderr and "Traceback" not in missing.stderr
