"""The console's reads of the campaign, kept while the data dir has not changed.

At 10,000 rows and 100,000 mails reading the stored mail and its decisions takes seconds;
a dashboard that polls, or a clerk stepping through the queue, would pay that on every
request.  So, per open data dir (one console, one cache):

- the roster and bureaus are read once (a changed roster file needs a console restart, as a
  changed config does);
- results (the snapshot, the dashboard …) are kept per change marker
  (`storage.changes.fetch_change_marker`), which is read BEFORE computing, so a change made
  meanwhile is picked up by the next request;
- the mail facts under every snapshot (messages, active decisions, items) are kept between
  changes and brought up to date by reading only the messages that changed (`MailCache`), so
  a new mail or a clerk's decision costs a few small queries, not a full read.  Many changed
  messages at once (reprocessing all) or a database that went back (a restore) mean a full read.

One snapshot per change of the data serves every page and the reminder plan.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar, cast

from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.context import Context
from pipeline.domain.roster import Roster, load_roster
from pipeline.outputs.snapshot import CampaignSnapshot, MailFacts, build_snapshot
from storage.changes import (
    fetch_active_decision_ids,
    fetch_change_marker,
    fetch_mail_marker,
    fetch_sourced_since,
)
from storage.decisions import fetch_decisions
from storage.messages import fetch_item_index, fetch_items, fetch_message, fetch_messages
from storage.rows import DecisionRow, ItemRow, MessageRow

LIVE_MAX_AGE_S = 60.0  # a "now" page may reuse a result this old when nothing has changed since
INCREMENTAL_LIMIT = 2_000  # more changed messages than this (reprocess all): one full read is cheaper
T = TypeVar("T")


class _Memo:
    """The last results of the expensive reads, reused while the change marker stays the same."""

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


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _message_order(m: MessageRow) -> tuple:
    return (m.received_at is None, m.received_at or _EARLIEST, m.id)  # fetch_messages: unknown times last


def _decision_order(d: DecisionRow) -> tuple:
    return (d.received_at is not None, d.received_at or _EARLIEST, d.message_id, d.id)  # SQL: NULLs first


class MailCache:
    """The mail facts of one data dir, kept between reads and updated by what changed.

    Messages are never deleted; a message's decisions are replaced as a whole when it is
    (re)processed (new ids), a clerk's decision is a new row and its undo deactivates one; a
    message's row changes in place when it is processed or fails (it leaves the pending set) or
    when a second source brings a better receipt time (a new source row).  So the messages to
    re-read are: new ids, those entering or leaving the pending set, those with a new source,
    and those whose set of active decision ids changed.  Their rows, decisions (the
    manual-over-automatic rule is per message, as `fetch_decisions` applies it) and items are
    read again; everything else is kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marker: tuple[int, int, frozenset[int]] | None = None
        self._active: dict[int, int] = {}
        self._messages: dict[int, MessageRow] = {}
        self._decisions: dict[int, list[DecisionRow]] = {}
        self._items: dict[int, dict[tuple[int, str], ItemRow]] = {}
        self._facts: MailFacts | None = None
        self.full_reads = 0  # for tests and the benchmark: how often everything was read again

    def facts(self, ctx: Context) -> MailFacts:
        with self._lock, ctx.db.connect() as conn:
            marker = fetch_mail_marker(conn)
            active = fetch_active_decision_ids(conn)
            old = self._marker
            if self._facts is None or old is None or marker[0] < old[0]:
                return self._full(conn, marker, active)
            changed = set(range(old[0] + 1, marker[0] + 1)) | (marker[2] ^ old[2])
            if marker[1] != old[1]:
                changed |= fetch_sourced_since(conn, old[1])
            changed |= {mid for did, mid in active.items() if did not in self._active}
            changed |= {mid for did, mid in self._active.items() if did not in active}
            if len(changed) > INCREMENTAL_LIMIT:
                return self._full(conn, marker, active)
            for mid in changed:
                row = fetch_message(conn, mid)
                if row is not None:
                    self._messages[mid] = row
                self._decisions[mid] = list(fetch_decisions(conn, message_id=mid))
                self._items[mid] = {(mid, i.path): i for i in fetch_items(conn, mid)}
            if changed:
                self._facts = self._assemble()
            self._marker, self._active = marker, active
            return self._facts

    def _full(self, conn, marker: tuple[int, int, frozenset[int]], active: dict[int, int]) -> MailFacts:  # noqa: ANN001
        self.full_reads += 1
        self._messages = {m.id: m for m in fetch_messages(conn)}
        self._decisions = {}
        for d in fetch_decisions(conn):
            self._decisions.setdefault(d.message_id, []).append(d)
        self._items = {}
        for key, item in fetch_item_index(conn).items():
            self._items.setdefault(key[0], {})[key] = item
        self._marker, self._active = marker, active
        self._facts = self._assemble()
        # Hundreds of thousands of rows that live as long as the console: without this, every
        # collection of the cyclic GC walks them again (half of a snapshot's build at 100,000
        # mails).  Rows hold no cycles, so once dropped they are still freed by refcounting.
        gc.freeze()
        return self._facts

    def _assemble(self) -> MailFacts:
        messages = tuple(sorted(self._messages.values(), key=_message_order))
        decisions = tuple(sorted((d for ds in self._decisions.values() for d in ds), key=_decision_order))
        items = {key: item for per in self._items.values() for key, item in per.items()}
        return MailFacts(messages, decisions, items)


def _state(ctx: Context) -> dict:
    """The console's cached state of one open data dir (kept on its context: one console, one cache)."""
    return ctx.__dict__.setdefault("_web_cache", {"memo": _Memo(), "mail": MailCache(), "lock": threading.Lock()})


def change_marker(ctx: Context) -> str:
    with ctx.db.connect() as conn:
        return fetch_change_marker(conn)


def cached(ctx: Context, key: tuple, compute: Callable[[], T], *, live: bool = False) -> T:
    """`compute()` or its earlier result for the same data; `live` results (as of "now") expire."""
    memo: _Memo = _state(ctx)["memo"]
    return cast(T, memo.get(key, change_marker(ctx), LIVE_MAX_AGE_S if live else None, compute))


def roster(ctx: Context) -> Roster:
    """The roster and bureaus, read once per console."""
    state = _state(ctx)
    with state["lock"]:
        if "roster" not in state:
            state["roster"] = load_roster(ctx.config.campaign)
        return cast(Roster, state["roster"])


def campaign_data(ctx: Context) -> CampaignData:
    """Roster, contacts and sender facts (contacts re-read when the data dir changes, e.g. a learned address)."""
    return cached(ctx, ("data",), lambda: load_campaign_data(ctx, roster(ctx)))


def mail_cache(ctx: Context) -> MailCache:
    return cast(MailCache, _state(ctx)["mail"])


def snapshot(ctx: Context, as_of: datetime, *, live: bool = False) -> CampaignSnapshot:
    """The campaign as of `as_of`, built once per change of the data (`live`: reusable for a minute)."""
    return cached(ctx, ("snapshot", None if live else as_of),
                  lambda: build_snapshot(ctx, as_of, data=campaign_data(ctx), mail=mail_cache(ctx).facts(ctx)),
                  live=live)  # fmt: skip
