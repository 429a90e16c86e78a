"""Faults: a parser that hangs, crashes or eats memory; kill -9 anywhere; a full disk; a locked database.

The kill -9 trials run the real `intake` command in a child process, kill it at a random
point (a random amount of progress, or a random moment during start-up), rerun the job,
and check the data dir: the database passes `PRAGMA integrity_check`, every message is
there exactly once with its raw file, nothing is left pending, no reminder occasion is
recorded twice.  The trial functions are plain functions so that scripts/reliability can
run them outside pytest; set INTAKE_FAULT_SEED to replay a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest
from sqlalchemy import func, select

import pipeline.inbound.sandbox as sandbox
from parsers.message import parse_message
from parsers.types import ParseLimits
from pipeline.clerk.reprocess import Selection, reprocess
from pipeline.config import load_config
from pipeline.context import Context, open_context
from pipeline.demo.samples import generate_corpus
from pipeline.inbound import pool
from pipeline.inbound.imap import poll_once as poll
from pipeline.inbound.ingest import ingest_paths, ingest_raw
from pipeline.inbound.sandbox import ParseSandbox, SandboxFailure
from pipeline.outbound.reminders import run_reminders
from pipeline.outputs.views import message_views
from storage.imapstate import fetch_checkpoint
from storage.ledger import fetch_ledger
from storage.schema import decisions, mail_ledger, message_sources, messages

from .conftest import ROOT, write_config
from .hostile import attachment, mail, report_docx

TZ = ZoneInfo("Asia/Shanghai")
INTAKE = [sys.executable, "-c", "from pipeline.cli import main; main()"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SEED = int(os.environ.get("INTAKE_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 10**6)
REMIND_AT = datetime(2024, 7, 8, 9, 5, tzinfo=TZ)  # the first before-deadline nudge: every unit is due


# ================================================================ the parse sandbox


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_hanging_parser_is_stopped_and_the_next_message_parses() -> None:
    """GIVEN a parser that sleeps for 60 s WHEN the timeout is 1 s THEN it is stopped after about 1 s with
    the reason, its process is gone, and the next message is parsed by a fresh worker."""
    box = ParseSandbox(timeout_s=1, memory_mb=1024)
    try:
        first = box.call("tests.hostile:child_pid")
        started = time.monotonic()
        with pytest.raises(SandboxFailure, match=r"parsing took longer than 1 s: stopped"):
            box.call("tests.hostile:hang", 60)
        assert time.monotonic() - started < 5
        assert not _alive(first)
        parsed = box.parse(mail(1, body="正文"), ParseLimits())
        assert parsed.text_body == "正文" and box.starts == 2
    finally:
        box.close()


def test_a_crashing_parser_is_reported_with_its_signal() -> None:
    box = ParseSandbox(timeout_s=30, memory_mb=1024)
    try:
        with pytest.raises(SandboxFailure, match=r"^parser crashed: signal 11$"):
            box.call("tests.hostile:crash")
        assert box.parse(mail(2), ParseLimits()).subject == "自查报告"
    finally:
        box.close()


def test_a_parser_eating_memory_hits_the_cap() -> None:
    """GIVEN a 400 MB cap WHEN the parser allocates 2 GB THEN it fails with the memory reason, not the host."""
    box = ParseSandbox(timeout_s=30, memory_mb=400)
    try:
        with pytest.raises(SandboxFailure, match=r"^parser ran out of memory \(limit 400 MB\)$"):
            box.call("tests.hostile:eat_memory", 2048)
        assert box.parse(mail(3), ParseLimits()).subject == "自查报告"
    finally:
        box.close()


def test_an_answer_naming_code_is_refused(tmp_path) -> None:  # noqa: ANN001
    """GIVEN a (compromised) parser answering with a pickle that would run `touch` when loaded
    WHEN the answer is read THEN it is refused as data that is not JSON: the child cannot make us run code."""
    marker = tmp_path / "pwned"
    box = ParseSandbox(timeout_s=30, memory_mb=1024)
    try:
        with pytest.raises(SandboxFailure, match="unreadable answer"):
            box.call("tests.hostile:answer_with_pickle", str(marker))
        assert not marker.exists()
        assert box.parse(mail(8), ParseLimits()).subject == "自查报告"
    finally:
        box.close()


def test_the_parser_process_dies_with_its_parent() -> None:
    """GIVEN a process with a started sandbox WHEN it is killed with SIGKILL THEN its parser child exits too."""
    code = ("import sys, time; from pipeline.inbound.sandbox import ParseSandbox; box = ParseSandbox(); "
            "print(box.call('tests.hostile:child_pid'), flush=True); time.sleep(60)")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the sandbox outlived its parent"
        time.sleep(0.05)


def test_a_stopped_parse_becomes_a_row_with_its_reason(ctx: Context) -> None:
    """GIVEN a parse time limit no message can meet WHEN a message is ingested THEN its row is stored,
    failed, with the reason; the ingest goes on."""
    ctx = replace(ctx, config=replace(ctx.config, parse_timeout_s=0.001))
    big = mail(4, parts=[attachment(os.urandom(3_000_000), "大附件.bin")])
    result = ingest_raw(ctx, big, source="file", ref="big.eml")
    assert result.processed is not None and not result.processed.parse_ok
    assert result.processed.error == "解析被中止：parsing took longer than 0.001 s: stopped"
    ctx = replace(ctx, config=replace(ctx.config, parse_timeout_s=60))
    assert ingest_raw(ctx, mail(5), source="file", ref="small.eml").processed.parse_ok


def test_when_attachments_stop_the_parser_headers_and_bodies_still_count(ctx: Context, monkeypatch) -> None:
    """GIVEN a message whose attachments make the parser time out (simulated: only a parse that reads
    attachments fails) WHEN processed THEN the message is parsed without reading them, each attachment
    carries the reason, and the report named by its filename still counts, flagged for a human."""

    class StallsOnAttachments:
        def parse(self, raw: bytes, limits: ParseLimits):  # noqa: ANN202
            if limits.max_attachments:
                raise SandboxFailure("parsing took longer than 60 s: stopped")
            return parse_message(raw, limits=limits)

        def submit(self, raw: bytes, limits: ParseLimits):  # noqa: ANN202
            parse = self.parse

            class Pending:
                def result(self):  # noqa: ANN202 - answered when collected, as the real child is
                    return parse(raw, limits)

            return Pending()

    stalls = StallsOnAttachments()
    monkeypatch.setattr(sandbox, "shared_sandbox", lambda **_kw: stalls)  # the OCR lane
    monkeypatch.setattr(pool, "parsers", lambda _config, count: [stalls] * count)  # the text lane
    name = "广东省第二人民医院"
    raw = mail(6, subject=f"{name}自查报告", parts=[attachment(report_docx(name), f"{name}自查报告.docx")])
    result = ingest_raw(ctx, raw, source="file", ref="stall.eml")
    assert result.processed.parse_ok and result.processed.institutions == (name,)
    view = next(v for v in message_views(ctx) if v.message.id == result.message_id)
    assert any("attachments not read: parsing took longer" in p for p in view.message.problems)
    report = next(d for d in view.decisions if d.kind == "report")
    assert not report.readable and "解析超时" in report.reason
    item = next(p for p in view_items(ctx, result.message_id) if p.path == "1")
    assert item.problem_code == "parse_stopped" and "parsing took longer than 60 s" in item.problem


def view_items(ctx: Context, message_id: int):  # noqa: ANN201
    from storage.messages import fetch_items

    with ctx.db.connect() as conn:
        return list(fetch_items(conn, message_id))


def test_a_message_that_cannot_be_saved_becomes_a_failed_row(ctx: Context, monkeypatch) -> None:
    """GIVEN a processing step that raises (a bug, or a value the database refuses) WHEN a message is
    ingested THEN its row is failed with the reason, not left pending to stop every later run."""
    import pipeline.inbound.process as process

    def broken(*_args, **_kw):  # noqa: ANN002, ANN003, ANN202
        raise UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(process, "attribute_message", broken)
    result = ingest_raw(ctx, mail(9), source="file", ref="x.eml")
    assert not result.processed.parse_ok and result.processed.error.startswith("处理失败：UnicodeEncodeError")
    monkeypatch.undo()
    assert ingest_raw(ctx, mail(10), source="file", ref="y.eml").processed.parse_ok


def test_eight_bit_bytes_in_message_id_are_stored(ctx: Context) -> None:
    """Found by test_properties: a raw 8-bit byte in Message-ID used to reach the database as a lone
    surrogate, fail the save and leave the row pending for ever."""
    raw = mail(11).replace(b"Message-ID: <", b"Message-ID:\x80 <")
    assert ingest_raw(ctx, raw, source="file", ref="z.eml").processed.parse_ok


def test_isolation_can_be_switched_off(ctx: Context) -> None:
    ctx = replace(ctx, config=replace(ctx.config, isolate_parsing=False))
    parsed, reason = sandbox.parse_stoppable(ctx.config, mail(7))
    assert parsed is not None and reason == ""


# ================================================================ kill -9 trials


@dataclass
class Trial:
    job: str
    how: str  # "after N rows" or "at T s"
    mid_run: bool  # False when the job had already finished (or not yet touched the data) at the kill
    seconds: float
    resent: int = 0  # reminders handed to SMTP twice (the at-least-once window), remind only
    leftovers: int = 0  # .tmp- files a kill left in the raw store (harmless, never referenced)


def _db_count(db: Path, sql: str, *args: object) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql, args).fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_midway(args: list[str], config: Path, progress, target: int | None, rng: random.Random,  # noqa: ANN001
                *, timeout: float = 90) -> tuple[str, bool]:  # fmt: skip
    """Run `intake ARGS --config CONFIG`; SIGKILL it once `progress()` reaches `target` (or, with target
    None, after a random start-up delay).  Checks that its parser process does not outlive it."""
    proc = subprocess.Popen([*INTAKE, *args, "--config", str(config)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    started = time.monotonic()
    delay = rng.uniform(0.05, 1.5) if target is None else None
    children: set[int] = set()
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            children |= {c.pid for c in psutil.Process(proc.pid).children()}
        elapsed = time.monotonic() - started
        assert elapsed < timeout, "the job did not finish in time"
        if (delay is not None and elapsed >= delay) or (target is not None and progress() >= target):
            time.sleep(rng.uniform(0, 0.03))
            break
        time.sleep(0.005)
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    if finished:
        assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else proc.returncode
    if proc.stderr is not None:
        proc.stderr.close()
    deadline = time.monotonic() + 5
    for pid in children:
        while _alive(pid):
            assert time.monotonic() < deadline, "a child of the killed job lives on"
            time.sleep(0.05)
    how = f"at {time.monotonic() - started:.2f} s" if target is None else f"after {progress()} rows"
    return how, not finished


def check_store(ctx: Context, expected: set[str]) -> int:
    """The data dir after a rerun: intact, every message once, nothing pending.  Returns .tmp- leftovers."""
    with ctx.db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        rows = list(conn.execute(select(messages.c.sha256, messages.c.parse_status, messages.c.raw_path)))
        sources = Counter(conn.execute(select(message_sources.c.message_id, message_sources.c.ref)).all())
        active = Counter(conn.execute(select(decisions.c.message_id, decisions.c.item_path, decisions.c.origin)
                                      .where(decisions.c.active)).all())  # fmt: skip
    shas = [r.sha256 for r in rows]
    assert len(shas) == len(set(shas)) and set(shas) == expected, "messages lost or duplicated"
    assert {r.parse_status for r in rows} <= {"ok", "failed"}, "a message was left pending"
    assert len({message_id for message_id, _ref in sources}) == len(rows), "a message without its source"
    assert all(n == 1 for n in sources.values()), "a source recorded twice"
    assert all(n == 1 for n in active.values()), "an item decided twice"
    for r in rows:
        data = (ctx.data_dir / r.raw_path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r.sha256, "a raw file does not match its row"
    raw_files = [p for p in (ctx.data_dir / "raw").rglob("*.eml") if not p.name.startswith(".tmp-")]
    assert len(raw_files) == len(rows)
    return len(list((ctx.data_dir / "raw").rglob(".tmp-*")))


def sample_mails(count: int) -> list[bytes]:
    corpus = generate_corpus(
        ROOT / "data" / "roster.csv", ROOT / "data" / "bureaus.csv", ROOT / "data" / "contacts.csv"
    )
    return [m.raw for m in corpus.mails[:count]]


def write_mails(folder: Path, raws: list[bytes]) -> set[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for n, raw in enumerate(raws):
        (folder / f"{n:04d}.eml").write_bytes(raw)
    return {hashlib.sha256(r).hexdigest() for r in raws}


def ingest_trial(work: Path, folder: Path, expected: set[str], rng: random.Random) -> Trial:
    config = write_config(work)
    db = work / "var" / "intake.sqlite3"
    target = None if rng.random() < 0.25 else rng.randrange(0, len(expected))
    started = time.monotonic()
    how, mid = kill_midway(["ingest", str(folder)], config,
                           lambda: _db_count(db, "select count(*) from messages"), target, rng)  # fmt: skip
    ctx = open_context(load_config(config))
    try:
        ingest_paths(ctx, [folder])
        leftovers = check_store(ctx, expected)
    finally:
        ctx.close()
    return Trial("ingest", how, mid, time.monotonic() - started, leftovers=leftovers)


def reprocess_trial(
    config: Path, expected: set[str], baseline: dict[str, tuple], rng: random.Random
) -> Trial:
    db = load_config(config).data_dir / "intake.sqlite3"
    since = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    target = None if rng.random() < 0.25 else rng.randrange(0, len(expected))
    started = time.monotonic()
    count = lambda: _db_count(db, "select count(*) from messages where processed_at > ?", since)  # noqa: E731
    how, mid = kill_midway(["reprocess", "--all"], config, count, target, rng)
    ctx = open_context(load_config(config))
    try:
        reprocess(ctx, Selection(all=True))
        check_store(ctx, expected)
        assert outcome(ctx) == baseline, "reprocess after a kill changed an attribution"
    finally:
        ctx.close()
    return Trial("reprocess", how, mid, time.monotonic() - started)


def outcome(ctx: Context) -> dict[str, tuple]:
    return {v.message.sha256: (v.kind, v.institutions) for v in message_views(ctx)}


def poll_trial(work: Path, account, raws: list[bytes], rng: random.Random) -> Trial:  # noqa: ANN001 - dovecot Account
    from .dovecot import PASSWORD_ENV

    config = write_config(work, {"mailbox": account.mailbox_settings(batch_size=4)})
    db = work / "var" / "intake.sqlite3"
    target = None if rng.random() < 0.25 else rng.randrange(0, len(raws))
    started = time.monotonic()
    saved = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = account.password
    ctx = None
    try:
        how, mid = kill_midway(
            ["poll"], config, lambda: _db_count(db, "select count(*) from messages"), target, rng
        )
        ctx = open_context(load_config(config))
        summary = poll(ctx)
        assert summary.ok
        check_store(ctx, {hashlib.sha256(r).hexdigest() for r in raws})
        with ctx.db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(message_sources)).scalar_one() == len(raws)
            assert fetch_checkpoint(conn, "INBOX").last_uid == len(raws)
    finally:
        if ctx is not None:
            ctx.close()
        if saved is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = saved
    return Trial("poll", how, mid, time.monotonic() - started)


def remind_trial(work: Path, server, rng: random.Random) -> Trial:  # noqa: ANN001 - tests.smtp.SmtpServer
    from .smtp import smtp_config

    config = write_config(work, smtp_config(server))
    db = work / "var" / "intake.sqlite3"
    before = len(server.captured)
    target = None if rng.random() < 0.25 else rng.randrange(0, 40)
    started = time.monotonic()
    sent = lambda: _db_count(db, "select count(*) from mail_ledger where status = 'sent'")  # noqa: E731
    how, mid = kill_midway(["remind", "--as-of", REMIND_AT.isoformat()], config, sent, target, rng)
    ctx = open_context(load_config(config))
    try:
        summary = run_reminders(ctx, REMIND_AT)
        assert summary.occasion is not None
        with ctx.db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            occasions = Counter(conn.execute(select(mail_ledger.c.occasion)).scalars())
            rows = list(fetch_ledger(conn, kind="reminder"))
        assert all(n == 1 for n in occasions.values()), "a reminder occasion recorded twice"
        assert rows and {r.status for r in rows} == {"sent"}, Counter(r.status for r in rows)
        delivered = Counter(c.message["Message-ID"] for c in server.captured[before:])
        assert {r.message_id_header for r in rows} == set(delivered), "a reminder was lost"
        resent = sum(n - 1 for n in delivered.values())
        assert resent <= 1, "only the mail in flight at the kill may be handed over twice"
    finally:
        ctx.close()
    return Trial("remind", how, mid, time.monotonic() - started, resent=resent)


@pytest.fixture(scope="module")
def rng() -> random.Random:
    print(f"kill -9 trials: INTAKE_FAULT_SEED={SEED}")
    return random.Random(SEED)


@pytest.fixture(scope="module")
def mailfolder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    folder = tmp_path_factory.mktemp("faults") / "mail"
    return folder, write_mails(folder, sample_mails(40))


def test_kill_9_during_ingest(tmp_path: Path, mailfolder, rng: random.Random) -> None:  # noqa: ANN001
    """GIVEN 40 sample messages WHEN `intake ingest` is killed with SIGKILL at 7 random points and rerun
    THEN each time: database intact, every message exactly once with its raw file, none pending."""
    folder, expected = mailfolder
    trials = [ingest_trial(tmp_path / f"t{n}", folder, expected, rng) for n in range(7)]
    print(*trials, sep="\n")
    assert sum(t.mid_run for t in trials) >= 4, trials


def test_kill_9_during_reprocess(tmp_path: Path, mailfolder, rng: random.Random) -> None:  # noqa: ANN001
    """GIVEN 40 ingested messages WHEN `intake reprocess --all` is killed at 6 random points and rerun
    THEN the database is intact and every message keeps exactly the attribution it had."""
    folder, expected = mailfolder
    config = write_config(tmp_path)
    ctx = open_context(load_config(config))
    try:
        ingest_paths(ctx, [folder])
        baseline = outcome(ctx)
    finally:
        ctx.close()
    trials = [reprocess_trial(config, expected, baseline, rng) for _ in range(6)]
    print(*trials, sep="\n")
    assert sum(t.mid_run for t in trials) >= 3, trials


def test_kill_9_during_poll(tmp_path: Path, dovecot, rng: random.Random) -> None:  # noqa: ANN001
    """GIVEN 30 messages in a real Dovecot mailbox WHEN `intake poll` is killed at 4 random points (a fresh
    mailbox and data dir each time) and rerun THEN every message is stored once and the checkpoint is at the end."""
    raws = sample_mails(30)
    trials = []
    for n in range(4):
        account = dovecot.add_user()
        with account.client() as client:
            for raw in raws:
                client.append("INBOX", raw)
        trials.append(poll_trial(tmp_path / f"p{n}", account, raws, rng))
    print(*trials, sep="\n")
    assert sum(t.mid_run for t in trials) >= 2, trials


def test_kill_9_during_remind(tmp_path: Path, smtp_server, rng: random.Random) -> None:  # noqa: ANN001
    """GIVEN every unit due for the 07-08 nudge WHEN `intake remind` is killed at 4 random points and rerun
    THEN no occasion is recorded twice, every reminder is sent, and at most the one mail in flight at the
    kill reached the server twice (at-least-once, same Message-ID)."""
    trials = [remind_trial(tmp_path / f"r{n}", smtp_server, rng) for n in range(4)]
    print(*trials, sep="\n")
    assert sum(t.mid_run for t in trials) >= 2, trials


# ================================================================ disk full, database locked


def _limited(limit: int):  # noqa: ANN202
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_disk_full_gives_a_clear_error_and_no_corruption(tmp_path: Path) -> None:
    """GIVEN a file-size limit (RLIMIT_FSIZE) that the raw store, then the database, runs into
    WHEN `intake ingest` runs THEN it prints "错误：…" and exits 2 without a traceback, and a rerun
    without the limit stores everything exactly once in an intact database."""
    config = write_config(tmp_path)
    big = tmp_path / "big"
    expected = write_mails(big, [mail(1, body="大" + "x" * 3_000_000)])
    small = tmp_path / "small"
    expected |= write_mails(small, sample_mails(40))
    for folder, limit in ((big, 2_000_000), (small, 150_000)):
        done = subprocess.run([*INTAKE, "ingest", str(folder), "--config", str(config)], cwd=ROOT, env=ENV,
                              capture_output=True, text=True, preexec_fn=_limited(limit), timeout=120)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "错误：" in done.stderr and "Traceback" not in done.stderr
        assert "数据库写入失败" in done.stderr or "cannot store raw message" in done.stderr
    ctx = open_context(load_config(config))
    try:
        ingest_paths(ctx, [big, small])
        check_store(ctx, expected)
    finally:
        ctx.close()


def test_a_locked_database_is_waited_for(ctx: Context, tmp_path: Path) -> None:
    """GIVEN another process holding the database's write lock for 3 s WHEN an ingest starts
    THEN it waits for the lock and succeeds."""
    db = ctx.data_dir / "intake.sqlite3"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                               "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(3); "
                               "c.execute('COMMIT')", str(db)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    folder = tmp_path / "mail"
    expected = write_mails(folder, [mail(n) for n in range(3)])
    started = time.monotonic()
    summary = ingest_paths(ctx, [folder])
    waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert summary.new == 3 and waited >= 2
    check_store(ctx, expected)
