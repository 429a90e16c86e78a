"""The mailbox worker against a real Dovecot: nothing lost, nothing duplicated, nothing marked read."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import pipeline.inbound.imap as source
from pipeline.cli import app
from pipeline.config import Config, load_config
from pipeline.context import Context, open_context
from pipeline.demo.samples import generate_corpus
from pipeline.errors import ConfigError, MailboxError
from pipeline.outputs.snapshot import build_snapshot
from pipeline.worker import job_specs, poll_job, worker_lock
from storage.imapstate import fetch_checkpoint, fetch_failures, fetch_state
from storage.schema import audit_log, mail_ledger, message_sources, messages

from .conftest import ROOT, write_config
from .dovecot import PASSWORD_ENV, Account, make_message, received

INTAKE = [sys.executable, "-c", "from pipeline.cli import main; main()"]


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "BACKOFF_START_S", 0.05)


@pytest.fixture
def setup(tmp_path: Path, imap_account: Account) -> Iterator[Callable[..., Context]]:
    """setup(**mailbox keys, limits=..., schedule=...) -> an open Context on a fresh data dir."""
    opened: list[Context] = []

    def make(*, limits: dict | None = None, schedule: dict | None = None, security: str = "plain",
             **mailbox: object) -> Context:  # fmt: skip
        overrides = {"mailbox": imap_account.mailbox_settings(security, **mailbox)}
        overrides.update({k: v for k, v in (("limits", limits), ("schedule", schedule)) if v})
        ctx = open_context(load_config(write_config(tmp_path, overrides)))
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


def append_many(account: Account, count: int, folder: str = "INBOX", start: int = 1) -> list[bytes]:
    raws = [make_message(n) for n in range(start, start + count)]
    with account.client() as client:
        for n, raw in enumerate(raws, start):
            client.append(folder, raw, msg_time=received(n))
    return raws


def count(ctx: Context, table=messages) -> int:  # noqa: ANN001
    with ctx.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def stored_shas(ctx: Context) -> list[str]:
    with ctx.db.connect() as conn:
        return sorted(conn.execute(select(messages.c.sha256)).scalars())


def sha(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()


def checkpoint(ctx: Context, folder: str = "INBOX"):  # noqa: ANN201
    with ctx.db.connect() as conn:
        return fetch_checkpoint(conn, folder)


def failures(ctx: Context):  # noqa: ANN201
    with ctx.db.connect() as conn:
        return fetch_failures(conn)


def test_first_sync_stores_every_message_once_with_its_internaldate(setup, imap_account):
    """GIVEN 5 messages in INBOX WHEN polled THEN 5 rows, received_at = INTERNALDATE, refs folder/uidvalidity/uid."""
    raws = append_many(imap_account, 5)
    ctx = setup()
    summary = source.poll_once(ctx)
    inbox = summary.folders[0]
    assert summary.ok and (inbox.new, inbox.duplicates, inbox.failed, inbox.rescanned) == (5, 0, 0, True)
    assert stored_shas(ctx) == sorted(sha(r) for r in raws)
    uidvalidity = imap_account.uidvalidity()
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(messages.c.sha256, messages.c.received_at, messages.c.received_basis)
        ).all()
        refs = sorted(conn.execute(select(message_sources.c.ref)).scalars())
    when = {sha(r): received(n) for n, r in enumerate(raws, 1)}
    assert all(r.received_at == when[r.sha256] and r.received_basis == "internaldate" for r in rows)
    assert refs == sorted(f"INBOX/{uidvalidity}/{uid}" for uid in range(1, 6))
    assert checkpoint(ctx).last_uid == 5 and checkpoint(ctx).uidvalidity == uidvalidity


def test_incremental_sync_fetches_only_new_mail(setup, imap_account):
    """GIVEN a synced folder WHEN two messages arrive THEN the next poll stores exactly those; an idle poll none.

    The idle poll also proves `UID SEARCH UID 6:*` (which always answers the highest UID) is filtered.
    """
    append_many(imap_account, 5)
    ctx = setup()
    source.poll_once(ctx)
    append_many(imap_account, 2, start=6)
    second = source.poll_once(ctx).folders[0]
    idle = source.poll_once(ctx).folders[0]
    assert (second.new, second.duplicates, second.rescanned) == (2, 0, False)
    assert (idle.new, idle.duplicates, idle.failed) == (0, 0, 0)
    assert count(ctx) == 7 and count(ctx, message_sources) == 7
    assert checkpoint(ctx).last_uid == 7


def test_mail_arriving_during_a_poll_is_not_lost(setup, imap_account, monkeypatch):
    """GIVEN a poll in progress WHEN 3 messages arrive meanwhile THEN the same poll (or the next) stores them."""
    append_many(imap_account, 4)
    ctx = setup(batch_size=2)
    real, calls = source.Ingestor.add, []

    def add_and_deliver(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 1:
            append_many(imap_account, 3, start=5)
        return real(*args, **kwargs)

    monkeypatch.setattr(source.Ingestor, "add", add_and_deliver)
    first = source.poll_once(ctx).folders[0]
    second = source.poll_once(ctx).folders[0]
    assert first.new + second.new == 7 and second.duplicates == 0
    assert count(ctx) == 7 and checkpoint(ctx).last_uid == 7


def test_uidvalidity_change_rescans_without_duplicates_or_gaps(setup, imap_account):
    """GIVEN a synced folder WHEN it is rebuilt (new UIDVALIDITY, UIDs restart at 1) with 2 new messages among
    the old THEN the rescan stores the 2 new ones (though their UIDs are below the old checkpoint) and no copy."""
    raws = append_many(imap_account, 4)
    ctx = setup()
    source.poll_once(ctx)
    old_validity = imap_account.uidvalidity()
    with imap_account.client() as client:  # INBOX cannot be deleted: empty it and give it a new UIDVALIDITY
        client.select_folder("INBOX")
        client.delete_messages(client.search(["ALL"]))
        client.expunge()  # the test's own mailbox; the worker never expunges
    imap_account.set_uidvalidity("INBOX", old_validity + 1000)
    new = [make_message(), make_message()]
    with imap_account.client() as client:
        for n, raw in enumerate([raws[0], new[0], raws[1], new[1], raws[2], raws[3]], 1):
            client.append("INBOX", raw, msg_time=received(n))
    rescan = source.poll_once(ctx).folders[0]
    assert rescan.rescanned and (rescan.new, rescan.duplicates) == (2, 4)
    assert stored_shas(ctx) == sorted(sha(r) for r in raws + new)
    assert checkpoint(ctx).uidvalidity == old_validity + 1000

    imap_account.set_uidvalidity("INBOX", old_validity + 2000)  # same mail, same UIDs, new validity
    again = source.poll_once(ctx).folders[0]
    assert again.rescanned and (again.new, again.duplicates) == (0, 6) and count(ctx) == 6


def test_rebuilt_folder_with_chinese_name(setup, imap_account):
    """GIVEN the junk folder 垃圾邮件 WHEN polled THEN it is sent as modified UTF-7 and its mail stored;
    WHEN the folder is deleted and recreated with its mail THEN nothing is stored twice."""
    imap_account.create_folder("垃圾邮件")
    raws = append_many(imap_account, 3, folder="垃圾邮件")
    assert imap_account.folder_on_the_wire("垃圾邮件") == b"&V4NXPpCuTvY-"
    ctx = setup(folders=["INBOX", "垃圾邮件"])
    summary = source.poll_once(ctx)
    junk = summary.folders[1]
    assert summary.ok and (junk.folder, junk.new) == ("垃圾邮件", 3)
    with ctx.db.connect() as conn:
        refs = list(conn.execute(select(message_sources.c.ref)).scalars())
    assert len(refs) == 3 and all(ref.startswith("垃圾邮件/") for ref in refs)

    imap_account.recreate_folder("垃圾邮件")
    with imap_account.client() as client:
        for n, raw in enumerate([*raws, make_message()], 1):
            client.append("垃圾邮件", raw, msg_time=received(n))
    junk = source.poll_once(ctx).folders[1]
    assert junk.rescanned and (junk.new, junk.duplicates) == (1, 3) and count(ctx) == 4


@pytest.mark.parametrize("how", ["kick", "restart"])
def test_connection_lost_mid_fetch_resumes_from_the_checkpoint(
    setup, imap_account, dovecot, monkeypatch, how
):
    """GIVEN 12 messages in batches of 3 WHEN the connection dies after the 5th is stored (the user's
    connections are dropped, or Dovecot restarts) THEN the poll reconnects and stores each exactly once."""
    raws = append_many(imap_account, 12)
    ctx = setup(batch_size=3)
    real, calls = source.Ingestor.add, []

    def add_then_break(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 5:
            dovecot.kick(imap_account.user) if how == "kick" else dovecot.restart()
        return result

    monkeypatch.setattr(source.Ingestor, "add", add_then_break)
    summary = source.poll_once(ctx)
    assert summary.ok and summary.reconnects >= 1
    assert stored_shas(ctx) == sorted(sha(r) for r in raws)
    assert count(ctx, message_sources) == 12 and checkpoint(ctx).last_uid == 12 and not failures(ctx)


def test_message_whose_fetch_breaks_the_connection_is_recorded_and_does_not_block(setup, imap_account):
    """GIVEN message 2 of 4 unreadable on the server (Dovecot answers its FETCH with BYE) WHEN polled
    THEN 1, 3, 4 are stored and 2 is a failure row; WHEN the server can read it again THEN it is recovered."""
    raws = append_many(imap_account, 4)
    ctx = setup()
    token = raws[1].split(b"Message-ID: <")[1].split(b".")[0]
    path = next(p for p in imap_account.maildir.glob("*/*") if p.is_file() and token in p.read_bytes())
    path.chmod(0)
    first = source.poll_once(ctx).folders[0]
    assert (first.new, first.failed) == (3, 1) and checkpoint(ctx).last_uid == 4
    [failure] = failures(ctx)
    assert (failure.uid, failure.attempts) == (2, 1) and "断开" in failure.reason
    path.chmod(0o600)
    second = source.poll_once(ctx).folders[0]
    assert (second.recovered, second.new) == (1, 1) and not failures(ctx)
    assert stored_shas(ctx) == sorted(sha(r) for r in raws)


SLOW_POLL = """
import sys, time
import pipeline.inbound.imap as source
real = source.Ingestor.add
def slow(*args, **kwargs):
    time.sleep(0.05)
    return real(*args, **kwargs)
