"""Content-addressed store of raw message bytes.

Each message is written exactly as received to `raw/ab/cd/<sha256>.eml`
(mode 0600), fsync'd together with its directory BEFORE any row refers to it.
Writing is atomic (temp file + rename), so a crash never leaves a half file
under a final name.  Storing the same bytes twice is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import RawMissingError, StorageError


@dataclass(frozen=True, slots=True)
class StoredRaw:
    sha256: str
    relpath: str  # relative to the data dir
    size: int
    created: bool  # False when the bytes were already there


class RawStore:
    """The `raw/` folder of a data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "raw"

    def relpath(self, sha256: str) -> str:
        return f"raw/{sha256[:2]}/{sha256[2:4]}/{sha256}.eml"

    def sweep_temp(self, *, older_than_s: float = 3600.0) -> int:
        """Delete temp files that a killed writer left behind (old enough that no writer still owns them)."""
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.glob("*/*/.tmp-*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another sweeper got there first
        return removed

    def put(self, data: bytes) -> StoredRaw:
        """Write `data` durably (unless already present) and return where it is."""
        sha = hashlib.sha256(data).hexdigest()
        rel = self.relpath(sha)
        final = self.data_dir / rel
        if final.exists() and final.stat().st_size == len(data):
            return StoredRaw(sha, rel, len(data), created=False)
        tmp: str | None = None
        try:
            # mkdir(parents=True) gives intermediate folders the umask's mode: make both levels 0700.
            final.parent.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            final.parent.mkdir(exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-", suffix=".eml")
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except OSError as err:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot store raw message {sha[:12]}: {err.strerror or err}") from err
        return StoredRaw(sha, rel, len(data), created=True)

    def get(self, relpath: str, sha256: str | None = None) -> bytes:
        """Read stored bytes back; with `sha256`, verify them."""
        path = self.data_dir / relpath
        try:
            data = path.read_bytes()
        except OSError as err:
            raise RawMissingError(f"raw message missing: {relpath}") from err
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise RawMissingError(f"raw message {relpath} does not match its SHA-256")
        return data


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a file just renamed or created in it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
