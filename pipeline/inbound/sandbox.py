"""Parse messages in a worker process that can be stopped: a parser that hangs or eats memory is killed.

One persistent child process (`python -c "import pipeline.inbound.sandbox ..."`) runs
`parse_message` for every message of this process, so the cost per message is
a JSON round trip over a pipe, not a process start.  Answers are JSON of plain values
rebuilt field by field (`parsers.plain`): no pickle, so a compromised child cannot name
a class or a callable in this process.  When started as root the child drops to
`nobody` (`SANDBOX_USER`) once its modules are loaded (an OCR-capable child also builds its OCR
engine then; a text-lane child, `ocr=False`, loads no OCR library and defers every OCR), so it
cannot read the data dir.  The child runs with an address-space
limit (`[limits] parse_memory_mb`), no core dumps, no file writes (RLIMIT_FSIZE 0),
no secrets in its environment and its stdout/stderr pointed at /dev/null (mail text
never reaches a log).  The parent waits at most `[limits] parse_timeout_s` for an
answer; on a timeout it kills the child, and a child that crashed or ran out of
memory is replaced on the next request.

When the whole parse is stopped, the message is parsed once more with its
attachments listed but not read (they are almost always the culprit), so the
clerk still sees sender, subject and body, and the attachments carry the reason.
Only if that fails too is the message recorded as failed.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from parsers import plain
from parsers.types import DEFAULT_LIMITS, ParsedMessage, ParseLimits, Problem, ProblemCode

log = logging.getLogger(__name__)

MARKER = "intake-parse-sandbox"  # in the child's argv, so tests and operators can find it
STARTUP_TIMEOUT_S = 60.0
_FRAME = struct.Struct("<Q")
_ROOT = Path(__file__).resolve().parents[2]  # the project root (pipeline/inbound/sandbox.py)
_CHILD_CODE = "import pipeline.inbound.sandbox as s; s.serve()"
# What the child's environment keeps: never the mailbox or SMTP passwords.
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "VIRTUAL_ENV", "PYTHONHASHSEED")
SANDBOX_USER = "nobody"  # who the child runs as when the parent is root
_OCR_ENV = "INTAKE_SANDBOX_OCR"  # the OCR engine's threads; "-1": a text-lane child (ParseSandbox(ocr=False))


class SandboxFailure(Exception):
    """Raised by `ParseSandbox` when the child was stopped or died; the message is the clerk-facing reason."""


def parse_stoppable(config: Any, raw: bytes) -> tuple[ParsedMessage | None, str]:  # noqa: ANN401 - pipeline.config.Config
    """Parse `raw` as `config` says ([limits] isolate_parsing); returns (parsed, "") or (None, reason)."""
    return begin_parse(config, raw).result()


def begin_parse(config: Any, raw: bytes) -> ParseHandle:  # noqa: ANN401 - pipeline.config.Config
    """Start parsing `raw` and return at once; `.result()` waits for (parsed, "") or (None, reason).

    With isolation the child parses while the caller does other work (e.g. stores the next
    message): the process's two halves use both cores.  Until `.result()` is called the
    sandbox takes no other request, so every handle must be collected.
    """
    limits: ParseLimits = config.limits
    if not config.isolate_parsing:
        from parsers.message import parse_message

        return ParseHandle(None, raw, limits, None, done=(parse_message(raw, limits=limits), ""))
    sandbox = shared_sandbox(timeout_s=config.parse_timeout_s, memory_mb=config.parse_memory_mb,
                             ocr_threads=limits.ocr_threads)  # fmt: skip
    try:
        return ParseHandle(sandbox, raw, limits, sandbox.submit(raw, limits))
    except SandboxFailure as err:
        return ParseHandle(sandbox, raw, limits, None, failed=str(err))


class ParseHandle:
    """A parse under way (or already done); `result()` may be called once."""

    def __init__(self, sandbox: ParseSandbox | None, raw: bytes, limits: ParseLimits, pending: _Pending | None,
                 *, done: tuple[ParsedMessage | None, str] | None = None, failed: str = "") -> None:  # fmt: skip
        self._sandbox = sandbox
        self._raw = raw
        self._limits = limits
        self._pending = pending
        self._done = done
        self._failed = failed

    def result(self) -> tuple[ParsedMessage | None, str]:
        if self._done is not None:
            return self._done
        reason = self._failed
        if self._pending is not None:
            try:
                self._done = (self._pending.result(), "")
                return self._done
            except SandboxFailure as err:
                reason = str(err)
        self._done = self._without_attachments(reason)
        return self._done

    def _without_attachments(self, reason: str) -> tuple[ParsedMessage | None, str]:
        assert self._sandbox is not None
        log.warning("parse stopped (%s); retrying without reading attachments", reason)
        try:
            headers_and_bodies = self._sandbox.parse(self._raw, replace(self._limits, max_attachments=0))
        except SandboxFailure:
            return None, reason
        return _attachments_not_read(headers_and_bodies, reason), ""


def _attachments_not_read(parsed: ParsedMessage, reason: str) -> ParsedMessage:
    parts = tuple(replace(p, problem=Problem(ProblemCode.PARSE_STOPPED, reason)) for p in parsed.attachments)
    problems = [p for p in parsed.problems if p.code is not ProblemCode.ATTACHMENT_LIMIT]
    if parts:
        problems.append(Problem(ProblemCode.PARSE_STOPPED, f"attachments not read: {reason}"))
    else:
        problems.append(Problem(ProblemCode.PARSE_STOPPED, f"first parse stopped ({reason}); second parse succeeded"))
    return replace(parsed, attachments=parts, problems=tuple(problems))


# -- the parent side -----------------------------------------------------------------------------


class ParseSandbox:
    """A persistent child process running parsers; thread-safe (one request at a time)."""

    def __init__(self, *, timeout_s: float = 60.0, memory_mb: int = 1024, ocr: bool = True,
                 ocr_threads: int = DEFAULT_LIMITS.ocr_threads) -> None:  # fmt: skip
        """`ocr=False`: a text-lane parser (pipeline.inbound.pool) that loads no OCR library and parses
        every message with `defer_ocr`, whatever the request says.  `ocr_threads`: the OCR engine's,
        built when the child starts (`[limits] ocr_threads`)."""
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.ocr = ocr
        self.ocr_threads = ocr_threads
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.starts = 0  # how many children were started (for tests and figures)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def parse(self, raw: bytes, limits: ParseLimits) -> ParsedMessage:
        """`parse_message(raw, limits=limits)` in the child; raises SandboxFailure with the reason."""
        return self.submit(raw, limits).result()

    def call(self, target: str, *args: object, timeout_s: float | None = None) -> Any:  # noqa: ANN401
        """Run `module:function(*args)` in the child (tests use it to make a child hang or crash)."""
        request = {"kind": "call", "target": target, "args": list(args)}
        return self._request(request, self.timeout_s if timeout_s is None else timeout_s)

    def close(self) -> None:
        with self._lock:
            self._stop(graceful=True)

    def configure(self, *, timeout_s: float, memory_mb: int, ocr_threads: int) -> None:
        """New limits.  The memory cap and an OCR child's engine are set when the child starts, so a
        change to either stops the child (the next request starts a new one); the timeout applies at once."""
        if memory_mb != self.memory_mb or (self.ocr and ocr_threads != self.ocr_threads):
            self.close()
        self.timeout_s, self.memory_mb, self.ocr_threads = timeout_s, memory_mb, ocr_threads

    # -- internals

    def submit(self, raw: bytes, limits: ParseLimits) -> _Pending:
        """Send a parse to the child and return at once; the sandbox is held until `.result()`."""
        # The raw bytes travel as a frame of their own: pickled inside the request they would be
        # copied once more on each side (a 34 MB mail cost ~100 MB of peak memory that way).
        data = plain.dumps({"kind": "parse", "limits": plain.limits_to_plain(limits)})
        self._lock.acquire()
        try:
            self._send(data, raw)
        except BaseException:
            self._lock.release()
            raise
        return _Pending(self, time.monotonic() + self.timeout_s, self.timeout_s)

    def _request(self, request: dict, timeout_s: float) -> Any:  # noqa: ANN401
        data = plain.dumps(request)
        with self._lock:
            self._send(data)
            return self._receive(time.monotonic() + timeout_s, timeout_s)

    def _send(self, *frames: bytes) -> None:
        proc = self._ensure_started()
        assert proc.stdin is not None
        try:
            for frame in frames:
                _write_frame(proc.stdin.fileno(), frame)
        except OSError:
            raise SandboxFailure(self._death_reason()) from None

    def _receive(self, deadline: float, timeout_s: float, decode: Any = None) -> Any:  # noqa: ANN401
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise SandboxFailure("parser crashed")
        try:
            reply = _read_frame(proc.stdout.fileno(), deadline)
        except TimeoutError:
            self._stop(graceful=False)
            raise SandboxFailure(f"parsing took longer than {timeout_s:g} s: stopped") from None
        except (EOFError, OSError):
            raise SandboxFailure(self._death_reason()) from None
        try:
            status, value = decode_answer(reply, decode)
        except Exception as err:  # a reply cut short, garbled or of the wrong shape: the child is broken
            self._stop(graceful=False)
            raise SandboxFailure(f"parser returned an unreadable answer ({type(err).__name__})") from err
        if status == "ok":
            return value
        if status == "memory":
            self._stop(graceful=False)  # its heap may be in any state: start afresh
            raise SandboxFailure(f"parser ran out of memory (limit {self.memory_mb} MB)")
        raise SandboxFailure(f"parser failed: {value}")

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop(graceful=False)
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env["INTAKE_SANDBOX_MEMORY_MB"] = str(self.memory_mb)
        env[_OCR_ENV] = str(self.ocr_threads) if self.ocr else "-1"
        # Few malloc arenas: each thread's arena reserves 64 MB of address space, which the
        # RLIMIT_AS cap counts (onnxruntime's OCR threads would otherwise cost ~250 MB of it).
        env["MALLOC_ARENA_MAX"] = "2"
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, MARKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
        )
        self._proc = proc
        self.starts += 1
        assert proc.stdout is not None
        try:
            ready = _read_frame(proc.stdout.fileno(), time.monotonic() + STARTUP_TIMEOUT_S)
        except (TimeoutError, EOFError, OSError) as err:
            self._stop(graceful=False)
            raise SandboxFailure(f"parser process did not start ({type(err).__name__})") from err
        if ready != b"ready":
            self._stop(graceful=False)
            raise SandboxFailure("parser process did not start (bad greeting)")
        return proc

    def _death_reason(self) -> str:
        proc = self._proc
        self._proc = None
        if proc is None:
            return "parser crashed"
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        _close_pipes(proc)
        if code < 0:
            return f"parser crashed: signal {-code}"
        return f"parser crashed: exit code {code}"

    def _stop(self, *, graceful: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if graceful and proc.poll() is None:
            _close_pipes(proc)  # EOF on its stdin: the child exits by itself
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _close_pipes(proc)


class _Pending:
    """A request sent to the child; `result()` reads its answer and frees the sandbox (once)."""

    def __init__(self, sandbox: ParseSandbox, deadline: float, timeout_s: float) -> None:
        self._sandbox = sandbox
        self._deadline = deadline
        self._timeout_s = timeout_s
        self._open = True

    def result(self) -> ParsedMessage:
        if not self._open:
            raise RuntimeError("result() already collected")
        self._open = False
        try:
            return self._sandbox._receive(self._deadline, self._timeout_s, plain.message_from_plain)
        finally:
            self._sandbox._lock.release()


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


_shared: ParseSandbox | None = None
_shared_lock = threading.Lock()


def shared_sandbox(*, timeout_s: float, memory_mb: int, ocr_threads: int = DEFAULT_LIMITS.ocr_threads) -> ParseSandbox:
    """The process-wide sandbox (one child per process), reconfigured when the limits change."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ParseSandbox(timeout_s=timeout_s, memory_mb=memory_mb, ocr_threads=ocr_threads)
        _shared.configure(timeout_s=timeout_s, memory_mb=memory_mb, ocr_threads=ocr_threads)
        return _shared