source.Ingestor.add = slow
from pipeline.cli import main
sys.argv = ["intake", "poll", "--config", sys.argv[1]]
main()
"""


def db_count(path: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(setup, imap_account, tmp_path):
    """GIVEN `intake poll` storing 30 messages WHEN it is SIGKILLed part-way THEN a rerun stores the rest:
    30 messages, each once, checkpoint at 30."""
    raws = append_many(imap_account, 30)
    ctx = setup(batch_size=4)
    db = ctx.data_dir / "intake.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_POLL, str(tmp_path / "config.toml")], cwd=ROOT,
                            env=with_password(imap_account), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 30
    while db_count(db, "select count(*) from messages") < 10 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert 10 <= db_count(db, "select count(*) from messages") < 30
    rerun = source.poll_once(ctx).folders[0]
    assert rerun.failed == 0 and stored_shas(ctx) == sorted(sha(r) for r in raws)
    assert count(ctx, message_sources) == 30 and checkpoint(ctx).last_uid == 30


def test_poll_never_changes_flags_and_keyword_is_opt_in(setup, imap_account):
    """GIVEN unread, read and flagged messages WHEN polled THEN every flag is as before;
    WITH mark_keyword set THEN only that keyword is added, after the message is stored."""
    assert imap_account.append("INBOX", make_message(), received(1)) == 1
    imap_account.append("INBOX", make_message(), received(2), flags=("\\Seen",))
    imap_account.append("INBOX", make_message(), received(3), flags=("\\Flagged", "\\Answered"))
    before = imap_account.flags()
    source.poll_once(setup())
    assert imap_account.flags() == before and before[1] == set()

    marked = setup(mark_keyword="$IntakeStored")
    with marked.db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM imap_folders")  # make it sync again
    source.poll_once(marked)
    assert imap_account.flags() == {uid: flags | {b"$IntakeStored"} for uid, flags in before.items()}


def test_message_over_the_size_limit_is_recorded_not_skipped(setup, imap_account):
    """GIVEN a 60 kB message between two small ones and a 20 kB limit WHEN polled THEN the small ones are
    stored and the big one is a failure row with UID and size (not fetched, not retried, never silent);
    WHEN the limit is raised THEN it is fetched and the failure resolved."""
    with imap_account.client() as client:
        for n, raw in enumerate([make_message(), make_message(padding=60_000), make_message()], 1):
            client.append("INBOX", raw, msg_time=received(n))
    ctx = setup(limits={"max_message_bytes": 20_000})
    first = source.poll_once(ctx).folders[0]
    assert (first.new, first.oversize) == (2, 1) and checkpoint(ctx).last_uid == 3
    [failure] = failures(ctx)
    assert failure.uid == 2 and failure.size > 60_000 and "max_message_bytes" in failure.reason
    assert source.poll_once(ctx).folders[0].oversize == 0 and failures(ctx)[0].attempts == 1
    [queued] = [q for q in build_snapshot(ctx, datetime.now(UTC)).review_items if q.item.startswith("imap:")]
    assert queued.item == "imap:INBOX/2" and "UID 2" in queued.reason

    result = CliRunner().invoke(app, ["poll", "--config", str(ctx.config.path)])
    assert (
        result.exit_code == 0 and "未能收取的邮件" in result.output and "max_message_bytes" in result.output
    )

    bigger = setup(limits={"max_message_bytes": 200_000})
    assert source.poll_once(bigger).folders[0].recovered == 1 and not failures(bigger) and count(bigger) == 3


def test_a_missing_folder_is_reported_and_the_others_are_polled(setup, imap_account):
    append_many(imap_account, 2)
    ctx = setup(folders=["不存在的文件夹", "INBOX"])
    summary = source.poll_once(ctx)
    assert not summary.ok and summary.folders[0].error and summary.folders[1].new == 2
    with ctx.db.connect() as conn:
        assert fetch_state(conn, source.STATE_LAST_SUCCESS) is None
        assert "不存在的文件夹" in fetch_state(conn, source.STATE_LAST_ERROR).value


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_verifies_the_server_with_the_configured_ca(setup, imap_account, security):
    append_many(imap_account, 1)
    assert source.poll_once(setup(security=security)).folders[0].new == 1


def test_tls_with_the_wrong_ca_fails_clearly(setup, imap_account, dovecot):
    ctx = setup(security="tls", ca_file=str(dovecot.wrong_ca_file))
    with pytest.raises(MailboxError, match="证书验证失败"):
        source.poll_once(ctx)
    with ctx.db.connect() as conn:
        assert "证书" in fetch_state(conn, source.STATE_LAST_ERROR).value


def test_password_from_an_owner_only_file_and_refusal_of_a_readable_one(
    setup, imap_account, tmp_path, monkeypatch
):
    monkeypatch.delenv(PASSWORD_ENV)
    secret = tmp_path / "imap-password"
    secret.write_text(imap_account.password + "\n")
    secret.chmod(0o600)
    append_many(imap_account, 1)
    assert source.poll_once(setup(password_env="", password_file=str(secret))).folders[0].new == 1
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="其他用户可读"):
        source.poll_once(setup(password_env="", password_file=str(secret)))


def test_health_exit_codes(setup, imap_account):
    """GIVEN no poll yet THEN health exits 1; after a successful poll 0; with --max-age 0, 1 again."""
    ctx = setup()
    args = ["health", "--config", str(ctx.config.path)]
    runner = CliRunner()
    assert runner.invoke(app, args).exit_code == 1
    assert runner.invoke(app, ["poll", "--config", str(ctx.config.path)]).exit_code == 0
    healthy = runner.invoke(app, args)
    assert healthy.exit_code == 0 and "正常" in healthy.output
    assert runner.invoke(app, [*args, "--max-age", "0"]).exit_code == 1


def with_password(account: Account) -> dict[str, str]:
    """The environment for an `intake` child process: loading the config in this process took the
    password out of os.environ (children never inherit it), so it is handed over explicitly."""
    return {**os.environ, PASSWORD_ENV: account.password}


def intake(config: Config, account: Account, *args: str, **kwargs) -> subprocess.Popen:  # noqa: ANN003
    return subprocess.Popen([*INTAKE, *args, "--config", str(config.path)], cwd=ROOT, text=True,
                            env=with_password(account), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kwargs)  # fmt: skip


def test_a_second_worker_on_the_same_data_dir_is_refused(setup, imap_account):
    ctx = setup()
    with worker_lock(ctx.data_dir):
        out, err = intake(ctx.config, imap_account, "run").communicate(timeout=30)
    assert "另一个 worker" in err and f"（进程 {os.getpid()}）" in err


def test_run_polls_at_start_and_stops_cleanly_on_sigterm(setup, imap_account):
    append_many(imap_account, 2)
    ctx = setup()
    proc = intake(ctx.config, imap_account, "run")
    deadline = time.monotonic() + 30
    db = ctx.data_dir / "intake.sqlite3"
    while db_count(db, "select count(*) from worker_state where key = 'imap.last_success_at'") == 0:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "event=poll_done ok=True new=2" in err and "event=worker_stopped" in err
    assert count(ctx) == 2 and not (ctx.data_dir / "worker.pid").exists()


def test_fetch_responses_are_read_defensively():
    """Unsolicited entries for other UIDs are ignored, partial ones read as missing, BODY[] key variants work."""
    when = datetime(2024, 7, 9, 10, 0).astimezone()
    response = {
        1: {b"SEQ": 1, b"BODY[]": b"one", b"INTERNALDATE": when, b"RFC822.SIZE": 3},
        2: {b"SEQ": 2, b"FLAGS": (b"\\Seen",)},
        3: {b"SEQ": 3, b"BODY[]<0>": b"three"},
        99: {b"SEQ": 9, b"BODY[]": b"not asked for"},
    }
    found = source._read_fetch(response, [1, 2, 3, 4])
    assert set(found) == {1, 2, 3}
    assert (found[1].raw, found[1].size, found[1].internaldate) == (b"one", 3, when)
    assert found[2].raw is None and found[3].raw == b"three"


def test_schedule_is_data(config):
    """[schedule] becomes three jobs in the campaign's time zone; the poll also runs at start."""
    specs = {s.id: s for s in job_specs(config)}
    assert set(specs) == {"poll", "report", "remind"} and specs["poll"].run_at_start
    assert specs["poll"].trigger.interval.total_seconds() == config.schedule.poll_minutes * 60
    report = {f.name: str(f) for f in specs["report"].trigger.fields}
    assert (report["hour"], report["minute"]) == (str(config.schedule.report_at.hour),
                                                  str(config.schedule.report_at.minute))  # fmt: skip
    assert str(specs["remind"].trigger.timezone) == "Asia/Shanghai"


