"""Backup and restore: a consistent copy while another process keeps ingesting, restored and verified.

Everything runs as real processes on real SQLite: a writer process ingests mail in a loop,
`intake backup` copies the data dir meanwhile, `intake restore` puts it in a new dir, and the
test checks the copy independently (PRAGMA integrity_check, its own SHA-256 of every file,
every raw file the database names) and that `intake status` reads the same from both.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.roster import load_roster
from storage.backup import BackupError, backup, read_manifest, restore, verify_backup
from tests.conftest import ROOT, write_config
from tests.smtp import record_report, simple_mail

TZ = ZoneInfo("Asia/Shanghai")
INTAKE = [sys.executable, "-m", "pipeline"]
AS_OF = "2024-07-12T09:00:00+08:00"

WRITER = r"""
import os, sys, time
from datetime import datetime, timezone
from email.message import EmailMessage
from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.inbound.ingest import ingest_raw

config, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = open_context(load_config(config))
n = 0
while not os.path.exists(stop):
    msg = EmailMessage()
    msg["From"] = f"lunch{n}@example.net"
    msg["To"] = "xxb@gz.gov.cn"
    msg["Subject"] = f"食堂午餐通知 {n}"
    msg["Message-ID"] = f"<lunch-{n}-{os.getpid()}@example.net>"
    msg.set_content("今天食堂加菜，欢迎就餐。\n" + os.urandom(60_000).hex())
    ingest_raw(ctx, msg.as_bytes(), source="file", ref=f"writer-{n}", received_at=datetime.now(timezone.utc))
    n += 1
    if n == 40:
        open(ready, "w").close()
