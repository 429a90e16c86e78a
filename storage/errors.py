"""Errors raised by the storage layer (pipeline.errors re-exports them into the project's tree)."""

from __future__ import annotations


class StorageError(Exception):
    """Raised when the database or the raw store cannot be read or written (disk full, permissions)."""


class RawMissingError(StorageError):
    """Raised when a message's raw file is missing or its bytes no longer match their SHA-256."""
