"""The project's error root and the storage layer's errors.

`IntakeError` is the root of every error this project raises on purpose.  It is
defined here, in the lowest layer that raises (parsers never raise: they record
problems on what they return), so storage's errors can inherit it without
importing anything above; `pipeline.errors` re-exports it and adds the rest of
the tree.  The CLI turns any `IntakeError` into a clean message and exit code 2.
"""

from __future__ import annotations


class IntakeError(Exception):
    """Root of every error this project raises on purpose."""


class StorageError(IntakeError):
    """Raised when the database or the raw store cannot be read or written (disk full, permissions)."""


class RawMissingError(StorageError):
    """Raised when a message's raw file is missing or its bytes no longer match their SHA-256."""
