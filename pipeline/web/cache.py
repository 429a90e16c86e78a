"""Results of the console's expensive reads, reused while the data dir has not changed."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from pipeline.context import Context

LIVE_MAX_AGE_S = 60.0  # a "now" page may reuse a result this old when nothing has changed since


class _Memo:
    """The last results of the expensive reads, reused while the change marker stays the same.

    At 10,000 rows and 100,000 mails one status or review-queue read takes seconds; a dashboard
    that polls, or a clerk stepping through the queue, would recompute it on every request.  The
    marker is read BEFORE computing, so a change made meanwhile is picked up by the next request.
    Only facts in the database are covered: a changed roster or config needs a console restart.
    """

    def __init__(self, size: int = 8) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, tuple[str, float, object]] = OrderedDict()
        self._size = size

    def get(self, key: tuple, marker: str, max_age: float | None, compute: Callable[[], object]) -> object:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] == marker and (max_age is None or now - hit[1] <= max_age):
            return hit[2]
        value = compute()
        with self._lock:
            self._items[key] = (marker, now, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


def memo_of(ctx: Context) -> _Memo:
    """The memo of one open data dir (kept on its context: one console, one memo)."""
    return ctx.__dict__.setdefault("_web_memo", _Memo())
