"""Bring new mail in from the IMAP mailbox: incremental, read-only, nothing lost, nothing duplicated.

Order per batch (ledger first, act after commit): FETCH sizes → FETCH
BODY.PEEK[] (never sets \\Seen) → the batch's raw bytes fsync'd and its rows committed
in one transaction (group commit, inbound/group.py) → the folder's checkpoint (UIDVALIDITY, last_uid) advances in one transaction →
only then, when configured, a keyword flag on the server.  Nothing is ever
expunged.  A message that cannot be fetched, or is larger than
`max_message_bytes`, becomes an `imap_failures` row (retried on later polls,
shown by `intake poll`), so the batch goes on without it and it is never lost
silently.  Connection errors and timeouts are retried with exponential backoff,
resuming from the checkpoint; content dedup (SHA-256) makes re-fetching safe.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from filelock import FileLock, Timeout
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientAbortError, IMAPClientError, LoginError

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.config import Mailbox
from pipeline.context import Context
from pipeline.errors import ConfigError, MailboxError, WorkerLockedError
from pipeline.inbound.ingest import Ingestor, resume_pending
from pipeline.logfmt import logfmt
from pipeline.outputs.history import record_status_changes, statuses_may_have_moved
from pipeline.process_guard import is_loopback
from storage import imapstate as state

log = logging.getLogger(__name__)

RETRY_ATTEMPTS = 4  # connections per poll before giving up
MAX_POISONED = 20  # messages per poll whose FETCH drops the connection, before giving up
BACKOFF_START_S = 2.0
BACKOFF_MAX_S = 60.0
MAX_FAILURE_ATTEMPTS = 5  # a failed UID is retried on this many polls, then left for a person
MAX_ROUNDS = 3  # re-SEARCH a folder for mail that arrived during this poll
BATCH_MAX_BYTES = 64 * 1024 * 1024  # keep one FETCH's bodies within a bounded amount of memory

STATE_LAST_POLL = "imap.last_poll_at"
STATE_LAST_SUCCESS = "imap.last_success_at"
STATE_LAST_ERROR = "imap.last_error"
STATE_LAST_SUMMARY = "imap.last_summary"

# Errors after which the connection is gone; everything else is a per-command or per-message problem.
_CONNECTION_ERRORS = (OSError, IMAPClientAbortError)


@dataclass
class FolderSummary:
    folder: str
    uidvalidity: int | None = None
    new: int = 0
    duplicates: int = 0
    failed: int = 0  # fetch or store failed: recorded in imap_failures
    oversize: int = 0  # larger than max_message_bytes: recorded in imap_failures, not fetched
    recovered: int = 0  # earlier failures stored this time
    rescanned: bool = False  # first sync or UIDVALIDITY changed
    last_uid: int = 0
    error: str = ""  # the folder could not be opened
    done: bool = False
    suspects: set[int] = field(default_factory=set, repr=False)  # in flight when a connection dropped
    poisoned: set[int] = field(default_factory=set, repr=False)  # their FETCH drops the connection: skipped

    def counts(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k not in ("suspects", "poisoned")}


@dataclass
class PollSummary:
    folders: list[FolderSummary]
    started_at: datetime
    finished_at: datetime | None = None
    reconnects: int = 0
    interrupted: bool = False  # stopped early on shutdown; resumes from the checkpoint
    status_changes: int = 0  # status changes recorded after the pass

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(f.done and not f.error for f in self.folders)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.folders)


class _Poisoned(Exception):  # noqa: N818 - internal signal, never leaves this module
    """The connection dropped again while fetching this one UID (Dovecot says BYE on a FETCH it cannot serve)."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    raw: bytes | None
    size: int | None
    internaldate: datetime | None