@atexit.register
def _close_shared() -> None:
    if _shared is not None:
        _shared.close()


def decode_answer(reply: bytes, decode: Any = None) -> tuple[str, Any]:  # noqa: ANN401
    """(status, value) from the child's answer frame; `decode` rebuilds an "ok" value (e.g. a
    ParsedMessage from plain data).  Raises on anything that is not that exact shape."""
    answer = plain.loads(reply)
    if not isinstance(answer, dict) or set(answer) != {"status", "value"} or not isinstance(answer["status"], str):
        raise plain.PlainError("answer is not {status, value}")
    status, value = answer["status"], answer["value"]
    if status == "ok" and decode is not None:
        value = decode(value)
    elif status != "ok" and not isinstance(value, str):
        raise plain.PlainError("error answer without a reason")
    return status, value


# -- framing -------------------------------------------------------------------------------------


def _write_frame(fd: int, data: bytes) -> None:
    if len(data) < 65536:  # one write for the usual small frame
        _write_all(fd, memoryview(_FRAME.pack(len(data)) + data))
    else:  # no copy of a large one
        _write_all(fd, memoryview(_FRAME.pack(len(data))))
        _write_all(fd, memoryview(data))


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_frame(fd: int, deadline: float | None) -> bytes:
    (size,) = _FRAME.unpack(_read_exact(fd, _FRAME.size, deadline))
    return _read_exact(fd, size, deadline)


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    """Exactly `size` bytes, read into one buffer (a large frame is returned as that bytearray, uncopied)."""
    buf = bytearray(size)
    view = memoryview(buf)
    filled = 0
    while filled < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        got = os.readv(fd, [view[filled : filled + (1 << 20)]])
        if not got:
            raise EOFError
        filled += got
    view.release()
    return bytes(buf) if size < (1 << 20) else buf  # type: ignore[return-value]  # a bytearray reads as bytes


