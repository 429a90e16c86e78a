"""Open the database, apply migrations, and hand out short transactions.

SQLite runs in WAL mode with a busy timeout, so the worker and a clerk's
command can work on one data dir at the same time; "database is locked" is
retried with backoff rather than surfacing as a crash.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, insert, inspect, select
from sqlalchemy.exc import OperationalError

from .errors import StorageError
from .private import create_private
from .schema import MIGRATIONS, now_utc, schema_migrations

log = logging.getLogger(__name__)

DB_FILENAME = "intake.sqlite3"
_DISK_TROUBLE = re.compile(r"disk|full|I/O error|readonly|read-only|unable to open", re.IGNORECASE)
BUSY_TIMEOUT_S = 30.0


class Database:
    """A migrated database.  Use `db.begin()` for a write transaction, `db.connect()` to read."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def begin(self, *, attempts: int = 8, durable: bool = True) -> Iterator[Connection]:
        """A write transaction; retried from the start when SQLite reports the database locked.

        Only the BEGIN IMMEDIATE is retried here: the body runs once, inside the lock.
        `durable=False` (SQLite: synchronous=NORMAL for this commit) skips the fsync of the
        commit: a power cut may then roll back this transaction, never corrupt or reorder,
        and the next durable commit makes it durable too.  Only for work that is redone
        when lost (parse results: the row stays `pending` and is resumed).
        """
        delay = 0.1
        for attempt in range(attempts):
            ctx = self.engine.begin()
            conn = ctx.__enter__()
            try:
                if self.engine.dialect.name == "sqlite":
                    _set_synchronous(conn, "FULL" if durable else "NORMAL")
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
            except OperationalError as err:
                ctx.__exit__(type(err), err, err.__traceback__)  # give the connection back to the pool
                if "locked" not in str(err) or attempt == attempts - 1:
                    raise
                log.warning("database busy, retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            break
        try:
            try:
                yield conn
            except BaseException as err:
                ctx.__exit__(type(err), err, err.__traceback__)
                raise
            else:
                ctx.__exit__(None, None, None)
        except OperationalError as err:
            if not _DISK_TROUBLE.search(str(err)):
                raise
            # Disk full, file size limit, read-only or failing disk: the transaction was rolled back.
            raise StorageError(f"数据库写入失败（磁盘已满或不可写？）：{err.orig}") from err

    def connect(self) -> Connection:
        return self.engine.connect()

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(data_dir: Path, url: str = "", *, read_only: bool = False) -> Database:
    """Open the database for a data dir and bring its schema up to date (creating it if needed).

    `read_only`: never create or migrate; a missing SQLite file or a schema that needs migrating
    raises StorageError.  A database with migrations this code does not know (written by a newer
    version) is refused in both modes: the old code would misread it.
    """
    if not url:
        path = data_dir / DB_FILENAME
        if read_only and not path.is_file():
            raise StorageError(f"数据库不存在：{path}（只读命令不会创建它；请检查数据目录）")
        if not read_only:
            # Created 0600 before SQLite opens it: its -wal and -shm files take the same mode.
            create_private(path)
        url = f"sqlite:///{path}"
    else:
        url = os.path.expandvars(url)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    db = Database(engine)
    try:
        if read_only:
            pending = check_schema(db)
            if pending:
                raise StorageError(
                    f"数据库结构需要升级（{', '.join(pending)}），只读命令不做升级；请先运行一条写入命令，如 intake poll"
                )
        else:
            migrate(db)
    except BaseException:
        engine.dispose()
        raise
    return db


def check_schema(db: Database) -> list[str]:
    """Names of the migrations still to apply; raises StorageError for a database newer than this code."""
    with db.connect() as conn:
        if not inspect(conn).has_table(schema_migrations.name):
            return [name for name, _ in MIGRATIONS]
        done = set(conn.execute(select(schema_migrations.c.name)).scalars())
    known = {name for name, _ in MIGRATIONS}
    unknown = sorted(done - known)
    if unknown:
        raise StorageError(
            f"数据库由更新版本的程序写入（含本程序不认识的结构升级：{', '.join(unknown)}），请升级程序后再用"
        )
    return [name for name, _ in MIGRATIONS if name not in done]


def _set_synchronous(conn: Connection, level: str) -> None:
    """Set PRAGMA synchronous on a pooled connection, outside a transaction, only when it changes."""
    if conn.info.get("synchronous") != level:
        conn.exec_driver_sql(f"PRAGMA synchronous = {level}")
        conn.info["synchronous"] = level


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, record):  # noqa: ANN001 - DB-API objects
        # Let SQLAlchemy's begin() emit nothing, so BEGIN IMMEDIATE can be issued explicitly.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        record.info["synchronous"] = "FULL"


def migrate(db: Database) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction.  Returns their names."""
    applied: list[str] = []
    with db.begin() as conn:
        schema_migrations.create(conn, checkfirst=True)
        done = set(conn.execute(select(schema_migrations.c.name)).scalars())
    check_schema(db)  # refuses a database written by a newer version before changing anything
    for name, apply in MIGRATIONS:
        if name in done:
            continue
        with db.begin() as conn:
            # Re-check inside the lock: another process may have just applied it.
            if conn.execute(select(schema_migrations.c.name).where(schema_migrations.c.name == name)).first():
                continue
            apply(conn)
            conn.execute(insert(schema_migrations).values(name=name, applied_at=now_utc()))
        log.info("applied migration %s", name)
        applied.append(name)
    return applied


def inserted_id(result: CursorResult) -> int:
    """The primary key of the row an INSERT just added (every table here has an integer one)."""
    key = result.inserted_primary_key
    if key is None:
        raise StorageError("the database returned no key for the inserted row")
    return int(key[0])