def test_poll_job_acknowledges_new_reports_and_logs_status_changes(setup, imap_account):
    """GIVEN reports in the mailbox WHEN the worker's poll job runs THEN each report's sender gets one receipt
    (dry run: written to the outbox) and the status changes are in the audit trail; a second run adds none."""
    corpus = generate_corpus(ROOT / "data/roster.csv", ROOT / "data/bureaus.csv", ROOT / "data/contacts.csv", seed=7)
    direct = [m for m in corpus.mails if m.expected_kind == "report" and "-direct-" in m.name][:3]
    assert len(direct) == 3
    with imap_account.client() as client:
        for mail in direct:
            client.append("INBOX", mail.raw, msg_time=mail.received_at)
    ctx = setup()
    now = corpus.as_of
    poll_job(ctx, now, threading.Event())
    with ctx.db.connect() as conn:
        receipts = conn.execute(select(mail_ledger).where(mail_ledger.c.kind == "receipt")).all()
        changes = conn.execute(select(audit_log).where(audit_log.c.action == "status_change")).all()
    assert len(receipts) == len(direct)
    assert {r.status for r in receipts} == {"dry_run"}
    assert {c.institution for c in changes} >= {i for m in direct for i in m.expected_institutions}
    poll_job(ctx, now, threading.Event())
    with ctx.db.connect() as conn:
        assert conn.execute(select(mail_ledger).where(mail_ledger.c.kind == "receipt")).all() == receipts