# -- the child side ------------------------------------------------------------------------------


def serve() -> None:
    """The child's main loop: read a request, answer it, until the parent goes away."""
    import resource

    # The protocol gets private copies of the pipes; fd 0/1/2 go to /dev/null so that nothing a
    # library prints can corrupt the protocol or leak mail text into a log.
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle

    from parsers.message import parse_message

    ocr_threads = int(os.environ.get(_OCR_ENV, str(DEFAULT_LIMITS.ocr_threads)))
    ocr = ocr_threads >= 0
    if os.geteuid() == 0:  # after the drop below the Python installation may be unreadable
        from parsers.preload import preload, preload_ocr_engine

        preload(ocr=ocr)
        if ocr:  # its models are files in the installation too
            preload_ocr_engine(ocr_threads)
    logging.disable(logging.CRITICAL)
    memory_mb = int(os.environ.get("INTAKE_SANDBOX_MEMORY_MB", "1024"))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump mail to disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # parsers write no files
    if memory_mb > 0:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    drop_privileges()
    _write_frame(wfd, b"ready")
    while True:
        try:
            request = _read_frame(rfd, None)
        except (EOFError, OSError):
            os._exit(0)
        _write_frame(wfd, _answer(request, parse_message, lambda: _read_frame(rfd, None), ocr=ocr))


