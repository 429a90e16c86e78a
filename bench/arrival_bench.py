"""Seconds from arrival to status: APPEND reports to a real Dovecot while `intake run` works.

For each mode a fresh Dovecot user and data dir, then `intake run` as a subprocess:
  * idle: `[schedule] idle = true`, poll_minutes = 60 (so only IDLE can be quick);
  * poll: `[schedule] idle = false`, poll_minutes = 1 (the scheduled poll alone).
After its first poll, reports of different institutions are APPENDed one at a time at
random moments; for each, the time from the server's OK to the moment the report's
decision and its receipt are in the database (read-only SQLite reads every 20 ms).

Run: .venv/bin/python bench/arrival_bench.py [--appends 20] [--poll-appends 5]  (as root; needs Dovecot)
Prints one JSON line: {"idle": {...}, "poll": {...}}.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.demo.samples import generate_corpus  # noqa: E402
from tests.conftest import write_config  # noqa: E402
from tests.dovecot import DovecotServer  # noqa: E402

INTAKE = [sys.executable, "-c", "from pipeline.cli import main; main()"]
TIMEOUT_S = 150.0
# The acknowledgement each report gets: a receipt, or a correction request when a file cannot be read.
RECEIPTS = "select count(*) from mail_ledger where kind in ('receipt', 'correction')"
DECIDED = "select count(distinct message_id) from decisions where kind = 'report' and active"


def _count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _wait(predicate, timeout: float = TIMEOUT_S) -> float:  # noqa: ANN001
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout:g} s")
        time.sleep(0.02)
    return time.monotonic() - started


def measure(server: DovecotServer, work: Path, mode: str, reports: list, appends: int, rng: random.Random) -> dict:
    account = server.add_user()
    secret = work / f"{mode}-password"
    secret.write_text(account.password)
    secret.chmod(0o600)
    overrides = {
        "mailbox": account.mailbox_settings("plain", password_env="", password_file=str(secret)),
        "schedule": {"poll_minutes": 60 if mode == "idle" else 1, "idle": mode == "idle"},
    }
    folder = work / mode
    folder.mkdir()
    config = write_config(folder, overrides)
    log = (folder / "worker.log").open("w")
    proc = subprocess.Popen([*INTAKE, "run", "--config", str(config)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=log)  # fmt: skip
    db = folder / "var" / "intake.sqlite3"
    seconds: list[float] = []
    try:
        _wait(lambda: _count(db, "select count(*) from worker_state where key = 'imap.last_success_at'") > 0)
        if mode == "idle":
            _wait(lambda: "event=imap_idle_start" in (folder / "worker.log").read_text())
        for n, mail in enumerate(reports[:appends], 1):
            time.sleep(rng.uniform(0.2, 2.0) if mode == "idle" else rng.uniform(0, 60))
            with account.client() as client:
                client.append("INBOX", mail.raw, msg_time=mail.received_at)
            accepted = time.monotonic()
            _wait(lambda n=n: _count(db, RECEIPTS) >= n and _count(db, DECIDED) >= n)
            seconds.append(time.monotonic() - accepted)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    ordered = sorted(seconds)
    return {
        "appends": len(seconds),
        "p50_s": statistics.median(ordered),
        "p95_s": ordered[max(0, round(0.95 * len(ordered)) - 1)],
        "max_s": ordered[-1],
        "poll_minutes": overrides["schedule"]["poll_minutes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=20, help="APPENDs with IDLE")
    parser.add_argument("--poll-appends", type=int, default=5, help="APPENDs with polling only (each waits up to a minute)")
    parser.add_argument("--modes", default="idle,poll")
    args = parser.parse_args()
    corpus = generate_corpus(ROOT / "data/roster.csv", ROOT / "data/bureaus.csv", ROOT / "data/contacts.csv", seed=7)
    seen: set[str] = set()
    reports = []
    for mail in corpus.mails:  # one report per institution, each from a different sender: one receipt each
        single = mail.expected_kind == "report" and "-direct-" in mail.name and len(mail.expected_institutions) == 1
        if single and mail.expected_institutions[0] not in seen:
            seen.add(mail.expected_institutions[0])
            reports.append(mail)
    rng = random.Random(16)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="intake-arrival-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        (root / "dovecot").mkdir()
        (root / "dovecot").chmod(0o755)
        server = DovecotServer(root / "dovecot")
        server.start()
        try:
            for mode in args.modes.split(","):
                count = args.appends if mode == "idle" else args.poll_appends
                results[mode] = measure(server, root, mode, reports, count, rng)
                print(f"{mode}: {results[mode]}", file=sys.stderr, flush=True)
        finally:
            server.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