def poll_once(ctx: Context, *, stop: threading.Event | None = None) -> PollSummary:
    """One pass over every configured folder, then the status changes its mail caused are recorded.

    One of the two entry functions of the inbound stage (the other is `inbound.ingest.ingest_paths`).
    Raises MailboxError when the server stays unreachable.
    """
    cfg = ctx.config.mailbox
    stop = stop or threading.Event()
    password = cfg.password.resolve("[mailbox] 邮箱密码")
    with _poll_lock(ctx):
        data = load_campaign_data(ctx)
        resumed = resume_pending(ctx, data)
        summary = PollSummary(folders=[FolderSummary(f) for f in cfg.folders], started_at=datetime.now(UTC))
        _save_states(ctx, {STATE_LAST_POLL: summary.started_at.isoformat()})
        error = ""
        try:
            _poll_with_retries(ctx, data, cfg, password, summary, stop)
        except Exception as err:
            error = str(err) if isinstance(err, MailboxError) else f"{type(err).__name__}: {err}"
            raise
        finally:
            summary.interrupted = stop.is_set() and not all(f.done for f in summary.folders)
            try:
                _finish(ctx, summary, error=error)
            except Exception:  # noqa: BLE001 - keep the original error; this one is only bookkeeping
                log.exception(logfmt("poll_state_not_saved"))
    now = datetime.now(UTC)
    if resumed or summary.total("new") or statuses_may_have_moved(ctx, now):
        summary.status_changes = record_status_changes(ctx, now, cause="poll", roster=data.roster)
    return summary


def _poll_with_retries(
    ctx: Context, data: CampaignData, cfg: Mailbox, password: str, summary: PollSummary, stop: threading.Event
) -> None:
    delay, attempt = BACKOFF_START_S, 0
    while True:
        try:
            with _connect(cfg, password) as client:
                for fs in summary.folders:
                    if stop.is_set():
                        return
                    if not fs.done:
                        _sync_folder(ctx, data, client, fs, stop)
            return
        except _Poisoned as err:
            # Progress, not an outage: that UID is now a failure row and skipped.  Reconnect at once.
            summary.reconnects += 1
            if sum(len(f.poisoned) for f in summary.folders) >= MAX_POISONED:
                raise MailboxError(f"{_where(cfg)} 在取回多封邮件时断开连接，本次收取中止") from err
        except _CONNECTION_ERRORS as err:
            attempt += 1
            if attempt == RETRY_ATTEMPTS:
                raise MailboxError(f"{_where(cfg)} 连接失败（已尝试 {attempt} 次）：{err!r}") from err
            summary.reconnects += 1
            log.warning(logfmt("imap_retry", attempt=attempt, delay_s=delay, error=repr(err)))
            if stop.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX_S)


@contextmanager
def _poll_lock(ctx: Context) -> Iterator[None]:
    """One poll per data dir at a time (a manual `intake poll` beside the worker waits its turn)."""
    lock = FileLock(ctx.data_dir / "poll.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout as err:
        raise WorkerLockedError(f"另一个进程正在收取此数据目录的邮件（{lock.lock_file}）。") from err
    try:
        yield
    finally:
        lock.release()


def _save_states(ctx: Context, values: dict[str, str]) -> None:
    with ctx.db.begin() as conn:
        for key, value in values.items():
            state.save_state(conn, key, value)


def _finish(ctx: Context, summary: PollSummary, *, error: str = "") -> None:
    summary.finished_at = datetime.now(UTC)
    errors = [error] if error else [f"{f.folder}: {f.error}" for f in summary.folders if f.error]
    values = {
        STATE_LAST_ERROR: "; ".join(errors),
        STATE_LAST_SUMMARY: json.dumps(
            [f.counts() for f in summary.folders] + [{"reconnects": summary.reconnects}], ensure_ascii=False
        ),
    }
    if summary.ok and not error:
        values[STATE_LAST_SUCCESS] = summary.finished_at.isoformat()
    _save_states(ctx, values)
    log.info(logfmt(
        "poll_done", ok=summary.ok and not error, new=summary.total("new"), duplicates=summary.total("duplicates"),
        failed=summary.total("failed"), oversize=summary.total("oversize"), reconnects=summary.reconnects,
        interrupted=summary.interrupted, seconds=f"{(summary.finished_at - summary.started_at).total_seconds():.3f}",
        error=errors[0] if errors else "",
    ))  # fmt: skip


def _where(cfg: Mailbox) -> str:
    return f"IMAP 服务器 {cfg.host}:{cfg.port}"


def ssl_context(cfg: Mailbox) -> ssl.SSLContext:
    """Certificate and host name verification on; `ca_file` replaces the system CAs when set."""
    if cfg.ca_file is not None and not cfg.ca_file.is_file():
        raise ConfigError(f"[mailbox] ca_file：找不到证书文件 {cfg.ca_file}")
    return ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)


