"""Delivering outgoing mail: SMTP with verified TLS, and the ledger protocol.

Every reminder, receipt and digest goes through `Outbox.deliver`, which keeps
this order for each occasion (a unique key such as "receipt:<sha256>"):

1. build the message with a fixed Message-ID and write it to `<data dir>/outbox/`;
2. INSERT the ledger row (status "intent", or "dry_run" for a preview) — the
   occasion is UNIQUE, so a rerun or a concurrent run finds the row and stops;
3. send it; 4. record "sent", "retry" (4xx, connection trouble) or "failed" (5xx).

A row left in "intent" or "retry" is sent again on the next run with the SAME
bytes and Message-ID.  If we crash after the server accepted a message but
before step 4 committed, the next run sends that same message again: SMTP
offers no way to ask a server "did you take it?", so this is the best it
allows, and mail clients collapse copies with one Message-ID.  A batch holds
the outbox lock, so two runs never work on the same row at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import make_msgid
from pathlib import Path

from filelock import FileLock, Timeout

from pipeline.config import Config
from pipeline.context import Context
from pipeline.errors import ConfigError, DeliveryError
from pipeline.outbound.compose import OutgoingMail, build_message, header_text
from pipeline.vocab import AddressHealth, DeliveryOutcome, DeliveryState
from storage.ledger import (
    OPEN_STATUSES,
    LedgerRow,
    fetch_ledger,
    fetch_occasion,
    save_address_status,
    save_claim,
    save_new_occasion,
    save_outcome,
    save_status,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10  # a 4xx that persists this many runs becomes "failed"
SMTP_TIMEOUT_S = 60.0


def dry_run_default(config: Config, dry_run: bool | None) -> bool:
    """Dry run unless [reminders] send = true, and always when the caller asks for it."""
    return (not config.reminders.send) if dry_run is None else dry_run


# ---------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one occasion's delivery did in this run."""

    occasion: str
    kind: str
    action: DeliveryOutcome
    status: str  # the ledger status afterwards
    recipients: tuple[str, ...]
    subject: str
    message_id: str
    eml_path: str
    error: str = ""

    @classmethod
    def of(cls, row: LedgerRow, action: str, error: str | None = None) -> Delivery:
        return cls(row.occasion, row.kind, DeliveryOutcome(action), row.status, tuple(row.recipients), row.subject,
                   row.message_id_header, row.eml_path, row.last_error if error is None else error)  # fmt: skip




