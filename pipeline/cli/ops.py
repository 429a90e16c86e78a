"""Operator commands: backup (while the worker runs) and restore (into a new, empty data dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, DataDirOpt, app, console, load
from pipeline.errors import ConfigError


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


@app.command("backup")
def backup_command(
    dest: Annotated[Path, typer.Argument(help="备份目录（新目录或空目录；建议每次用带日期的新目录）。")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """备份数据目录：数据库（在线备份，worker 可以照常运行）、原始邮件、发件箱、报表，并写入带 SHA-256 的清单。"""
    cfg = load(config, data_dir)
    if cfg.storage.database_url:
        raise ConfigError("配置了外部数据库（[storage] database_url），本命令只备份 SQLite 数据目录；请用数据库自己的备份工具")
    if not cfg.data_dir.is_dir():
        raise ConfigError(f"数据目录 {cfg.data_dir} 不存在")
    from storage.backup import backup

    result = backup(cfg.data_dir, dest)
    m = result.manifest
    console.print(
        f"备份完成：{dest}\n  文件 {len(m.files)} 个，共 {_megabytes(m.total_bytes)}；数据库结构 {m.schema_version}；"
        f"用时 {result.seconds:.1f} 秒。\n  恢复：intake restore {dest} --data-dir <新数据目录>",
        highlight=False,
    )


@app.command("restore")
def restore_command(
    src: Annotated[Path, typer.Argument(help="intake backup 生成的备份目录。")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """从备份恢复到新的（或空的）数据目录，逐个核对 SHA-256 并检查数据库完整性；文件损坏则报错（退出码 2）。"""
    target = data_dir if data_dir is not None else load(config, None).data_dir
    from storage.backup import restore

    result = restore(src, target.absolute())
    m = result.manifest
    console.print(
        f"恢复完成：{result.data_dir}\n  文件 {len(m.files)} 个（{_megabytes(m.total_bytes)}）校验一致，数据库完整性检查通过；"
        f"备份时间 {m.created_at}，来源 {m.source}。",
        highlight=False,
    )