def test_sample_corpus_arrives_through_imap_exactly_once(setup, imap_account):
    """GIVEN the sample generator's mailbox (INBOX and 垃圾邮件, each mail at its receipt time) WHEN polled
    THEN every mail is stored once, from its folder, with the server's receipt time; a second poll adds nothing."""
    corpus = generate_corpus(
        ROOT / "data/roster.csv", ROOT / "data/bureaus.csv", ROOT / "data/contacts.csv", seed=7
    )
    mails = [m for n, m in enumerate(corpus.mails) if m.folder != "INBOX" or n % 4 == 0]  # keep it quick
    imap_account.create_folder("垃圾邮件")
    with imap_account.client() as client:
        for mail in mails:
            client.append(mail.folder, mail.raw, msg_time=mail.received_at)
    ctx = setup(folders=["INBOX", "垃圾邮件"], batch_size=25)
    summary = source.poll_once(ctx)
    assert summary.ok and summary.total("new") == len({sha(m.raw) for m in mails})
    assert summary.total("failed") == summary.total("oversize") == 0
    with ctx.db.connect() as conn:
        rows = {r.sha256: r for r in conn.execute(select(messages))}
        refs = {r.message_id: r.ref for r in conn.execute(select(message_sources))}
    for mail in mails:
        row = rows[sha(mail.raw)]
        assert (row.received_at, row.received_basis) == (mail.received_at, "internaldate")
        assert refs[row.id].split("/")[0] == mail.folder
    assert source.poll_once(ctx).total("new") == 0


def test_imap_id_is_sent_after_login(setup, imap_account, dovecot):
    """Coremail/NetEase refuse SELECT without ID: it is sent, from the logged-in session, with the configured fields."""
    source.poll_once(setup(imap_id={"name": "report-intake", "version": "9.9"}))
    log = (dovecot.root / "log" / "dovecot.log").read_text()
    lines = [line for line in log.splitlines() if f"imap({imap_account.user})" in line and "ID sent" in line]
    assert lines and "report-intake" in lines[-1] and "9.9" in lines[-1], log[-2000:]