@dataclass
class Outbox:
    """One batch of deliveries under the data dir's outbox lock; use as a context manager.

    `clock` is the job's moment: it dates the messages and their ledger rows.
    """

    ctx: Context
    dry_run: bool
    clock: datetime
    lock_timeout_s: float = 600.0
    _lock: FileLock | None = field(default=None, repr=False)
    _smtp: smtplib.SMTP | None = field(default=None, repr=False)
    _broken: str = ""

    def __enter__(self) -> Outbox:
        folder = self.ctx.data_dir / "outbox"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = FileLock(str(folder / ".outbox.lock"), timeout=self.lock_timeout_s)
        try:
            self._lock.acquire()
        except Timeout as err:
            raise DeliveryError("另一个发信任务正在进行，稍后再试") from err
        return self

    def __exit__(self, *exc: object) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None
        if self._lock is not None:
            self._lock.release()

    @property
    def config(self) -> Config:
        return self.ctx.config

    def deliver(self, mail: OutgoingMail) -> Delivery:
        """Send (or preview) the occasion's mail once; a recorded occasion is resent only if still open."""
        if not mail.to:
            raise DeliveryError(f"{mail.occasion}: 没有收件人")
        with self.ctx.db.connect() as conn:
            row = fetch_occasion(conn, mail.occasion)
        if row is None:
            return self._first(mail)
        if row.status in OPEN_STATUSES:
            return Delivery.of(row, DeliveryOutcome.WAITING) if self.dry_run else self._resend(row)
        if row.status == DeliveryState.DRY_RUN and not self.dry_run:
            return self._promote(row, mail)
        return Delivery.of(row, DeliveryOutcome.ALREADY)

    def open_rows(self, kinds: tuple[str, ...]) -> list[LedgerRow]:
        with self.ctx.db.connect() as conn:
            return list(fetch_ledger(conn, kind=kinds, statuses=OPEN_STATUSES))

    def resend(self, row: LedgerRow) -> Delivery:
        """Send an open row again (same bytes) — for rows whose job no longer lists them but stay valid."""
        return Delivery.of(row, DeliveryOutcome.WAITING) if self.dry_run else self._resend(row)

    def cancel(self, row: LedgerRow, reason: str) -> Delivery:
        with self.ctx.db.begin() as conn:
            save_status(conn, row.id, DeliveryState.CANCELLED, note=(row.note + "\n" if row.note else "") + reason)
        return Delivery.of(row, DeliveryOutcome.CANCELLED, reason)

    # -- steps

    def _compose(self, mail: OutgoingMail, message_id: str | None = None) -> tuple[str, bytes, str]:
        domain = self.config.smtp.from_address.rpartition("@")[2] or "localhost"
        message_id = message_id or make_msgid(idstring=mail.kind, domain=domain)
        data = build_message(self.config, mail, message_id=message_id, date=self.clock)
        local = self.clock.astimezone(self.config.campaign.timezone)
        digest = hashlib.sha256(f"{mail.occasion}\n{message_id}".encode()).hexdigest()[:16]
        relpath = f"outbox/{local:%Y%m%d}-{mail.kind}-{digest}.eml"
        _write_atomic(self.ctx.data_dir / relpath, data)
        return message_id, data, relpath

    def _first(self, mail: OutgoingMail) -> Delivery:
        message_id, data, relpath = self._compose(mail)
        status = DeliveryState.DRY_RUN if self.dry_run else DeliveryState.INTENT
        with self.ctx.db.begin() as conn:
            row_id = save_new_occasion(
                conn, occasion=mail.occasion, kind=mail.kind, institutions=list(mail.institutions),
                recipients=mail.recipients, subject=header_text(mail.subject, 180), message_id_header=message_id,
                eml_path=relpath, status=status, as_of=mail.as_of, note=mail.note,
            )  # fmt: skip
            row = fetch_occasion(conn, mail.occasion)
        assert row is not None
        if row_id is None:  # someone else recorded this occasion first: ours was never sent
            (self.ctx.data_dir / relpath).unlink(missing_ok=True)
            return Delivery.of(row, DeliveryOutcome.ALREADY)
        if self.dry_run:
            return Delivery.of(row, DeliveryState.DRY_RUN)
        return self._send(row, data)

    def _promote(self, row: LedgerRow, mail: OutgoingMail) -> Delivery:
        """A previewed occasion, now for real: fresh bytes (today's Date), then the usual protocol."""
        message_id, data, relpath = self._compose(mail)
        with self.ctx.db.begin() as conn:
            claimed = save_claim(conn, row.id, from_status=DeliveryState.DRY_RUN, status=DeliveryState.INTENT, message_id_header=message_id,
                                 eml_path=relpath, recipients=mail.recipients, subject=header_text(mail.subject, 180),
                                 institutions=list(mail.institutions), as_of=mail.as_of, note=mail.note)  # fmt: skip
            current = fetch_occasion(conn, row.occasion)
        assert current is not None
        if not claimed:
            (self.ctx.data_dir / relpath).unlink(missing_ok=True)
            return Delivery.of(current, DeliveryOutcome.ALREADY)
        if row.eml_path and row.eml_path != relpath:
            (self.ctx.data_dir / row.eml_path).unlink(missing_ok=True)  # the superseded preview
        return self._send(current, data)

    def _resend(self, row: LedgerRow) -> Delivery:
        path = self.ctx.data_dir / row.eml_path
        try:
            data = path.read_bytes()
        except OSError as err:
            with self.ctx.db.begin() as conn:
                save_outcome(conn, row.id, status=DeliveryState.FAILED, error=f"发件箱文件丢失，无法按原样重发：{err}")
                current = fetch_occasion(conn, row.occasion)
            assert current is not None
            return Delivery.of(current, DeliveryState.FAILED)
        return self._send(row, data)

    def _send(self, row: LedgerRow, data: bytes) -> Delivery:
        status, error, failing = self._transmit(row.recipients, data)
        if status == DeliveryState.RETRY and row.attempts + 1 >= MAX_ATTEMPTS:
            status, error = DeliveryState.FAILED, f"{error}（已重试 {MAX_ATTEMPTS} 次）"
        with self.ctx.db.begin() as conn:
            save_outcome(
                conn, row.id, status=status, error=error, sent_at=self.clock if status == DeliveryState.SENT else None
            )
            for address, reason in failing.items():
                save_address_status(conn, address, AddressHealth.FAILING, error=reason, occasion=row.occasion)
            current = fetch_occasion(conn, row.occasion)
        assert current is not None
        if status != DeliveryState.SENT:
            log.warning("%s: %s %s", row.occasion, status, error)
        return Delivery.of(current, status)

    def _transmit(self, recipients: list[str], data: bytes) -> tuple[str, str, dict[str, str]]:
        """Hand one message to the server: (status, error, {refused address: reason} for 5xx refusals)."""
        if self._broken:
            return DeliveryState.RETRY, self._broken, {}
        try:
            smtp = self._connection()
        except (smtplib.SMTPException, OSError, ConfigError) as err:
            self._broken = f"无法连接或登录发信服务器：{_describe(err)}"
            return DeliveryState.RETRY, self._broken, {}
        try:
            refused = smtp.sendmail(self.config.smtp.from_address, recipients, data)
        except smtplib.SMTPRecipientsRefused as err:
            return _refusals(err.recipients, everyone=True)
        except smtplib.SMTPResponseException as err:
            if err.smtp_code == 421:
                self._drop()
            return (DeliveryState.RETRY if 400 <= err.smtp_code < 500 else DeliveryState.FAILED), _describe(err), {}
        except (smtplib.SMTPException, OSError) as err:
            self._drop()
            return DeliveryState.RETRY, f"连接中断：{_describe(err)}", {}
        if refused:
            _, error, failing = _refusals(refused, everyone=False)
            return DeliveryState.SENT, error, failing
        return DeliveryState.SENT, "", {}

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and getattr(self._smtp, "sock", None) is not None:
            return self._smtp
        self._smtp = connect_smtp(self.config)
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None


