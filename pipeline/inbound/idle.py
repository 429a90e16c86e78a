"""Wake the poll the moment mail arrives: IMAP IDLE (RFC 2177) on the first configured folder.

`IdleWatcher` holds one read-only connection of its own in IDLE.  When the server says
EXISTS (new mail), the watcher ends the IDLE and calls `on_mail()`; the worker then runs
its ordinary poll at once (`poll_once`, the same pass the schedule runs, with its
checkpoint and group commit), so nothing about storing mail changes, only when it starts.
The watcher never fetches or stores anything itself.

- The IDLE is renewed every `renew_s` (default 25 min), before the server may drop it
  (RFC 2177: clients must re-issue IDLE at least every 29 minutes).
- Every IDLE is preceded by a NOOP: mail that came while the watcher was out of IDLE (its
  wake-up, a renewal) would otherwise be reported only when the next IDLE ends.
- A server that does not advertise IDLE: the watcher logs it and stops; the scheduled
  poll carries on alone.  The scheduled poll also stays the safety net for anything the
  watcher misses (other folders, a dropped connection).
- A lost connection or a login refusal is retried with exponential backoff; after
  reconnecting, `on_mail()` is called once, since mail may have arrived meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from imapclient import IMAPClient

from pipeline.config import Mailbox
from pipeline.inbound.imap import _connect
from pipeline.logfmt import logfmt

log = logging.getLogger(__name__)

RENEW_S = 25 * 60.0  # re-IDLE before RFC 2177's 29 minutes
CHECK_S = 1.0  # longest wait for a server response between checks of the stop flag
BACKOFF_START_S = 2.0
BACKOFF_MAX_S = 300.0


class IdleWatcher:
    """Runs in a thread (`start()`); calls `on_mail()` whenever the folder gets new mail."""

    def __init__(self, cfg: Mailbox, on_mail: Callable[[], None], stop: threading.Event, *,
                 renew_s: float = RENEW_S, check_s: float = CHECK_S) -> None:  # fmt: skip
        self.cfg = cfg
        self.folder = cfg.folders[0] if cfg.folders else "INBOX"
        self.on_mail = on_mail
        self.stop = stop
        self.renew_s = renew_s
        self.check_s = check_s
        self.supported: bool | None = None  # None until the server has said whether it can IDLE
        self.watching = threading.Event()  # set while an IDLE is in progress (tests wait for it)
        self.wakeups = 0
        self.renewals = 0
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="intake-imap-idle", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        delay, connected_before = BACKOFF_START_S, False
        while not self.stop.is_set():
            try:
                password = self.cfg.password.resolve("[mailbox] 邮箱密码")
                with _connect(self.cfg, password) as client:
                    if not client.has_capability("IDLE"):
                        self.supported = False
                        log.info(logfmt("imap_idle_unsupported", host=self.cfg.host, fallback="scheduled poll"))
                        return
                    self.supported = True
                    client.select_folder(self.folder, readonly=True)
                    log.info(logfmt("imap_idle_start", folder=self.folder, renew_s=self.renew_s))
                    if connected_before:
                        self._wake()  # mail may have arrived while the connection was down
                    connected_before = True
                    delay = BACKOFF_START_S
                    self._watch(client)
            except Exception as err:  # noqa: BLE001 - the watcher must outlive any error; the poll is the safety net
                self.watching.clear()
                log.warning(logfmt("imap_idle_error", error=f"{type(err).__name__}: {err}", retry_s=delay))
                if self.stop.wait(delay):
                    return
                delay = min(delay * 2, BACKOFF_MAX_S)
        self.watching.clear()

    def _watch(self, client: IMAPClient) -> None:
        while not self.stop.is_set():
            # Mail that came while we were out of IDLE (waking the poll, renewing) is not news to an
            # IDLE started after it: Dovecot reports it only when that IDLE ends, up to renew_s later.
            # A NOOP makes the server say it now; what comes between it and the IDLE is a round trip.
            _text, pending = client.noop()
            if _has_new_mail(pending):
                self._wake()
                continue
            client.idle()
            self.watching.set()
            started, arrived = time.monotonic(), False
            try:
                while not self.stop.is_set() and time.monotonic() - started < self.renew_s:
                    responses = client.idle_check(timeout=self.check_s)
                    if _has_new_mail(responses):
                        arrived = True
                        break
            finally:
                self.watching.clear()
                _text, late = client.idle_done()  # responses that came after the last check
            arrived = arrived or _has_new_mail(late)
            if arrived:
                self._wake()
            elif not self.stop.is_set():
                self.renewals += 1

    def _wake(self) -> None:
        self.wakeups += 1
        try:
            self.on_mail()
        except Exception:  # noqa: BLE001 - a failing callback must not end the watcher
            log.exception(logfmt("imap_idle_wake_failed"))


def _has_new_mail(responses: list) -> bool:
    """Whether untagged responses include `* n EXISTS` (RFC 3501: the message count changed)."""
    return any(isinstance(r, tuple) and len(r) > 1 and r[1] == b"EXISTS" for r in responses)
