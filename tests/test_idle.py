"""Seconds from arrival to status: IMAP IDLE against the real Dovecot, and the worker that uses it."""

# ruff: noqa: F811 - the fixtures of test_imap are imported by name

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from pipeline.demo.samples import generate_corpus
from pipeline.inbound import idle
from pipeline.outputs.snapshot import build_snapshot
from storage.schema import mail_ledger

from .conftest import ROOT
from .dovecot import PASSWORD_ENV, make_message
from .test_imap import INTAKE, count, db_count, fast_backoff, setup  # noqa: F401 - fixtures

ARRIVAL_BOUND_S = 10.0  # a new report's status row and receipt within 10 s of the server accepting it


def wait_for(predicate, timeout: float, what: str) -> float:  # noqa: ANN001
    """Poll `predicate` until true; returns the seconds it took (fails after `timeout`)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def test_idle_wakes_on_new_mail_and_renews_before_the_timeout(setup, imap_account):
    """GIVEN a watcher in IDLE on INBOX, renewing every 1 s WHEN two messages are APPENDed, one after a renewal
    THEN each wakes it within a few seconds, and the IDLE was renewed in between."""
    ctx = setup()
    woken = threading.Event()
    stop = threading.Event()
    watcher = idle.IdleWatcher(ctx.config.mailbox, woken.set, stop, renew_s=1.0, check_s=0.2)
    watcher.start()
    try:
        wait_for(watcher.watching.is_set, 15, "the watcher is in IDLE")
        assert watcher.supported is True and not woken.is_set()
        with imap_account.client() as client:
            client.append("INBOX", make_message(1))
        wait_for(woken.is_set, 5, "the first APPEND wakes the watcher")
        woken.clear()
        renewed = watcher.renewals
        wait_for(lambda: watcher.renewals > renewed, 5, "the IDLE is renewed")
        with imap_account.client() as client:
            client.append("INBOX", make_message(2))
        wait_for(woken.is_set, 5, "an APPEND after a renewal wakes the watcher")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert watcher.wakeups == 2


def test_mail_that_arrives_while_the_watcher_is_waking_is_not_lost(setup, imap_account):
    """GIVEN a watcher in IDLE WHEN a message arrives, and while the watcher is handling that wake-up (out of
    IDLE) two more arrive THEN the watcher wakes again for them, on its own (no renewal, no other mail): the
    server reports them when the next IDLE starts, which must not be swallowed."""
    ctx = setup()
    stop = threading.Event()
    wakes: list[float] = []

    def on_mail() -> None:
        wakes.append(time.monotonic())
        if len(wakes) == 1:  # mail arriving while the worker polls, before the watcher re-enters IDLE
            with imap_account.client() as client:
                client.append("INBOX", make_message(21))
                client.append("INBOX", make_message(22))

    watcher = idle.IdleWatcher(ctx.config.mailbox, on_mail, stop, renew_s=600.0, check_s=0.2)
    watcher.start()
    try:
        wait_for(watcher.watching.is_set, 15, "the watcher is in IDLE")
        with imap_account.client() as client:
            client.append("INBOX", make_message(20))
        wait_for(lambda: len(wakes) >= 2, 10, "a second wake-up for the mail that came during the first")
        assert watcher.renewals == 0
    finally:
        stop.set()
        watcher.join(10)


def test_a_server_without_idle_leaves_the_scheduled_poll(setup, imap_account, monkeypatch):
    """GIVEN a server that does not advertise IDLE WHEN the watcher starts THEN it says so and ends, waking nobody."""
    ctx = setup()
    real = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, cap: cap.upper() != "IDLE" and real(self, cap))
    calls: list[int] = []
    watcher = idle.IdleWatcher(ctx.config.mailbox, lambda: calls.append(1), threading.Event())
    watcher.start()
    watcher.join(timeout=15)
    assert watcher.supported is False and not calls and not watcher.watching.is_set()


def test_renewal_interval_is_within_rfc_2177():
    assert idle.RENEW_S < 29 * 60


def test_worker_records_a_new_report_within_seconds_of_arrival(setup, imap_account, tmp_path: Path):
    """GIVEN `intake run` (polling every 60 min) idle after its first poll WHEN a report is APPENDed THEN its
    institution's status row is no longer pending and its receipt is in the ledger within 10 s."""
    corpus = generate_corpus(ROOT / "data/roster.csv", ROOT / "data/bureaus.csv", ROOT / "data/contacts.csv", seed=7)
    report = next(m for m in corpus.mails if m.expected_kind == "report" and "-direct-" in m.name)
    [institution] = report.expected_institutions
    ctx = setup(schedule={"poll_minutes": 60})
    log = tmp_path / "worker.log"
    with log.open("w") as err:
        # Loading the config took the password out of this process's environment: hand it to the worker.
        env = {**os.environ, PASSWORD_ENV: imap_account.password}
        proc = subprocess.Popen([*INTAKE, "run", "--config", str(ctx.config.path)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    try:
        db = ctx.data_dir / "intake.sqlite3"
        wait_for(lambda: db_count(db, "select count(*) from worker_state where key = 'imap.last_success_at'") > 0,
                 60, "the first poll")  # fmt: skip
        wait_for(lambda: "event=imap_idle_start" in log.read_text(), 30, "the worker is in IDLE")
        assert proc.poll() is None
        with imap_account.client() as client:
            client.append("INBOX", report.raw, msg_time=report.received_at)
        accepted = time.monotonic()

        def recorded() -> bool:
            status = build_snapshot(ctx, datetime.now(UTC)).status_of(institution)
            with ctx.db.connect() as conn:
                receipts = conn.execute(select(mail_ledger).where(mail_ledger.c.kind == "receipt")).all()
            return status.status != "pending" and len(receipts) == 1

        wait_for(recorded, ARRIVAL_BOUND_S, "status row and receipt of the new report")
        took = time.monotonic() - accepted
        assert took < ARRIVAL_BOUND_S
        assert count(ctx) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text()
    assert proc.returncode == 0, text[-2000:]
    assert "event=imap_idle_start" in text and "event=worker_stopped" in text
