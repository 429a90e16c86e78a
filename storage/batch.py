"""Group commit: store the raw bytes of a batch of messages, then their rows in one transaction.

The per-message guarantee is unchanged (a row never refers to bytes that are not on
disk; nothing is acknowledged before it is durable), but the cost of durability is
paid once per batch instead of once per message:

- `put_raw_batch` writes every new file to a temp name, fsyncs all of them at once
  (concurrent fsyncs on one file system share the journal commits), renames them
  into place and then makes the directory entries durable with one syncfs(2) for the
  batch (one fsync per changed directory where syncfs does not exist).
- `save_new_messages` inserts the rows of the batch with one multi-row INSERT
  (ids come back through RETURNING) and their sources with one executemany, inside
  the caller's single transaction.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, insert, select

from storage.vocab import ParseState

from .errors import StorageError
from .messages import MessageRow, _row
from .rawstore import RawStore, StoredRaw, fsync_dir
from .schema import message_sources, messages, now_utc

FSYNC_THREADS = 8  # concurrent fsyncs: enough for the journal to merge them, few enough to stay polite


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message row to insert (state pending) with its first source."""

    stored: StoredRaw
    received_at: datetime | None
    received_basis: str
    source: str
    ref: str


def put_raw_batch(store: RawStore, datas: Sequence[bytes]) -> list[StoredRaw]:
    """Store every item of `datas` durably (as `RawStore.put` does for one) and say where each is.

    When this returns, every file and every directory entry is on disk.  On an error nothing
    is left under a final name that was not fsync'd first; temp files are removed.
    """
    results: list[StoredRaw | None] = [None] * len(datas)
    to_write: dict[str, tuple[int, Path]] = {}  # sha -> (first index, final path)
    for n, data in enumerate(datas):
        sha = hashlib.sha256(data).hexdigest()
        rel = store.relpath(sha)
        final = store.data_dir / rel
        # Already stored, or the same bytes earlier in this batch: written once.
        if sha in to_write or (final.exists() and final.stat().st_size == len(data)):
            results[n] = StoredRaw(sha, rel, len(data), created=False)
        else:
            to_write[sha] = (n, final)
            results[n] = StoredRaw(sha, rel, len(data), created=True)
    if not to_write:
        return [r for r in results if r is not None]
    temps: list[tuple[int, str, Path]] = []  # (fd, temp path, final path)
    dirs: set[Path] = set()
    try:
        try:
            for n, final in to_write.values():
                for folder in (final.parent.parent, final.parent):
                    if not folder.is_dir():
                        # mkdir(parents=True) would give the umask's mode: make each level 0700, and
                        # remember its parent, whose new entry must reach the disk too.
                        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                        dirs.add(folder.parent)
                fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-", suffix=".eml")
                temps.append((fd, tmp, final))
                os.fchmod(fd, 0o600)
                view = memoryview(datas[n])
                while view:
                    view = view[os.write(fd, view) :]
            with ThreadPoolExecutor(max_workers=min(FSYNC_THREADS, len(temps))) as pool:
                list(pool.map(os.fsync, [fd for fd, _tmp, _final in temps]))
        finally:
            for fd, _tmp, _final in temps:
                with suppress(OSError):
                    os.close(fd)
        for _fd, tmp, final in temps:
            os.replace(tmp, final)  # only after its bytes are on disk: a final name is never half a file
            dirs.add(final.parent)
        if not _syncfs(store.root):  # one call makes every new directory entry durable
            for folder in sorted(dirs, key=lambda p: len(p.parts), reverse=True):  # else each folder, leaves first
                fsync_dir(folder)
    except OSError as err:
        for _fd, tmp, _final in temps:
            Path(tmp).unlink(missing_ok=True)
        raise StorageError(f"cannot store raw messages: {err.strerror or err}") from err
    return [r for r in results if r is not None]


def find_messages_by_sha(conn: Connection, shas: Sequence[str]) -> dict[str, MessageRow]:
    """The stored rows among `shas`, by SHA-256 (one query)."""
    if not shas:
        return {}
    rows = conn.execute(select(messages).where(messages.c.sha256.in_(sorted(set(shas)))))
    return {row.sha256: row for row in map(_row, rows)}


def save_new_messages(conn: Connection, new: Sequence[NewMessage]) -> list[int]:
    """Insert rows in state `pending` with their first sources; returns their ids in order.

    One INSERT … RETURNING for the messages and one executemany for the sources.
    """
    if not new:
        return []
    now = now_utc()
    rows: list[dict[str, object]] = [
        dict(sha256=m.stored.sha256, size=m.stored.size, raw_path=m.stored.relpath, received_at=m.received_at,
             received_basis=m.received_basis, message_id_header="", sender_address="", sender_name="", subject="",
             parse_status=ParseState.PENDING, parse_error="", problems=[], ingested_at=now)
        for m in new
    ]  # fmt: skip
    returned = conn.execute(insert(messages).returning(messages.c.id, messages.c.sha256, sort_by_parameter_order=True),
                            rows)  # fmt: skip
    ids = {sha: message_id for message_id, sha in returned}
    if len(ids) != len(new):
        raise RuntimeError("the database returned fewer ids than rows inserted")
    result = [ids[m.stored.sha256] for m in new]
    conn.execute(insert(message_sources),
                 [dict(message_id=i, source=m.source, ref=m.ref, seen_at=now) for i, m in zip(result, new, strict=True)])
    return result


def _syncfs(path: Path) -> bool:
    """Linux syncfs(2) on the file system holding `path`: every renamed entry and new folder of the batch
    reaches the disk in one call (one fsync per changed folder cost ~4 ms each here).  False where the
    call does not exist (not Linux): the caller then fsyncs each folder."""
    if _libc is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)
    return True


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_libc = _load_libc()

