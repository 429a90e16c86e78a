"""Pytest plugin: a real Dovecot IMAP server on 127.0.0.1 for the IMAP tests (no mock server).

One server per test session (plain + STARTTLS listener and an IMAPS listener
with a certificate made here), started as root from a throw-away config in a
temp folder; every test gets a fresh user with an empty maildir, so tests do
not see each other's mail.  Facts this relies on are in shared/NOTES.md: the
static userdb maps users to nobody/nogroup (never uid 0), and that user owns
the mail folder.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.header import Header
from pathlib import Path

import psutil
import pytest
from imapclient import IMAPClient

HOST = "127.0.0.1"
CST = timezone(timedelta(hours=8))
PASSWORD_ENV = "INTAKE_TEST_IMAP_PASSWORD"
USERS = 200  # fresh users available to one test session


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stderr or done.stdout}"
        )
    return done.stdout


def make_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA); returns (cert, key)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "3", "-subj", f"/CN={name} test CA",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")  # fmt: skip
    return cert, key


CONFIG = """\
base_dir = {root}/base
state_dir = {root}/state
log_path = {root}/log/dovecot.log
info_log_path = {root}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
shutdown_clients = yes
imap_id_log = *
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


class DovecotServer:
    """A Dovecot instance under `root` (a world-traversable temp dir: the mail processes run as nobody)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "dovecot.conf"
        self.imap_port = _free_port()
        self.imaps_port = _free_port()
        for sub in ("base", "state", "log", "mail"):
            (root / sub).mkdir()
        shutil.chown(root / "mail", "nobody", "nogroup")
        self.ca_file, key = make_certificate(root, "server")
        self.wrong_ca_file, _ = make_certificate(root, "stranger")
        # Dovecot re-reads passwd-file at most once a second, so every test's user exists from the start.
        self._accounts = [(f"user{n}", f"pw-user{n}-{os.urandom(4).hex()}") for n in range(1, USERS + 1)]
        (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self._accounts))
        self.conf.write_text(CONFIG.format(root=root, cert=self.ca_file, key=key, imap_port=self.imap_port,
                                           imaps_port=self.imaps_port))  # fmt: skip

    def start(self) -> None:
        # The daemon keeps inherited pipes open: give it files, not pipes, or run() waits for ever.
        with (self.root / "log" / "startup.log").open("a") as out:
            done = subprocess.run(["dovecot", "-c", str(self.conf)], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=out, timeout=30)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"dovecot failed to start: {(self.root / 'log' / 'startup.log').read_text()}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.imap_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not start; see {self.root / 'log/dovecot.log'}")

    def stop(self) -> None:
        """Stop this instance.  Its IMAP sessions are killed first: Dovecot would let them live on."""
        pid_file = self.root / "base" / "master.pid"
        try:
            sessions = [p for p in psutil.Process(int(pid_file.read_text())).children() if p.name() == "imap"]
        except (OSError, ValueError, psutil.Error):
            return
        for session in sessions:
            with contextlib.suppress(psutil.Error):
                session.kill()
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def doveadm(self, *args: str) -> str:
        return _run("doveadm", "-c", self.conf, *args)

    def kick(self, user: str) -> None:
        """Drop every IMAP connection of `user` (as a network failure would)."""
        subprocess.run(["doveadm", "-c", str(self.conf), "kick", user], capture_output=True, timeout=30)

    def add_user(self) -> Account:
        if not self._accounts:
            raise RuntimeError(f"all {USERS} test users are taken; raise USERS in tests/dovecot.py")
        name, password = self._accounts.pop(0)
        return Account(self, name, password)


@dataclass
class Account:
    server: DovecotServer
    user: str
    password: str

    @property
    def maildir(self) -> Path:
        return self.server.root / "mail" / self.user

    def client(self) -> IMAPClient:
        client = IMAPClient(HOST, port=self.server.imap_port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def mailbox_settings(self, security: str = "plain", **extra: object) -> dict[str, object]:
        """The `[mailbox]` section for write_config(); the password comes from PASSWORD_ENV."""
        port = self.server.imaps_port if security == "tls" else self.server.imap_port
        settings: dict[str, object] = {
            "host": HOST, "port": port, "security": security, "username": self.user,
            "password_env": PASSWORD_ENV, "password_file": "", "folders": ["INBOX"], "timeout_s": 10,
            "batch_size": 50, "ca_file": str(self.server.ca_file) if security != "plain" else "",
        }  # fmt: skip
        settings.update(extra)
        return settings

    def append(
        self, folder: str, raw: bytes, when: datetime | None = None, flags: tuple[str, ...] = ()
    ) -> int:
        """APPEND with a given INTERNALDATE; returns the new UID (UIDPLUS)."""
        with self.client() as client:
            answer = client.append(folder, raw, flags=flags, msg_time=when)
        match = re.search(rb"APPENDUID \d+ (\d+)", answer)
        assert match, answer
        return int(match.group(1))

    def create_folder(self, name: str) -> None:
        with self.client() as client:
            client.create_folder(name)

    def recreate_folder(self, name: str) -> None:
        """Delete and create the folder again: all its mail is gone and its UIDVALIDITY changes."""
        with self.client() as client:
            client.delete_folder(name)
            client.create_folder(name)

    def set_uidvalidity(self, folder: str, value: int) -> None:
        self.server.doveadm("mailbox", "update", "-u", self.user, "--uid-validity", str(value), folder)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return client.select_folder(folder, readonly=True)[b"UIDVALIDITY"]

    def flags(self, folder: str = "INBOX") -> dict[int, set[bytes]]:
        """Flags per UID, without \\Recent (which any SELECT may clear)."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            found = client.get_flags(uids) if uids else {}
        return {uid: set(flags) - {b"\\Recent"} for uid, flags in found.items()}

    def folder_on_the_wire(self, name: str) -> bytes:
        """The folder's name as the server lists it (modified UTF-7), without client-side decoding."""
        with self.client() as client:
            client.folder_encode = False
            names = [n for _flags, _sep, n in client.list_folders()]
        encoded = [n for n in names if n != b"INBOX"]
        assert len(encoded) == 1, names
        return encoded[0]

    def write_maildir(self, messages: list[tuple[bytes, datetime]]) -> None:
        """Fast path for big mailboxes: drop files into INBOX's maildir (as nobody) and let Dovecot index them.

        Dovecot takes a maildir file's mtime as the message's INTERNALDATE.
        """
        cur = self.maildir / "cur"
        if not cur.exists():
            with self.client() as client:  # lets Dovecot create the maildir with the right owner
                client.select_folder("INBOX")
        for n, (raw, when) in enumerate(messages):
            path = cur / f"{int(when.timestamp())}.M{n}P{os.getpid()}.bench,S={len(raw)}:2,"
            path.write_bytes(raw)
            os.utime(path, (when.timestamp(), when.timestamp()))
            os.chown(path, _NOBODY[0], _NOBODY[1])
        self.server.doveadm("force-resync", "-u", self.user, "INBOX")