@contextmanager
def _connect(cfg: Mailbox, password: str) -> Iterator[IMAPClient]:
    """Connect (TLS / STARTTLS / plain), always with a socket timeout, log in, send ID."""
    if cfg.timeout_s <= 0:
        raise ConfigError("[mailbox] timeout_s（超时秒数）必须大于 0")
    if cfg.security == "plain" and not is_loopback(cfg.host):
        raise ConfigError(f"[mailbox] security = plain 只能用于本机邮箱服务器，{cfg.host} 不是：不在未加密的连接上发送密码")
    context = ssl_context(cfg) if cfg.security != "plain" else None
    with _tls_errors(cfg):
        client = IMAPClient(
            cfg.host, port=cfg.port, ssl=cfg.security == "tls", ssl_context=context, timeout=cfg.timeout_s
        )
    try:
        if cfg.security == "starttls":
            with _tls_errors(cfg):
                client.starttls(context)
        client.normalise_times = False  # INTERNALDATE as aware datetimes, not naive local time
        try:
            client.login(cfg.username, password)
        except LoginError as err:
            raise MailboxError(f"{_where(cfg)} 拒绝登录（用户 {cfg.username}）：{err}") from err
        if cfg.imap_id:
            try:
                client.id_(cfg.imap_id)
            except CapabilityError:
                log.info(logfmt("imap_no_id", host=cfg.host))
            except IMAPClientAbortError:
                raise
            except IMAPClientError as err:
                log.warning(logfmt("imap_id_refused", host=cfg.host, error=str(err)))
        yield client
    finally:
        _close(client)


@contextmanager
def _tls_errors(cfg: Mailbox) -> Iterator[None]:
    """Certificate problems are configuration problems: no retry, a message that says what to check."""
    try:
        yield
    except ssl.SSLCertVerificationError as err:
        raise MailboxError(
            f"{_where(cfg)} 的 TLS 证书验证失败：{err.verify_message}。"
            "请检查 [mailbox] ca_file 与 host 是否正确。"
        ) from err
    except CapabilityError as err:
        raise MailboxError(f"{_where(cfg)} 不支持 STARTTLS，拒绝以明文登录：{err}") from err


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone; nothing left to save
        with suppress(Exception):
            client.shutdown()


