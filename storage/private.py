"""Files only their owner may read: the database, workbooks, exports, outbox mail (mode 0600).

The process umask (often 022) would make a freshly written file world-readable, and the data
it holds — who reported what, mail text, addresses — is not for other users of the machine.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_MODE = 0o600


def create_private(path: Path) -> Path:
    """Create `path` (empty) with mode 0600, or set an existing file of ours to 0600; returns it.

    Writers that then open the path for writing (truncating it) keep that mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)
    return path


def make_private(path: Path) -> None:
    """Set an existing file to 0600 (no error when it is gone or not ours)."""
    with contextlib.suppress(OSError):
        os.chmod(path, PRIVATE_MODE)
