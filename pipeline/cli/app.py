"""The Typer application and what every command shares: options, context, output helpers.

Commands are thin: parse options, call one library function, print its result.
Messages about the clerks' data are in Chinese; logs stay in English.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from pipeline.cli.clean import plain, shown
from pipeline.config import Config, load_config
from pipeline.context import Context, open_context
from pipeline.errors import AmbiguousError, IntakeError
from pipeline.outputs.workbook import safe_text
from pipeline.process_guard import make_undumpable


class _IntakeGroup(TyperGroup):
    """The one place where the project's errors become a Chinese message and an exit code.

    Exit 2 for any `IntakeError` (bad input, configuration, data files, storage), 3 when the
    database stayed busy past the retries.  Runs for `intake` and for tests invoking the app alike.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer's Context is click's
        try:
            return super().invoke(ctx)
        except AmbiguousError as err:
            err_console.print(f"[red]错误：[/red]{shown(err)}")
            for candidate in err.candidates[:15]:
                err_console.print(f"  · {shown(candidate)}")
            raise typer.Exit(2) from err
        except IntakeError as err:
            err_console.print(f"[red]错误：[/red]{shown(err)}")
            raise typer.Exit(2) from err
        except OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err):
                raise
            err_console.print("[red]错误：[/red]数据库一直忙（后台程序正在大量写入），请稍后再试一次。")
            raise typer.Exit(3) from err


app = typer.Typer(
    cls=_IntakeGroup,
    name="intake",
    help="自查报告收件与汇总工具（活动、截止时间与报告模板见 config.toml 的 [campaign]）。",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="配置文件 config.toml 的路径。", envvar="INTAKE_CONFIG")
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="数据目录（数据库、原始邮件、报表、发件箱）。默认取配置或 INTAKE_DATA_DIR。"),
]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="按此时刻计算状态，ISO 8601，如 2024-07-11T09:00:00+08:00。默认现在。")
]


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="输出格式：table、csv 或 json。")]


def load(config: Path, data_dir: Path | None) -> Config:
    return load_config(config, data_dir=data_dir)


@contextmanager
def opened(config: Path, data_dir: Path | None) -> Iterator[Context]:
    """Load config and open the data dir for one command."""
    ctx = open_context(load(config, data_dir))
    try:
        yield ctx
    finally:
        ctx.close()


def parse_as_of(value: str | None, cfg: Config) -> datetime:
    if not value:
        return datetime.now(cfg.campaign.timezone)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise IntakeError(f"--as-of 时间格式不对：{value!r}（例：2024-07-11T09:00:00+08:00）") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=cfg.campaign.timezone)


def iso(moment: datetime | None, cfg: Config) -> str:
    """ISO 8601 with the campaign's offset (what CSV/JSON consumers get)."""
    return moment.astimezone(cfg.campaign.timezone).isoformat(timespec="seconds") if moment else ""


def local(moment: datetime | None, cfg: Config) -> str:
    """Short local time for tables."""
    return moment.astimezone(cfg.campaign.timezone).strftime("%Y-%m-%d %H:%M") if moment else "—"


def emit(rows: Sequence[dict], columns: Sequence[str], fmt: OutputFormat, *, title: str = "",
         headers: Sequence[str] | None = None) -> None:  # fmt: skip
    """Print rows as a rich table, CSV (stable columns, UTF-8) or JSON."""
    if fmt is OutputFormat.json:
        json.dump([{c: _plain_value(row.get(c, "")) for c in columns} for row in rows], sys.stdout,
                  ensure_ascii=False, indent=1)  # fmt: skip
        sys.stdout.write("\n")
        return
    if fmt is OutputFormat.csv:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: safe_text(_plain_value(row.get(c, ""))) for c in columns})  # a clerk may open it in Excel
        return
    table = Table(title=title or None, show_lines=False, header_style="bold")
    for header in headers or columns:
        table.add_column(str(header), overflow="fold")
    for row in rows:
        table.add_row(*(shown(row.get(c, "")) for c in columns))
    console.print(table)


def _plain_value(value: object) -> object:
    """JSON keeps numbers, booleans and null; text loses its control characters."""
    return plain(value) if isinstance(value, str) else value


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("report-intake")
        except PackageNotFoundError:  # run from a source tree that was not installed
            number = "未安装"
        console.print(f"intake {number}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="输出运行日志（英文）。")] = False,
    _version: Annotated[
        bool, typer.Option("--version", help="显示版本号并退出。", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    setup_logging(verbose)
    make_undumpable()  # holds the mailbox password and mail: no core dump, no ptrace by others
