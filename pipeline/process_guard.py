"""Process-level protections of the main process: not dumpable, and what counts as this machine.

`make_undumpable()` sets PR_SET_DUMPABLE to 0 (Linux): no core file of a process holding the
mailbox password and mail, and other processes of the same user cannot ptrace it or read its
/proc/<pid>/mem and environ.  Called once by the CLI (every command, the worker included).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import sys

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def _prctl(option: int, arg: int = 0) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return int(libc.prctl(option, arg, 0, 0, 0))


def make_undumpable() -> bool:
    """Mark this process not dumpable; returns whether it is now (False where prctl does not exist)."""
    if not sys.platform.startswith("linux"):
        return False
    _prctl(PR_SET_DUMPABLE, 0)
    return not is_dumpable()


def is_dumpable() -> bool:
    return sys.platform.startswith("linux") and _prctl(PR_GET_DUMPABLE) == 1


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (localhost or a loopback address), by its spelling alone."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
