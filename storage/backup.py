"""Back up a data dir while the worker runs, and restore it elsewhere with every checksum verified.

A backup is a folder (mode 0700, files 0600):

    intake.sqlite3      a consistent copy made with SQLite's online backup API
    raw/ outbox/ reports/   copies of those folders (temp files of unfinished writes left out)
    manifest.json       written last: format, created_at, source data dir, schema version
                        (applied migrations) and every file's path, size and SHA-256

Order matters for consistency: the database is copied first, then the files.
Raw files are written and fsync'd before any row names them and are never
changed afterwards, so every raw file the copied database refers to is already
on disk when the folders are copied; files that arrive later are harmless
extras.  A folder without manifest.json is an unfinished backup and is refused.

Restoring copies into a staging folder beside the target, verifies each file's
size and SHA-256 against the manifest and the database with PRAGMA
integrity_check, then renames the staging folder into place: a failed restore
leaves nothing behind.  Errors are `BackupError` with a Chinese message that
names the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from .db import BUSY_TIMEOUT_S, DB_FILENAME
from .errors import StorageError
from .rawstore import fsync_dir
from .schema import MIGRATIONS

MANIFEST = "manifest.json"
FORMAT = 1
FOLDERS = ("raw", "outbox", "reports")
CHUNK = 1 << 20


class BackupError(StorageError):
    """Raised when a backup cannot be made, or a backup is incomplete, corrupted or cannot be restored."""


@dataclass(frozen=True, slots=True)
class BackupFile:
    path: str  # relative, "/"-separated
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    created_at: str
    source: str
    schema_version: str  # the last applied migration
    migrations: list[str]
    files: list[BackupFile] = field(default_factory=list)
    format: int = FORMAT

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class BackupResult:
    dest: Path
    manifest: Manifest
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    data_dir: Path
    manifest: Manifest
    seconds: float


# ---------------------------------------------------------------- backup


def backup(data_dir: Path, dest: Path, *, now: datetime | None = None) -> BackupResult:
    """Copy `data_dir` into the new or empty folder `dest`.  Safe while other processes write."""
    started = time.monotonic()
    source_db = data_dir / DB_FILENAME
    if not source_db.is_file():
        raise BackupError(f"数据目录 {data_dir} 中没有数据库文件 {DB_FILENAME}，无法备份")
    _prepare_empty_dir(dest, "备份目标目录")
    try:
        migrations = _copy_database(source_db, dest / DB_FILENAME)
        files = [_describe(dest, DB_FILENAME)]
        for folder in FOLDERS:
            files.extend(_copy_tree(data_dir, dest, folder))
        manifest = Manifest(
            created_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
            source=str(data_dir.resolve()),
            schema_version=migrations[-1] if migrations else "",
            migrations=migrations,
            files=files,
        )
        _write_new(dest / MANIFEST, json.dumps(asdict(manifest), ensure_ascii=False, indent=1).encode())
        fsync_dir(dest)
    except OSError as err:
        raise BackupError(f"备份写入 {dest} 失败：{err.strerror or err}（备份不完整，请删除该目录后重试）") from err
    return BackupResult(dest, manifest, time.monotonic() - started)


def _copy_database(source: Path, target: Path) -> list[str]:
    """Online backup of the SQLite database; returns the applied migrations of the copy."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # 0600 before SQLite writes
    try:
        src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one consistent read snapshot (WAL lets writers go on)
            dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"备份出的数据库未通过完整性检查：{check}")
            migrations = [r[0] for r in dst.execute("SELECT name FROM schema_migrations ORDER BY name")]
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as err:
        raise BackupError(f"无法备份数据库 {source}：{err}") from err
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())
    return migrations


def _copy_tree(data_dir: Path, dest: Path, folder: str) -> list[BackupFile]:
    root = data_dir / folder
    if not root.is_dir():
        return []
    copied: list[BackupFile] = []
    _mkdir(dest / folder)
    for current, dirs, names in os.walk(root):  # does not follow symlinked folders
        dirs.sort()
        rel_dir = Path(current).relative_to(data_dir)
        for name in dirs:
            if not (Path(current) / name).is_symlink():
                _mkdir(dest / rel_dir / name)
        for name in sorted(names):
            if _unfinished(name):
                continue
            path = Path(current) / name
            if path.is_symlink() or not path.is_file():
                continue  # only regular files: a link could point out of the data dir
            rel = (rel_dir / name).as_posix()
            try:
                copied.append(_copy_file(path, dest / rel, rel))
            except FileNotFoundError:
                continue  # removed meanwhile (an outbox file of a cancelled mail)
        fsync_dir(dest / rel_dir)
    return copied


def _unfinished(name: str) -> bool:
    """Temp files of writes in progress: raw store `.tmp-*`, outbox and reports `*.tmp`."""
    return name.startswith(".tmp-") or name.endswith(".tmp")


# ---------------------------------------------------------------- restore