_NOBODY = (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
_counter = itertools.count(1)


def make_message(n: int | None = None, *, padding: int = 0, tag: str = "") -> bytes:
    """A small Chinese report notice (UTF-8 subject as an encoded word, base64 body), unique per call."""
    n = next(_counter) if n is None else n
    token = os.urandom(6).hex()
    subject = Header(f"第{n}号 电子健康码自查情况报告 {tag}".strip(), "utf-8").encode()
    body = f"您好！附件为我院电子健康码平台应用自查情况报告（第{n}号），请查收。\n编号 {token}\n"
    body += "填充" * (padding // 6)
    encoded = base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f"From: =?utf-8?B?5bm/5bee5biC56ys5LiA5Lq65rCR5Yy76Zmi?= <h{n}@hospital.example>\r\n"
        f"To: xxb@gz.gov.cn\r\nSubject: {subject}\r\n"
        f"Date: Tue, 09 Jul 2024 10:00:00 +0800\r\nMessage-ID: <{token}.{n}@hospital.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + encoded


def received(n: int) -> datetime:
    """A distinct INTERNALDATE per message, in China time."""
    return datetime(2024, 7, 9, 9, 0, tzinfo=CST) + timedelta(minutes=n)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        pytest.fail("Dovecot is not installed: the IMAP tests need a real server. Run scripts/test (it installs "
                    "dovecot-imapd), or: apt-get install -y dovecot-imapd", pytrace=False)  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
    root.chmod(0o755)
    server = DovecotServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    """A fresh user with an empty mailbox; its password is in $INTAKE_TEST_IMAP_PASSWORD."""
    account = dovecot.add_user()
    monkeypatch.setenv(PASSWORD_ENV, account.password)
    return account
