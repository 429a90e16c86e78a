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
from pipeline.errors import StorageError
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
        raise StorageError(f"cannot create data directory {path}: {err.strerror or err}") from err
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def open_context(config: Config) -> Context:
    data_dir = ensure_data_dir(config.data_dir)
    db = open_database(data_dir, config.storage.database_url)
    return Context(config=config, db=db, raw=RawStore(data_dir))


def current_actor(by: str | None = None) -> str:
    """Who is acting: `--by`, else the OS user, else "unknown"."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in some containers and services
        return "unknown"
