"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, capturing every envelope.

Fixtures (registered through `pytest_plugins` in conftest.py):
- `smtp_server`: plain SMTP that accepts everything;
- `smtp_tempfail`: answers the first DATA with 451, then accepts;
- `smtp_reject`: answers every DATA with 550;
- `smtp_tls`: implicit TLS (SMTPS) with a self-signed certificate the test makes with the openssl CLI,
  and AUTH PLAIN/LOGIN against a fixed user;
- `smtp_starttls`: the same certificate behind STARTTLS (required before AUTH).
`smtp_config(server)` gives the config.toml overrides that point the pipeline at one of them.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "xxb@gz.gov.cn"
SMTP_PASSWORD = "Ce-shi.s3cret!"
PASSWORD_ENV = "INTAKE_TEST_SMTP_PASSWORD"


@dataclass(frozen=True)
class Captured:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class Handler:
    """Records envelopes; `fail_first` DATA commands get `fail_reply`, or all of them when `fail_always`."""

    fail_reply: str = ""
    fail_first: int = 0
    fail_always: bool = False
    reject_rcpt: frozenset[str] = frozenset()
    captured: list[Captured] = field(default_factory=list)
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, N802
        if address.lower() in self.reject_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        with self.lock:
            if self.fail_reply and (self.fail_always or self.failures < self.fail_first):
                self.failures += 1
                return self.fail_reply
            self.captured.append(
                Captured(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 Ok: queued"


@dataclass
class SmtpServer:
    controller: Controller
    handler: Handler
    port: int
    security: str  # plain | tls | starttls
    ca_file: Path | None = None

    @property
    def captured(self) -> list[Captured]:
        return self.handler.captured


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER
    ok = ok and auth_data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok)


def _start(handler: Handler, security: str = "plain", cert: tuple[Path, Path] | None = None) -> SmtpServer:
    port = free_port()
    kwargs: dict = {}
    if cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        kwargs["authenticator"] = _authenticator
        if security == "tls":
            # aiosmtpd only counts STARTTLS as "TLS" for AUTH; an SMTPS connection is TLS from the first byte.
            kwargs["auth_require_tls"] = False
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return SmtpServer(controller, handler, port, security, cert[0] if cert else None)


def smtp_config(
    server: SmtpServer, *, send: bool = True, verify: bool = True
) -> dict[str, dict[str, object]]:
    """config.toml overrides pointing [smtp] at `server` (and [reminders] send)."""
    smtp: dict[str, object] = {"host": "127.0.0.1", "port": server.port, "security": server.security,
                               "username": "", "password_env": "", "ca_file": ""}  # fmt: skip
    if server.security != "plain":
        smtp.update(username=SMTP_USER, password_env=PASSWORD_ENV)
        if verify and server.ca_file is not None:
            smtp["ca_file"] = str(server.ca_file)
    return {"smtp": smtp, "reminders": {"send": send}}


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = _start(Handler())
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_tempfail() -> Iterator[SmtpServer]:
    server = _start(Handler(fail_reply="451 4.3.0 Temporary local problem, try again later", fail_first=1))
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_reject() -> Iterator[SmtpServer]:
    server = _start(Handler(fail_reply="550 5.7.1 Message rejected by policy", fail_always=True))
    yield server
    server.controller.stop()


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_tls(smtp_certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setenv(PASSWORD_ENV, SMTP_PASSWORD)
    server = _start(Handler(), "tls", smtp_certificate)
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_starttls(
    smtp_certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SmtpServer]:
    monkeypatch.setenv(PASSWORD_ENV, SMTP_PASSWORD)
    server = _start(Handler(), "starttls", smtp_certificate)
    yield server
    server.controller.stop()


# ---------------------------------------------------------------- helpers for the outgoing-mail tests


def simple_mail(
    *,
    sender: str,
    subject: str,
    body: str = "请查收。",
    sender_name: str = "",
    attachment: tuple[str, bytes] | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
    message_id: str = "",
) -> bytes:
    """A received mail as a hospital's client would send it (UTF-8, encoded-word headers)."""
    from email.headerregistry import Address
    from email.utils import make_msgid

    msg = EmailMessage(policy=email.policy.SMTP)
    local, _, domain = sender.partition("@")
    msg["From"] = Address(display_name=sender_name, username=local, domain=domain)
    msg["To"] = "xxb@gz.gov.cn"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 08 Jul 2024 10:00:00 +0800"
    msg["Message-ID"] = message_id or make_msgid(domain=domain or "example.org")
    for name, value in extra_headers:
        msg[name] = value
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(
            attachment[1], maintype="application", subtype="octet-stream", filename=attachment[0]
        )
    return msg.as_bytes()


def record_report(ctx, raw: bytes, received_at, institutions: tuple[str, ...], *, item_path: str = "message",
                  readable: bool = True, sections: dict | None = None) -> int:  # noqa: ANN001  # fmt: skip
    """Ingest `raw` and record, as a clerk would, that it carries the reports of `institutions`.

    Manual decisions outrank automatic attribution, so the test does not depend on it.
    """
    from pipeline.inbound.ingest import ingest_raw
    from storage.decisions import save_manual_decision
    from storage.rows import Decision

    result = ingest_raw(
        ctx, raw, source="file", ref=f"test-{received_at.isoformat()}", received_at=received_at
    )
    full = dict.fromkeys(("基本情况", "整改措施及完成时限", "其他需要说明的事项"), True)
    with ctx.db.begin() as conn:
        if item_path != "message" or not institutions:
            save_manual_decision(conn, result.message_id, Decision("message", "unrelated"), by="test")
        for n, name in enumerate(institutions):
            path = item_path if n == 0 else f"{item_path}#{n}"
            decision = Decision(path, "report", institution=name, readable=readable,
                                sections=full if sections is None else sections)  # fmt: skip
            save_manual_decision(conn, result.message_id, decision, by="test")
    return result.message_id
