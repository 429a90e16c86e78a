"""The run context: infrastructure only — the loaded config, the open database and the raw store.

Built once per command or worker job.  What the campaign knows about people (roster,
contacts, sender facts) is loaded per job by `pipeline.campaign_data` and passed
explicitly; a status view is built by `pipeline.outputs.snapshot`.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import ConfigError, StorageError
from storage.db import Database, open_database
from storage.rawstore import RawStore


@dataclass(frozen=True)
class Context:
    config: Config
    db: Database
    raw: RawStore

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def close(self) -> None:
        self.db.dispose()


def ensure_data_dir(path: Path) -> Path:
    """Create the data dir (mode 0700: it holds other people's mail) and its standard folders."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sub in ("raw", "reports", "outbox"):
            (path / sub).mkdir(exist_ok=True, mode=0o700)
    except OSError as err:
        raise StorageError(f"无法创建数据目录 {path}：{err.strerror or err}") from err
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def open_context(config: Config, *, read_only: bool = False) -> Context:
    """Open the data dir and its database for one command or job.

    Commands that write create the data dir (0700) and bring the schema up to date.  `read_only`
    commands (status, messages, show, review, audit, health, outbox, contacts) never create or
    migrate anything: a missing data dir or database, or a schema that needs migrating, is an error
    naming it (a typo in --data-dir must not look like an empty campaign).  A database written by a
    newer version of the program is refused either way.
    """
    if read_only:
        data_dir = config.data_dir
        if not data_dir.is_dir():
            raise ConfigError(
                f"数据目录不存在：{data_dir}（只读命令不会创建它；请检查 --data-dir、环境变量 INTAKE_DATA_DIR "
                "或配置文件的 [storage] data_dir）"
            )
    else:
        data_dir = ensure_data_dir(config.data_dir)
    db = open_database(data_dir, config.storage.database_url, read_only=read_only)
    return Context(config=config, db=db, raw=RawStore(data_dir))


def current_actor(by: str | None = None) -> str:
    """Who is acting: `--by`, else the OS user, else "unknown"."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in some containers and services
        return "unknown"
