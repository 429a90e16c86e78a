"""Message sources on disk: single .eml / .msg files, folders of them, Maildir folders and mbox files.

Each yields `RawMail(raw bytes, ref)`; refs are stable so a rerun recognises what it has seen.
Every file is judged by its bytes (`mailsniff.judge`), whatever its name: what is not mail
(zero bytes, a PDF or a photo dropped in the folder, garbage) becomes a `SourceProblem` with
its reason, which the caller reports and records; it is never stored as a message.
Nothing is ever written to the source.
"""

from __future__ import annotations

import hashlib
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import IntakeError
from pipeline.inbound.mailsniff import HEAD_BYTES, OLE_MAGIC, describe_refusal, judge
from pipeline.vocab import Refusal

_MAILDIR_SUBDIRS = ("cur", "new", "tmp")
_MAIL_SUFFIXES = (".eml", ".mail", ".msg", "")  # named like mail: a header-shaped first line is enough
_SKIP_NAMES = {"truth.json", ".DS_Store", "Thumbs.db"}  # the demo's answer key; the OS's folder caches


@dataclass(frozen=True, slots=True)
class RawMail:
    raw: bytes
    ref: str  # "path", "path#mbox:N" or "path#maildir:KEY"


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A file (or mbox entry) not taken in: why (`reason`, with `detail` for the wording), size and SHA-256."""

    ref: str
    reason: Refusal
    detail: str = ""  # a sniffed content type or an error's class name, never text from the file
    size: int | None = None
    sha256: str = ""

    @property
    def text(self) -> str:
        """The clerk's Chinese wording of the reason."""
        return describe_refusal(self.reason, self.detail)


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
            yield read_file(item)


def read_file(path: Path, *, named_as_mail: bool | None = None) -> RawMail | SourceProblem:
    """The file's bytes when it is mail, else why not (its size and SHA-256 recorded, its text never read out)."""
    if named_as_mail is None:
        named_as_mail = path.suffix.lower() in _MAIL_SUFFIXES
    try:
        with path.open("rb") as fh:
            data = fh.read(HEAD_BYTES)
            if data.startswith(OLE_MAGIC):  # .msg or .doc: only the whole file tells
                data += fh.read()
            verdict = judge(data, named_as_mail=named_as_mail)
            if verdict.is_mail:
                return RawMail(data + fh.read(), str(path))
            digest = hashlib.sha256(data)
            size = len(data)
            for chunk in iter(lambda: fh.read(1 << 20), b""):  # a refused video is hashed, never held in memory
                digest.update(chunk)
                size += len(chunk)
    except OSError as err:
        return SourceProblem(str(path), Refusal.UNREADABLE, type(err).__name__)
    assert verdict.refusal is not None
    return SourceProblem(str(path), verdict.refusal, verdict.detail, size, digest.hexdigest())


def _entry(raw: bytes, ref: str) -> RawMail | SourceProblem:
    """A Maildir or mbox entry: mail by its place, but still judged (an empty or garbage entry is refused)."""
    verdict = judge(raw if raw.startswith(OLE_MAGIC) else raw[:HEAD_BYTES], named_as_mail=True)
    if verdict.is_mail:
        return RawMail(raw, ref)
    assert verdict.refusal is not None
    return SourceProblem(ref, verdict.refusal, verdict.detail, len(raw), hashlib.sha256(raw).hexdigest())


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
        else:
            yield entry  # judged by its bytes, whatever its name


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
                raw = box.get_bytes(key)
            except Exception as err:  # a damaged entry must not stop the rest
                yield SourceProblem(f"{path}#mbox:{index}", Refusal.DAMAGED_ENTRY, type(err).__name__)
                continue
            yield _entry(raw, f"{path}#mbox:{index}")
    finally:
        box.close()


def _read_maildir(path: Path) -> Iterator[RawMail | SourceProblem]:
    for sub in ("new", "cur"):
        for entry in sorted((path / sub).iterdir()):
            if not entry.is_file():
                continue
            key = entry.name.split(":", 1)[0]
            try:
                raw = entry.read_bytes()
            except OSError as err:
                yield SourceProblem(f"{path}#maildir:{key}", Refusal.UNREADABLE, type(err).__name__)
                continue
            yield _entry(raw, f"{path}#maildir:{key}")
