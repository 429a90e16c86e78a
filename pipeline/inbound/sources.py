"""Message sources on disk: single .eml files, folders of them, Maildir folders and mbox files.

Each yields `RawMail(raw bytes, ref)`; refs are stable so a rerun recognises what it has seen.
Nothing is ever written to the source.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import IntakeError

_MAILDIR_SUBDIRS = ("cur", "new", "tmp")
_MAIL_SUFFIXES = (".eml", ".mail", ".msg", "")  # .msg: Outlook, stored as is, parsed by parsers.outlook
_SKIP_NAMES = {"truth.json", ".DS_Store", "Thumbs.db"}


@dataclass(frozen=True, slots=True)
class RawMail:
    raw: bytes
    ref: str  # "path", "path#mbox:N" or "path#maildir:KEY"


@dataclass(frozen=True, slots=True)
class SourceProblem:
    ref: str
    reason: str


def count_messages(paths: list[Path]) -> int:
    """A quick count for the progress bar (mbox files are counted by their "From " lines)."""
    total = 0
    for item in _expand(paths):
        if isinstance(item, tuple):
            kind, path = item
            if kind == "mbox":
                with path.open("rb") as fh:
                    total += sum(1 for line in fh if line.startswith(b"From "))
            else:
                total += sum(1 for sub in ("cur", "new") for f in (path / sub).glob("*") if f.is_file())
        else:
            total += 1
    return total


def iter_raw_mail(paths: list[Path]) -> Iterator[RawMail | SourceProblem]:
    """Yield every message under `paths`, and a `SourceProblem` for what cannot be read."""
    for item in _expand(paths):
        if isinstance(item, SourceProblem):
            yield item
        elif isinstance(item, tuple):
            kind, path = item
            yield from (_read_mbox(path) if kind == "mbox" else _read_maildir(path))
        else:
            try:
                yield RawMail(item.read_bytes(), str(item))
            except OSError as err:
                yield SourceProblem(str(item), f"cannot read file: {err.strerror or err}")


def _expand(paths: list[Path]) -> Iterator[Path | tuple[str, Path] | SourceProblem]:
    for path in paths:
        if not path.exists():
            raise IntakeError(f"路径不存在：{path}")
        if path.is_dir():
            yield from _walk_dir(path)
        elif _looks_like_mbox(path):
            yield ("mbox", path)
        else:
            yield path


def _walk_dir(root: Path) -> Iterator[Path | tuple[str, Path] | SourceProblem]:
    if all((root / sub).is_dir() for sub in _MAILDIR_SUBDIRS):
        yield ("maildir", root)
        # Maildir++ subfolders (".Junk" etc.) sit beside cur/new/tmp.
        for sub in sorted(root.iterdir()):
            if sub.is_dir() and sub.name.startswith(".") and all((sub / s).is_dir() for s in _MAILDIR_SUBDIRS):
                yield ("maildir", sub)
        return
    for entry in sorted(root.iterdir()):
        if entry.name in _SKIP_NAMES or entry.is_symlink():
            continue
        if entry.is_dir():
            yield from _walk_dir(entry)
        elif _looks_like_mbox(entry):
            yield ("mbox", entry)
        elif entry.suffix.lower() in _MAIL_SUFFIXES:
            yield entry
        else:
            yield SourceProblem(str(entry), f"skipped: not a mail file ({entry.suffix})")


def _looks_like_mbox(path: Path) -> bool:
    if path.suffix.lower() == ".eml":
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(5)
    except OSError:
        return False
    return head == b"From "


def _read_mbox(path: Path) -> Iterator[RawMail | SourceProblem]:
    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            try:
                yield RawMail(box.get_bytes(key), f"{path}#mbox:{index}")
            except Exception as err:  # a damaged entry must not stop the rest
                yield SourceProblem(f"{path}#mbox:{index}", f"cannot read mbox entry: {err}")
    finally:
        box.close()


def _read_maildir(path: Path) -> Iterator[RawMail | SourceProblem]:
    for sub in ("new", "cur"):
        for entry in sorted((path / sub).iterdir()):
            if not entry.is_file():
                continue
            key = entry.name.split(":", 1)[0]
            try:
                yield RawMail(entry.read_bytes(), f"{path}#maildir:{key}")
            except OSError as err:
                yield SourceProblem(f"{path}#maildir:{key}", f"cannot read file: {err.strerror or err}")