def connect_smtp(config: Config) -> smtplib.SMTP:
    """An authenticated SMTP session; TLS is always verified (system CAs or [smtp] ca_file)."""
    smtp_cfg = config.smtp
    context = ssl.create_default_context(cafile=str(smtp_cfg.ca_file) if smtp_cfg.ca_file else None)
    if smtp_cfg.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            smtp_cfg.host, smtp_cfg.port, timeout=SMTP_TIMEOUT_S, context=context
        )
    else:
        smtp = smtplib.SMTP(smtp_cfg.host, smtp_cfg.port, timeout=SMTP_TIMEOUT_S)
    try:
        smtp.ehlo()
        if smtp_cfg.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if smtp_cfg.username:
            if smtp_cfg.security == "plain" and smtp_cfg.host not in ("127.0.0.1", "::1", "localhost"):
                raise ConfigError("[smtp] security = plain：不在未加密的连接上发送密码")
            password = smtp_cfg.password.resolve("[smtp]")
            if not password.isascii():  # smtplib encodes AUTH as ASCII and would fail mid-login
                raise ConfigError("[smtp] 密码含非 ASCII 字符，smtplib 无法用于登录")
            smtp.login(smtp_cfg.username, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _refusals(refused: dict, *, everyone: bool) -> tuple[str, str, dict[str, str]]:
    codes = {addr: (code, _text(msg)) for addr, (code, msg) in refused.items()}
    error = "；".join(f"{addr}: {code} {msg}" for addr, (code, msg) in codes.items())
    failing = {addr.lower(): f"{code} {msg}" for addr, (code, msg) in codes.items() if code >= 500}
    if not everyone:
        return DeliveryState.SENT, f"部分收件人被拒：{error}", failing
    temporary = any(400 <= code < 500 for code, _ in codes.values())
    return (DeliveryState.RETRY if temporary else DeliveryState.FAILED), f"收件人被拒：{error}", failing


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(err: BaseException) -> str:
    if isinstance(err, smtplib.SMTPResponseException):
        return f"{err.smtp_code} {_text(err.smtp_error)}"
    return f"{type(err).__name__}: {err}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
