"""Parse on several parser processes at once; keep slow (OCR) messages from holding back cheap ones.

`processor(ctx, data)` is what `Ingestor` and `resume_pending` process with:

- No isolation (parsing in this process): `process.Overlapped`, one message ahead of recording.
- Otherwise `Pipelined`: the text lane's parser processes (`[limits] parse_workers`, or
  0 = one per core that is free when the run starts, less the OCR lane's) each keep one parse
  in flight, and the results are recorded in the order the messages came, so recording is
  the same as with one process.
- Messages that `slow` predicts to be expensive (their parts need OCR) are parsed on the
  OCR lane (the process-wide shared sandbox, which the console's reparse uses too, and up
  to one more per core, `[limits] ocr_workers`) and recorded whenever they are done, so a
  scanned report never delays the text reports queued behind it.  The guess reads only the
  MIME headers; a scan it cannot see (a PDF, a zip, a scan pasted into a .docx) is found by
  the parse itself: the text lane's processes load no OCR library and parse with
  `defer_ocr`, and a message that came back with OCR left undone is handed to the OCR lane
  instead of being recorded.  Recording them out of order is safe: attribution is a pure
  function of the message and the campaign data (it reads nothing recorded before), and
  status is computed from receipt times, not from recording order.

Every parser process is a `sandbox.ParseSandbox` with the same limits (time, memory cap,
no writes, no secrets).  On 2 idle cores: one text parser and up to two OCR parsers, each
OCR on one thread (`[limits] ocr_threads`): while there is text to parse it shares a core
with the OCR, and once it is done both cores read scans.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from parsers.types import ParsedMessage
from pipeline.campaign_data import CampaignData
from pipeline.config import Config
from pipeline.context import Context
from pipeline.inbound import sandbox
from pipeline.inbound.process import InFlight, Overlapped, ProcessResult, start_processing
from pipeline.inbound.sandbox import ParseHandle, ParseSandbox, SandboxFailure, begin_parse

log = logging.getLogger(__name__)

MAX_WORKERS = 4
# Parts whose text needs OCR: images (a photographed page).  Inline pictures of a signature match too:
# a wrong guess only moves a message to the other lane.  PDFs are not guessed: most have a text layer,
# and the text lane reads that in milliseconds; a scanned one comes back with OCR deferred.
_OCR_PART = re.compile(rb"^content-type:[ \t]*image/(?:jpeg|jpg|png|tiff|bmp|gif|webp|heic)", re.IGNORECASE | re.MULTILINE)

Outcome = tuple[ParsedMessage | None, str]


def ocr_available() -> bool:
    """Whether this installation can OCR (the formats branch's parsers/documents/ocr.py)."""
    try:
        import parsers.documents.ocr  # noqa: F401
    except ImportError:
        return False
    return True


def needs_ocr(raw: bytes) -> bool:
    """A cheap guess from the raw MIME headers: does this message carry parts only OCR can read?"""
    return _OCR_PART.search(raw) is not None


def _free_cores() -> int:
    """Cores not busy when the run starts (the load average says how many are)."""
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return int(cores - busy)


def worker_count(config: Config) -> int:
    """How many text-lane parser processes to run: `[limits] parse_workers`, or (0) one per core
    that is free, less one for the OCR lane, at least one."""
    if not config.isolate_parsing:
        return 1
    if config.parse_workers > 0:
        return min(config.parse_workers, MAX_WORKERS)
    return max(1, min(MAX_WORKERS, _free_cores() - 1))


def ocr_worker_count(config: Config) -> int:
    """How many OCR-lane parser processes may run: `[limits] ocr_workers`, or (0) one per core.
    Beyond the first they start only when scans queue up; while the text lane is busy they share
    its cores, and once it is done every core reads scans."""
    if config.ocr_workers > 0:
        return min(config.ocr_workers, MAX_WORKERS)
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def processor(ctx: Context, data: CampaignData) -> Overlapped | Pipelined:
    """The processor for this run (see the module docstring)."""
    config = ctx.config
    if not config.isolate_parsing:
        return Overlapped(ctx, data)
    slow = needs_ocr if ocr_available() else None
    lane = OcrLane(ocr_parsers(config, ocr_worker_count(config)))
    return Pipelined(ctx, data, parsers(config, worker_count(config)), slow=slow, slow_parse=lane.parse,
                     slow_workers=lane.size)  # fmt: skip


class Pipelined:
    """Like `process.Overlapped`, with one parse in flight per parser process and an OCR lane.

    `slow(raw)` chooses the messages that go to the OCR lane at once; `slow_parse(config, raw)`
    parses one there (by default on the shared sandbox), on one of `slow_workers` helper threads.
    A message the text lane's parse left OCR undone for goes there too.
    """

    def __init__(self, ctx: Context, data: CampaignData, sandboxes: list[ParseSandbox | None], *,
                 slow: Callable[[bytes], bool] | None = None,
                 slow_parse: Callable[[Config, bytes], Outcome] | None = None, slow_workers: int = 1) -> None:  # fmt: skip
        self.ctx = ctx
        self.data = data
        self.results: list[ProcessResult] = []
        self._free: list[ParseSandbox | None] = list(sandboxes)
        self._inflight: deque[tuple[InFlight, ParseSandbox | None]] = deque()
        self._slow = slow
        self._slow_parse = slow_parse or _parse_on_slow_sandbox
        self._slow_workers = max(1, slow_workers)
        self._slow_pool: ThreadPoolExecutor | None = None
        self._slow_inflight: deque[tuple[InFlight, _FutureHandle | None]] = deque()

    def push(self, message_id: int, *, raw: bytes | None = None) -> None:
        self._record_slow(wait=False)
        if raw is not None and self._slow is not None and self._slow(raw):
            self._push_slow(message_id, raw)
            return
        oldest: tuple[InFlight, ParseSandbox | None] | None = None
        outcome: Outcome | None = None
        if not self._free:
            oldest = self._inflight.popleft()
            outcome = oldest[0].collect()  # frees its parser process for the next message
            self._free.append(oldest[1])
        box = self._free.pop(0)
        try:
            flight = start_processing(self.ctx, self.data, message_id, raw=raw, parse=_on(box, defer_ocr=True))
        except BaseException:
            self._free.append(box)
            raise
        else:
            self._inflight.append((flight, box))
        finally:  # recorded even when the next one cannot start
            if oldest is not None and outcome is not None:
                self._record(oldest[0], outcome)

    def _record(self, flight: InFlight, outcome: Outcome) -> None:
        parsed = outcome[0]
        if parsed is not None and parsed.ocr_deferred:
            self._reroute_slow(flight)
        else:
            self.results.append(flight.record(outcome))

    def close(self) -> None:
        """Finish every message in flight.  When recording fails (disk full), the rest are still
        collected, so no parser process is left holding an answer; their rows stay pending and the
        next run resumes them.  The first error is raised at the end."""
        error: BaseException | None = None
        while self._inflight:
            flight, box = self._inflight.popleft()
            try:
                if error is None:
                    self._record(flight, flight.collect())
                else:
                    flight.collect()
            except BaseException as err:  # noqa: BLE001 - kept and raised once every parse is collected
                error = error or err
            finally:
                self._free.append(box)
        try:
            self._record_slow(wait=True, collect_only=error is not None)
        finally:
            if self._slow_pool is not None:
                self._slow_pool.shutdown(wait=True)
        if error is not None:
            raise error

    def __enter__(self) -> Pipelined:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the slow lane

    def _slow_executor(self) -> ThreadPoolExecutor:
        if self._slow_pool is None:
            self._slow_pool = ThreadPoolExecutor(max_workers=self._slow_workers, thread_name_prefix="intake-slow-parse")
        return self._slow_pool

    def _reroute_slow(self, flight: InFlight) -> None:
        """A message whose parse left OCR undone: parsed again on the OCR lane (same row, same attempt)."""
        row = flight.row
        raw = self.ctx.raw.get(row.raw_path, row.sha256)
        handle = _FutureHandle(self._slow_executor().submit(self._slow_parse, self.ctx.config, raw))
        self._slow_inflight.append((InFlight(self.ctx, self.data, row, handle, ""), handle))  # type: ignore[arg-type]

    def _push_slow(self, message_id: int, raw: bytes) -> None:
        pool, slow_parse = self._slow_executor(), self._slow_parse

        started: list[_FutureHandle] = []

        def begin(config: Config, raw: bytes) -> _FutureHandle:
            started.append(_FutureHandle(pool.submit(slow_parse, config, raw)))
            return started[0]

        # Started like any other message (row loaded, limits checked before the work); only the
        # parse runs on the slow lane's thread.  No handle: refused before parsing (recorded at once).
        flight = start_processing(self.ctx, self.data, message_id, raw=raw, parse=begin)  # type: ignore[arg-type]
        self._slow_inflight.append((flight, started[0] if started else None))

    def _record_slow(self, *, wait: bool, collect_only: bool = False) -> None:
        """Record the slow-lane messages whose parse is done (all of them with `wait`)."""
        while self._slow_inflight:
            flight, handle = self._slow_inflight[0]
            if not (wait or handle is None or handle.done()):
                return
            self._slow_inflight.popleft()
            if collect_only:  # an earlier error stops the run: its row stays pending, resumed next time
                flight.collect()
            else:
                self.results.append(flight.finish())


class _FutureHandle:
    """A slow-lane parse under way on a helper thread; quacks like `sandbox.ParseHandle` for `InFlight`."""

    def __init__(self, future: Future[Outcome]) -> None:
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> Outcome:
        try:
            return self._future.result()
        except Exception as err:  # noqa: BLE001 - the row says why
            return None, f"解析失败：{type(err).__name__}: {err}"


def _on(box: ParseSandbox | None, *, defer_ocr: bool = False) -> Callable[[Config, bytes], ParseHandle]:
    """Begin a parse on this parser process (None: as `begin_parse` decides, e.g. in-process);
    `defer_ocr`: leave OCR to the OCR lane (a text-lane process does so whatever it is told)."""
    if box is None:
        return begin_parse

    def begin(config: Config, raw: bytes) -> ParseHandle:
        limits = replace(config.limits, defer_ocr=True) if defer_ocr else config.limits
        try:
            return ParseHandle(box, raw, limits, box.submit(raw, limits))
        except SandboxFailure as err:
            return ParseHandle(box, raw, limits, None, failed=str(err))

    return begin


# -- the parser processes -------------------------------------------------------------------------

_text_lane: list[ParseSandbox] = []
_ocr_lane: list[ParseSandbox] = []  # the OCR lane's processes after the shared sandbox
_lock = threading.Lock()


def parsers(config: Config, count: int) -> list[ParseSandbox | None]:
    """`count` text-lane parser processes for this config (no OCR libraries; started on first use)."""
    if not config.isolate_parsing:
        return [None]
    with _lock:
        while len(_text_lane) < count:
            _text_lane.append(ParseSandbox(timeout_s=config.parse_timeout_s, memory_mb=config.parse_memory_mb, ocr=False))
        for box in _text_lane:
            _configure(box, config)
        return list(_text_lane[:count])


def ocr_parsers(config: Config, count: int) -> list[ParseSandbox]:
    """`count` OCR-lane parser processes: the shared sandbox and `count - 1` more (started on first use)."""
    # Looked up on the module at call time, as begin_parse does (one seam for tests and operators).
    threads = config.limits.ocr_threads
    first = sandbox.shared_sandbox(timeout_s=config.parse_timeout_s, memory_mb=config.parse_memory_mb,
                                   ocr_threads=threads)  # fmt: skip
    with _lock:
        while len(_ocr_lane) < count - 1:
            _ocr_lane.append(ParseSandbox(timeout_s=config.parse_timeout_s, memory_mb=config.parse_memory_mb,
                                          ocr_threads=threads))  # fmt: skip
        for box in _ocr_lane:
            _configure(box, config)
        return [first, *_ocr_lane[: count - 1]]


class OcrLane:
    """The OCR lane's parser processes; `parse` runs on the first free one in `boxes` order, so a later
    process is started (and holds its memory) only while the earlier ones are all busy."""

    def __init__(self, boxes: list[ParseSandbox]) -> None:
        self.size = len(boxes)
        self._free: queue.LifoQueue[ParseSandbox] = queue.LifoQueue()
        for box in reversed(boxes):  # the first on top; a box handed back goes on top again
            self._free.put(box)

    def parse(self, config: Config, raw: bytes) -> Outcome:
        box = self._free.get()  # never waits: the lane has as many threads as processes
        try:
            return _on(box)(config, raw).result()
        finally:
            self._free.put(box)


def _configure(box: ParseSandbox, config: Config) -> None:
    box.configure(timeout_s=config.parse_timeout_s, memory_mb=config.parse_memory_mb,
                  ocr_threads=config.limits.ocr_threads)  # fmt: skip


def _parse_on_slow_sandbox(config: Config, raw: bytes) -> Outcome:
    """A parse on the OCR lane: the shared sandbox (looked up at call time, one seam for tests)."""
    return sandbox.begin_parse(config, raw).result()


@atexit.register
def _close_all() -> None:
    for box in [*_text_lane, *_ocr_lane]:
        box.close()