def _sync_folder(ctx: Context, data: CampaignData, client: IMAPClient, fs: FolderSummary, stop: threading.Event) -> None:
    cfg = ctx.config.mailbox
    try:
        info = client.select_folder(fs.folder, readonly=not cfg.mark_keyword)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as err:
        fs.error = f"无法打开文件夹：{err}"
        fs.done = True
        log.error(logfmt("imap_select_failed", folder=fs.folder, error=str(err)))
        return
    raw_validity = info.get(b"UIDVALIDITY")
    uidvalidity = int(raw_validity) if isinstance(raw_validity, int) else None
    if uidvalidity is None:
        log.warning(logfmt("imap_no_uidvalidity", folder=fs.folder, note="relying on content hash"))
    fs.uidvalidity = uidvalidity
    with ctx.db.connect() as conn:
        checkpoint = state.fetch_checkpoint(conn, fs.folder)
    if checkpoint is None or checkpoint.uidvalidity != uidvalidity:
        if checkpoint is not None:
            log.warning(logfmt("imap_uidvalidity_changed", folder=fs.folder, old=checkpoint.uidvalidity,
                               new=uidvalidity, action="rescan"))  # fmt: skip
        with ctx.db.begin() as conn:
            state.save_checkpoint(conn, fs.folder, uidvalidity, 0)
            state.supersede_failures(conn, fs.folder, uidvalidity)
        fs.rescanned = True
        last_uid = 0
    else:
        last_uid = checkpoint.last_uid

    with ctx.db.connect() as conn:
        limit = ctx.config.max_message_bytes
        retry = state.fetch_retryable_failures(
            conn, fs.folder, uidvalidity, max_attempts=MAX_FAILURE_ATTEMPTS, max_size=limit
        )
    if retry:
        fs.suspects.update(f.uid for f in retry)  # failed before: one drop is enough to skip them this time
        stored = _process(ctx, data, client, fs, [f.uid for f in retry])
        fs.recovered += len(stored)
        with ctx.db.begin() as conn:
            state.resolve_failures(conn, fs.folder, uidvalidity, stored)

    for _round in range(MAX_ROUNDS):
        # `UID SEARCH UID n:*` always matches the highest UID, even when it is below n: filter.
        uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
        if not uids:
            break
        for start in range(0, len(uids), max(cfg.batch_size, 1)):
            if stop.is_set():
                fs.last_uid = last_uid
                return
            batch = uids[start : start + max(cfg.batch_size, 1)]
            stored = _process(ctx, data, client, fs, batch)
            with ctx.db.begin() as conn:
                state.advance_checkpoint(conn, fs.folder, uidvalidity, batch[-1])
                state.resolve_failures(conn, fs.folder, uidvalidity, stored)
            last_uid = batch[-1]
            if cfg.mark_keyword and stored:
                _mark(client, fs.folder, stored, cfg.mark_keyword)
    fs.last_uid = last_uid
    fs.done = True
    log.info(logfmt("imap_folder", folder=fs.folder, uidvalidity=uidvalidity, rescanned=fs.rescanned,
                    new=fs.new, duplicates=fs.duplicates, failed=fs.failed, oversize=fs.oversize,
                    recovered=fs.recovered, last_uid=last_uid))  # fmt: skip


def _process(ctx: Context, data: CampaignData, client: IMAPClient, fs: FolderSummary, uids: list[int]) -> list[int]:
    """Fetch and store these UIDs; each ends stored or as a failure row.  Returns the stored UIDs.

    When the connection drops, the UIDs in flight become suspects; on the next
    connection they are fetched one by one, and one that drops it again is
    recorded and skipped, so a single poisonous message cannot block a folder.
    """
    uids = [u for u in uids if u not in fs.poisoned]
    if len(uids) > 1 and fs.suspects.intersection(uids):
        return [u for uid in uids for u in _process(ctx, data, client, fs, [uid])]
    try:
        return _store(ctx, data, client, fs, uids)
    except _CONNECTION_ERRORS as err:
        if len(uids) == 1 and uids[0] in fs.suspects:
            fs.poisoned.add(uids[0])
            fs.failed += 1
            _record(ctx, fs, uids[0], None, f"取回这封邮件时服务器断开了连接：{err}")
            raise _Poisoned(uids[0]) from err
        fs.suspects.update(uids)
        raise


def _store(ctx: Context, data: CampaignData, client: IMAPClient, fs: FolderSummary, uids: list[int]) -> list[int]:
    limit = ctx.config.max_message_bytes
    stored: list[int] = []
    meta = _fetch(client, uids, ["RFC822.SIZE", "INTERNALDATE"])
    wanted: list[int] = []
    for uid in uids:
        size = meta[uid].size if uid in meta else None
        if size is not None and size > limit:
            fs.oversize += 1
            _record(ctx, fs, uid, size, f"邮件 {size:,} 字节，超过上限 max_message_bytes = {limit:,}，未下载")
        else:
            wanted.append(uid)
    for group in _groups(wanted, meta):
        bodies = _fetch(client, group, ["BODY.PEEK[]", "INTERNALDATE"])
        # The group is stored as one batch (group commit): durable when the Ingestor closes, before
        # the caller advances the checkpoint; each message is parsed while the next is recorded.
        with Ingestor(ctx, data, batch_size=len(group) or 1) as ingestor:
            _queue_group(ctx, fs, ingestor, group, bodies, meta)
        stored += _tally(ctx, fs, ingestor)
    return stored