def read_manifest(src: Path) -> Manifest:
    """The manifest of the backup in `src`, with every path checked to stay inside the backup."""
    path = src / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        files = [BackupFile(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in raw["files"]]
        manifest = Manifest(str(raw["created_at"]), str(raw["source"]), str(raw["schema_version"]),
                            [str(m) for m in raw["migrations"]], files, int(raw["format"]))  # fmt: skip
    except FileNotFoundError as err:
        raise BackupError(f"{src} 中没有 {MANIFEST}：不是备份目录，或备份没有完成") from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BackupError(f"备份清单 {path} 无法读取或格式不对：{err}") from err
    if manifest.format != FORMAT:
        raise BackupError(f"备份清单 {path} 的格式版本 {manifest.format} 不受支持（本程序为 {FORMAT}）")
    for f in manifest.files:
        if not _safe_member(f.path):
            raise BackupError(f"备份清单 {path} 中的路径不安全：{f.path!r}")
    if DB_FILENAME not in {f.path for f in manifest.files}:
        raise BackupError(f"备份清单 {path} 中没有数据库文件 {DB_FILENAME}")
    unknown = set(manifest.migrations) - {name for name, _ in MIGRATIONS}
    if unknown:
        raise BackupError(
            f"备份来自更新版本的程序（数据库结构 {manifest.schema_version}，本程序不认识 {', '.join(sorted(unknown))}），"
            "请先升级程序再恢复"
        )
    return manifest


def verify_backup(src: Path) -> Manifest:
    """Check every file of the backup in `src` against its manifest (size and SHA-256)."""
    manifest = read_manifest(src)
    for f in manifest.files:
        _check(src / f.path, f, where=f"备份文件 {src / f.path}")
    return manifest


def restore(src: Path, data_dir: Path) -> RestoreResult:
    """Restore the backup in `src` into `data_dir`, which must not exist or be empty."""
    started = time.monotonic()
    manifest = read_manifest(src)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"目标数据目录 {data_dir} 不是空的：恢复只写入新的或空的目录")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = data_dir.parent / f".restore-{data_dir.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _mkdir(staging)
        for folder in FOLDERS:
            _mkdir(staging / folder)
        for f in manifest.files:
            source = src / f.path
            target = staging / f.path
            for parent in reversed(PurePosixPath(f.path).parents[:-1]):
                _mkdir(staging / parent)
            try:
                copied = _copy_file(source, target, f.path)
            except FileNotFoundError as err:
                raise BackupError(f"备份文件缺失：{source}") from err
            if (copied.size, copied.sha256) != (f.size, f.sha256):
                raise BackupError(
                    f"备份文件已损坏：{source}（大小 {copied.size}，应为 {f.size}；SHA-256 与备份清单不符）"
                )
        _integrity_check(staging / DB_FILENAME)
        for current, _dirs, _names in os.walk(staging):
            fsync_dir(Path(current))
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked above
        os.replace(staging, data_dir)
        fsync_dir(data_dir.parent)
    except OSError as err:
        raise BackupError(f"恢复到 {data_dir} 失败：{err.strerror or err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(data_dir, manifest, time.monotonic() - started)


def _integrity_check(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise BackupError(f"恢复出的数据库无法打开：{path.name}：{err}") from err
    if result != ["ok"]:
        raise BackupError(f"恢复出的数据库未通过完整性检查（{path.name}）：{'; '.join(result[:5])}")


def _check(path: Path, expected: BackupFile, *, where: str) -> None:
    try:
        size, sha = _hash(path)
    except FileNotFoundError as err:
        raise BackupError(f"{where} 缺失") from err
    if (size, sha) != (expected.size, expected.sha256):
        raise BackupError(f"{where} 已损坏（SHA-256 与备份清单不符）")


# ---------------------------------------------------------------- files


def _safe_member(rel: str) -> bool:
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts) or "\\" in rel:
        return False
    return rel == DB_FILENAME or (len(path.parts) > 1 and path.parts[0] in FOLDERS)


def _prepare_empty_dir(path: Path, what: str) -> None:
    if path.exists():
        if not path.is_dir() or any(path.iterdir()):
            raise BackupError(f"{what} {path} 已存在且不是空目录")
        os.chmod(path, 0o700)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _mkdir(path)
    except OSError as err:
        raise BackupError(f"无法创建{what} {path}：{err.strerror or err}") from err


def _mkdir(path: Path) -> None:
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def _copy_file(source: Path, target: Path, rel: str) -> BackupFile:
    """Copy one file (never following a link), hashing what was written; the copy is 0600 and fsync'd."""
    digest = hashlib.sha256()
    size = 0
    fd_in = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fd_out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            while chunk := os.read(fd_in, CHUNK):
                digest.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd_out, view) :]
            os.fsync(fd_out)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    return BackupFile(rel, size, digest.hexdigest())


def _describe(root: Path, rel: str) -> BackupFile:
    size, sha = _hash(root / rel)
    return BackupFile(rel, size, sha)


def _hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)

