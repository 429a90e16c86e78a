"""The project's exception tree: the root `IntakeError` (defined in `storage.errors`, the lowest layer
that raises) and one class per situation, each saying when it is raised.

The CLI turns every `IntakeError` into a clean message and exit code 2, in one place (`pipeline.cli.main`).
"""

from __future__ import annotations

from storage.errors import IntakeError, RawMissingError, StorageError

__all__ = [
    "AmbiguousError",
    "ConfigError",
    "ConflictError",
    "DataFileError",
    "DeliveryError",
    "IntakeError",
    "MailboxError",
    "NotFoundError",
    "RawMissingError",
    "StorageError",
    "WorkerLockedError",
]


class ConfigError(IntakeError):
    """Raised when config.toml, a data file it names, or a secret is missing or invalid."""


class DataFileError(ConfigError):
    """Raised when a clerk-maintained data file (roster, contacts, aliases) has a bad line.

    The message names the file and the line number.
    """

    def __init__(self, path: object, line: int | None, problem: str) -> None:
        where = f"{path} 第 {line} 行" if line else f"{path}"
        super().__init__(f"{where}：{problem}")
        self.path = path
        self.line = line
        self.problem = problem


class NotFoundError(IntakeError):
    """Raised when a message, item or institution named by the user does not exist."""


class AmbiguousError(IntakeError):
    """Raised when a name given by the user matches several things; carries the candidates."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class MailboxError(IntakeError):
    """Raised when the IMAP server cannot be reached or refuses us after retries."""


class DeliveryError(IntakeError):
    """Raised when outgoing mail cannot be handed to the SMTP server."""


class WorkerLockedError(IntakeError):
    """Raised when another worker already holds the data directory's lock."""


class ConflictError(IntakeError):
    """Raised when a clerk acts on an item that someone else changed since the clerk looked at it."""
