"""A time limit for the pure rules that run in the main process (recognition and attribution).

Parsing runs in a child process that can be killed; attribution runs here, on text the parser
returned, so it cannot be killed — it is stopped instead.  Its regular expressions are linear
and its input is capped (`pipeline.domain.bounds`), so each step is short; the name index
checks the deadline on every lookup (a few per line), which bounds the whole.

    with work_deadline(30.0):
        attribute_message(...)      # raises WorkTimeout once 30 s have passed

Outside a `work_deadline` block `check_deadline()` does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("intake_work_deadline", default=None)


class WorkTimeout(Exception):
    """Raised by `check_deadline` inside a `work_deadline(seconds)` block once the time is up."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


@contextmanager
def work_deadline(seconds: float) -> Iterator[None]:
    """Make `check_deadline()` raise `WorkTimeout` after `seconds` (<= 0: no limit)."""
    token = _DEADLINE.set((time.monotonic() + seconds, seconds) if seconds > 0 else None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    """Raise `WorkTimeout` when the current block's time is up; cheap enough to call per line."""
    current = _DEADLINE.get()
    if current is not None and time.monotonic() > current[0]:
        raise WorkTimeout(current[1])