def _queue_group(ctx: Context, fs: FolderSummary, ingestor: Ingestor, group: list[int],
                 bodies: dict[int, _Fetched], meta: dict[int, _Fetched]) -> None:  # fmt: skip
    limit = ctx.config.max_message_bytes
    for uid in group:
        got = bodies.get(uid)
        if got is None or got.raw is None:
            fs.failed += 1
            _record(ctx, fs, uid, meta[uid].size if uid in meta else None, "服务器未返回这封邮件的内容")
            continue
        if len(got.raw) > limit:
            fs.oversize += 1
            _record(ctx, fs, uid, len(got.raw), f"邮件 {len(got.raw):,} 字节，超过上限 {limit:,}")
            continue
        received = got.internaldate or (meta[uid].internaldate if uid in meta else None)
        ref = f"{fs.folder}/{fs.uidvalidity if fs.uidvalidity is not None else '-'}/{uid}"
        ingestor.add(got.raw, source="imap", ref=ref, received_at=received, key=uid)


def _tally(ctx: Context, fs: FolderSummary, ingestor: Ingestor) -> list[int]:
    """Count what the batch stored; a message the database refused becomes a failure row (the batch goes on)."""
    stored: list[int] = []
    for result in ingestor.stored:
        uid = result.key  # the UID given to add()
        assert isinstance(uid, int)
        if result.error:
            fs.failed += 1
            _record(ctx, fs, uid, None, f"入库失败：{result.error}")
            continue
        if result.created:
            fs.new += 1
        else:
            fs.duplicates += 1
        stored.append(uid)
    return stored


def _groups(uids: list[int], meta: dict[int, _Fetched]) -> Iterator[list[int]]:
    group: list[int] = []
    total = 0
    for uid in uids:
        size = (meta[uid].size if uid in meta else None) or 0
        if group and total + size > BATCH_MAX_BYTES:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


def _fetch(client: IMAPClient, uids: list[int], items: list[str]) -> dict[int, _Fetched]:
    """FETCH for a batch; when the server refuses the batch, fetch one by one (a bad UID then fails alone)."""
    if not uids:
        return {}
    try:
        return _read_fetch(client.fetch(uids, items), uids)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as err:
        if len(uids) == 1:
            log.warning(logfmt("imap_fetch_failed", uid=uids[0], error=str(err)))
            return {}
        log.warning(logfmt("imap_batch_fetch_failed", uids=f"{uids[0]}-{uids[-1]}", error=str(err)))
    found: dict[int, _Fetched] = {}
    for uid in uids:
        found.update(_fetch(client, [uid], items))
    return found


def _read_fetch(response: dict, uids: list[int]) -> dict[int, _Fetched]:
    """Keep only the requested UIDs and the fields we understand; partial entries read as missing."""
    found: dict[int, _Fetched] = {}
    for uid in uids:
        data = response.get(uid)
        if not isinstance(data, dict):
            continue
        raw = data.get(b"BODY[]")
        if raw is None:
            raw = next((v for k, v in data.items() if isinstance(k, bytes) and k != b"RFC822.SIZE"
                        and k.startswith((b"BODY[]", b"RFC822"))), None)  # fmt: skip
        size = data.get(b"RFC822.SIZE")
        when = data.get(b"INTERNALDATE")
        found[uid] = _Fetched(
            raw=raw if isinstance(raw, bytes) else None,
            size=size if isinstance(size, int) else None,
            internaldate=_aware(when) if isinstance(when, datetime) else None,
        )
    return found


def _aware(moment: datetime) -> datetime:
    # With normalise_times=False imapclient keeps the server's offset; a naive value would be a server bug.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _record(ctx: Context, fs: FolderSummary, uid: int, size: int | None, reason: str) -> None:
    with ctx.db.begin() as conn:
        attempts = state.save_failure(conn, fs.folder, fs.uidvalidity, uid, size=size, reason=reason)
    log.warning(logfmt("imap_failure", folder=fs.folder, uid=uid, size=size, attempts=attempts, why=reason))


def _mark(client: IMAPClient, folder: str, uids: list[int], keyword: str) -> None:
    """Flag stored messages (opt-in).  Only a keyword is added: never \\Seen, never \\Deleted."""
    try:
        client.add_flags(uids, [keyword], silent=True)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as err:
        log.warning(logfmt("imap_mark_failed", folder=folder, keyword=keyword, error=str(err)))
