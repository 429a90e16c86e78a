"""Shared helpers: throw-away configs and data dirs, timing, peak memory, subprocess runs."""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from pipeline.config import Config, load_config
from pipeline.context import Context, open_context
from tests.conftest import write_config  # one config writer for tests and benchmarks

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def fresh_context(work: Path, overrides: dict[str, dict[str, object]] | None = None) -> Context:
    """An empty data dir under `work` (removed first) and its open context."""
    shutil.rmtree(work / "var", ignore_errors=True)
    ctx = open_context(load_config(write_config(work, overrides)))
    return ctx


def project_config() -> Config:
    return load_config(ROOT / "config.toml")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cpu_timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result): CPU of this process and of its children, the parser
    processes included (they live on between calls, so RUSAGE_CHILDREN would miss them)."""
    me = psutil.Process()

    def children_cpu() -> dict[int, float]:
        out = {}
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = child.cpu_times()
                out[child.pid] = t.user + t.system
        return out

    def reaped() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    before_children, before_reaped, before_self = children_cpu(), reaped(), time.process_time()
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    after_children = children_cpu()
    cpu = time.process_time() - before_self + reaped() - before_reaped
    cpu += sum(v - before_children.get(pid, 0.0) for pid, v in after_children.items())
    return wall, cpu, result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB.

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child would
    report its parent's peak.  `reset_peak_rss()` restarts the count.
    """
    hwm = _status_kib("VmHWM")
    return (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def rss_mb() -> float:
    current = _status_kib("VmRSS")
    return current / 1024 if current is not None else float("nan")


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux 4.0+; silently does nothing elsewhere)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def run_child(module: str, *args: str, timeout: float = 600) -> dict:
    """Run `python -m module args…` in a fresh interpreter; its last stdout line is a JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}): " + " | ".join(tail))
    return json.loads(lines[-1])


def progress(text: str) -> None:
    """One line on stderr, so stdout keeps only the table."""
    print(f"  .. {text}", file=sys.stderr, flush=True)