def _answer(request: bytes, parse_message: Any, read_frame: Any, *, ocr: bool = True) -> bytes:  # noqa: ANN401
    try:
        req = plain.loads(request)
        kind = req.get("kind")
        if kind == "parse":
            limits = plain.limits_from_plain(req["limits"])
            if not ocr:  # its OCR libraries were never loaded (and may be unreadable now): leave OCR to the OCR lane
                limits = replace(limits, defer_ocr=True)
            raw = read_frame()  # the raw bytes always follow as their own frame
            result: dict[str, object] = {"status": "ok", "value": plain.message_to_plain(parse_message(raw, limits=limits))}
        elif kind == "call":
            module, _, name = str(req["target"]).partition(":")
            result = {"status": "ok", "value": getattr(importlib.import_module(module), name)(*req["args"])}
        else:
            result = {"status": "error", "value": f"unknown request {kind!r}"}
        return plain.dumps(result)
    except MemoryError:
        result = {"status": "memory", "value": ""}
    except RecursionError:
        result = {"status": "error", "value": "RecursionError"}
    except BaseException as err:  # any failure is an answer, never a dead child
        result = {"status": "error", "value": f"{type(err).__name__}: {str(err)[:200]}"}
    return plain.dumps(result)


def drop_privileges() -> None:
    """As root: become `SANDBOX_USER` (no supplementary groups), so the data dir (0700, root) is
    out of reach.  Not root: nothing to drop.  Failing to drop is fatal: no root parser."""
    if os.geteuid() != 0:
        return
    import pwd

    user = pwd.getpwnam(SANDBOX_USER)
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        os._exit(3)


def _watch_parent(parent: int) -> None:
    """Exit when the parent dies (kill -9 included): the child is then reparented."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)