ctx.close()
print(n)
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("INTAKE_DATA_DIR", None)
    return subprocess.run([*INTAKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _message_count(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        conn.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    """A data dir with three reports (manual decisions) and a daily workbook and outbox file."""
    cfg_path = write_config(tmp_path, {"limits": {"isolate_parsing": False}})
    ctx = open_context(load_config(cfg_path))
    names = [inst.name for inst in load_roster(ctx.config.campaign)][1:4]
    for n, name in enumerate(names):
        raw = simple_mail(sender=f"office{n}@hospital{n}.cn", subject=f"{name}自查报告",
                          attachment=(f"{name}.txt", "自查情况报告".encode()))  # fmt: skip
        record_report(ctx, raw, datetime(2024, 7, 9 + n, 10, 0, tzinfo=TZ), (name,))
    (ctx.data_dir / "reports" / "自查报告报送情况_20240712_0830.xlsx").write_bytes(os.urandom(5000))
    (ctx.data_dir / "outbox" / "reminder-test.eml").write_bytes(b"Subject: test\r\n\r\nbody\r\n")
    (ctx.data_dir / "outbox" / "half-written.eml.tmp").write_bytes(b"partial")
    ctx.close()
    return cfg_path


def test_backup_while_another_process_ingests_then_restore_reads_the_same(populated: Path, tmp_path: Path) -> None:
    """GIVEN a writer process ingesting mail in a loop WHEN `intake backup` runs meanwhile and the copy is restored
    into a new dir THEN the database passes integrity_check, every file matches its SHA-256, every raw file the
    restored database names is there, and `intake status` reads the same from the copy as from the original."""
    cwd = populated.parent
    data = cwd / "var"
    status_before = _run("status", "-c", str(populated), "--as-of", AS_OF, "-f", "csv", cwd=cwd)
    assert status_before.returncode == 0, status_before.stderr
    assert status_before.stdout.count(",on_time,") + status_before.stdout.count(",late,") == 3

    stop, ready = tmp_path / "stop", tmp_path / "ready"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(populated), str(stop), str(ready)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert writer.poll() is None, "writer died"
            assert time.monotonic() < deadline, "writer too slow"
            time.sleep(0.05)
        counts = [_message_count(data / "intake.sqlite3")]
        backups = []
        for n in range(3):  # several backups while the writer goes on
            done = _run("backup", str(tmp_path / f"backup{n}"), "-c", str(populated), cwd=cwd)
            assert done.returncode == 0, done.stderr
            assert "备份完成" in done.stdout
            backups.append(tmp_path / f"backup{n}")
            counts.append(_message_count(data / "intake.sqlite3"))
        assert writer.poll() is None, "the writer must still be running after the backups"
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0
    assert counts[-1] > counts[0], "the writer kept ingesting while the backups ran"
    written = int(out.strip())
    final_count = _message_count(data / "intake.sqlite3")
    assert final_count == written + 3

    status_after = _run("status", "-c", str(populated), "--as-of", AS_OF, "-f", "csv", cwd=cwd)
    assert status_after.stdout == status_before.stdout  # the writer's mail changes no institution's status

    source = backups[-1]
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"] == str(data.resolve()) and manifest["schema_version"]
    paths = {f["path"] for f in manifest["files"]}
    assert "outbox/reminder-test.eml" in paths and "reports/自查报告报送情况_20240712_0830.xlsx" in paths
    assert not any(p.endswith(".tmp") for p in paths)
    for f in manifest["files"]:
        path = source / f["path"]
        assert _sha(path) == f["sha256"] and path.stat().st_size == f["size"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f["path"]
    for folder, dirs, _files in os.walk(source):
        for d in [folder, *(os.path.join(folder, x) for x in dirs)]:
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d

    restored = tmp_path / "new-server" / "intake-data"
    done = _run("restore", str(source), "--data-dir", str(restored), cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert "恢复完成" in done.stdout
    conn = sqlite3.connect(restored / "intake.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT id, raw_path, sha256 FROM messages ORDER BY id").fetchall()
    finally:
        conn.close()
    assert counts[-2] <= len(rows) <= counts[-1]  # a snapshot taken during that backup
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))  # no holes: one consistent snapshot
    for _id, raw_path, sha in rows:
        assert _sha(restored / raw_path) == sha
    for f in manifest["files"]:
        assert _sha(restored / f["path"]) == f["sha256"]

    status_restored = _run("status", "-c", str(populated), "--data-dir", str(restored), "--as-of", AS_OF, "-f", "csv",
                           cwd=cwd)  # fmt: skip
    assert status_restored.returncode == 0, status_restored.stderr
    assert status_restored.stdout == status_before.stdout


def test_restore_refuses_a_corrupted_file_and_a_non_empty_target(populated: Path, tmp_path: Path) -> None:
    cwd = populated.parent
    source = tmp_path / "bk"
    assert _run("backup", str(source), "-c", str(populated), cwd=cwd).returncode == 0
    manifest = read_manifest(source)
    raw = next(f for f in manifest.files if f.path.startswith("raw/"))
    damaged = bytearray((source / raw.path).read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    (source / raw.path).write_bytes(bytes(damaged))

    target = tmp_path / "restored"
    done = _run("restore", str(source), "--data-dir", str(target), cwd=cwd)
    assert done.returncode == 2
    assert "备份文件已损坏" in done.stderr and raw.path.rsplit("/", 1)[1] in done.stderr.replace("\n", "")
    assert not target.exists() and not list(tmp_path.glob(".restore-*"))
    with pytest.raises(BackupError, match="已损坏"):
        verify_backup(source)

    (source / raw.path).write_bytes(bytes(damaged[: len(damaged) // 2]))  # truncated: size differs too
    with pytest.raises(BackupError, match="已损坏"):
        restore(source, target)

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("x")
    done = _run("restore", str(tmp_path / "bk"), "--data-dir", str(occupied), cwd=cwd)
    assert done.returncode == 2 and "不是空的" in done.stderr
    assert sorted(p.name for p in occupied.iterdir()) == ["keep.txt"]

    again = _run("backup", str(source), "-c", str(populated), cwd=cwd)
    assert again.returncode == 2 and "不是空目录" in again.stderr


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "raw/../../x", "elsewhere/file", "raw\\..\\x"])
def test_a_manifest_cannot_point_outside_the_data_dir(populated: Path, tmp_path: Path, bad: str) -> None:
    source = tmp_path / "bk"
    backup(populated.parent / "var", source)
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"].append({"path": bad, "size": 1, "sha256": "0" * 64})
    (source / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BackupError, match="路径不安全"):
        restore(source, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_an_unfinished_backup_or_a_newer_schema_is_refused(populated: Path, tmp_path: Path) -> None:
    source = tmp_path / "bk"
    backup(populated.parent / "var", source)
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    manifest["migrations"].append("0099_from_the_future")
    (source / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BackupError, match="更新版本"):
        restore(source, tmp_path / "t1")
    (source / "manifest.json").unlink()
    with pytest.raises(BackupError, match="没有 manifest.json"):
        restore(source, tmp_path / "t2")
