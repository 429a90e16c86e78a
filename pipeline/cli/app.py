"""The Typer application and what every command shares: options, context, output helpers.

Commands are thin: parse options, call one library function, print its result.
Messages about the clerks' data are in Chinese; logs stay in English.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from pipeline.cli import zh
from pipeline.cli.clean import plain, shown
from pipeline.errors import AmbiguousError, IntakeError

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.config import Config
    from pipeline.context import Context

zh.install()


class HeldError(IntakeError):
    """Raised by a command whose job was held back, not done, for a reason an operator must fix
    (reminders on a day the holiday table does not know).  Exit 1, like `intake health` with an 错误."""


class _IntakeGroup(TyperGroup):
    """The one place where the project's errors become a Chinese message and an exit code.

    Exit 2 for any `IntakeError` (bad input, configuration, data files, storage), 1 for `HeldError`
    (the job was held, the reason said), 3 when the database stayed busy past the retries.  Runs for
    `intake` and for tests invoking the app alike.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer's Context is click's
        try:
            return super().invoke(ctx)
        except HeldError as err:
            err_console.print(f"[red]未执行：[/red]{shown(err)}")
            raise typer.Exit(1) from err
        except AmbiguousError as err:
            err_console.print(f"[red]错误：[/red]{shown(err)}")
            for candidate in err.candidates[:15]:
                err_console.print(f"  · {shown(candidate)}")
            raise typer.Exit(2) from err
        except IntakeError as err:
            err_console.print(f"[red]错误：[/red]{shown(err)}")
            raise typer.Exit(2) from err
        except Exception as err:
            # SQLAlchemy's OperationalError, matched by name: importing SQLAlchemy here would cost every
            # command (`intake --help` included) its start-up time.
            if type(err).__name__ != "OperationalError" or ("locked" not in str(err) and "busy" not in str(err)):
                raise
            err_console.print("[red]错误：[/red]数据库一直忙（后台程序正在大量写入），请稍后再试一次。")
            raise typer.Exit(3) from err


app = typer.Typer(
    cls=_IntakeGroup,
    name="intake",
    help="自查报告收件与汇总工具（活动、截止时间与报告模板见 config.toml 的 [campaign]）。",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    rich_markup_mode=None,  # help texts name config sections like [schedule]: print brackets as written
    pretty_exceptions_enable=False,
)


class _LazyConsole:
    """A rich Console made on first use: `intake --help` never pays for importing rich's console."""

    def __init__(self, **options: object) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def real(self) -> Console:
        """The rich Console itself (for rich objects that take one: Progress(console=console.real))."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)  # type: ignore[arg-type]
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


console = _LazyConsole()
err_console = _LazyConsole(stderr=True)


def escape(text: object) -> str:
    """Text from mail, files or the user made safe for rich output: controls stripped, markup escaped."""
    return shown(text)


CONFIG_HELP = (
    "配置文件路径。未指定时依次查找：环境变量 INTAKE_CONFIG、当前目录的 config.toml、/etc/intake/config.toml。"
    "可写在子命令之前或之后。"
)
DATA_DIR_HELP = "数据目录（数据库、原始邮件、报表、发件箱）。默认取 INTAKE_DATA_DIR 或配置文件。可写在子命令之前或之后。"
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP)]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help=DATA_DIR_HELP)]
# --config / --data-dir given before the subcommand (`intake --config X status`); the subcommand's own wins.
GLOBAL_OPTIONS: dict[str, Path | None] = {"config": None, "data_dir": None}
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="按此时刻计算状态，ISO 8601，如 2024-07-11T09:00:00+08:00。默认现在。")
]


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="输出格式：table、csv 或 json。")]
ExcelOpt = Annotated[
    bool,
    typer.Option("--excel", help="输出给 Excel 直接打开的 CSV：UTF-8 带 BOM、中文表头、中文状态（--format csv 的列不变）。"),
]

def load(config: Path | None, data_dir: Path | None) -> Config:
    """The config of this command: its own --config / --data-dir, else the ones given before it."""
    from pipeline.config import load_config

    return load_config(config or GLOBAL_OPTIONS["config"], data_dir=data_dir or GLOBAL_OPTIONS["data_dir"])


@contextmanager
def opened(config: Path | None, data_dir: Path | None, *, read_only: bool = False) -> Iterator[Context]:
    """Load config and open the data dir for one command.

    `read_only`: the command only reads; a missing data dir or database is an error and nothing is
    created or migrated (see `pipeline.context.open_context`).
    """
    from pipeline.context import open_context  # SQLAlchemy: only for commands that open the data dir

    ctx = open_context(load(config, data_dir), read_only=read_only)
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
        import json

        json.dump([{c: _plain_value(row.get(c, "")) for c in columns} for row in rows], sys.stdout,
                  ensure_ascii=False, indent=1)  # fmt: skip
        sys.stdout.write("\n")
        return
    if fmt is OutputFormat.csv:
        import csv

        from pipeline.outputs.sheets import safe_text

        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: safe_text(_plain_value(row.get(c, ""))) for c in columns})  # a clerk may open it in Excel
        return
    from rich.table import Table

    table = Table(title=title or None, show_lines=False, header_style="bold")
    for header in headers or columns:
        table.add_column(str(header), overflow="fold")
    for row in rows:
        table.add_row(*(shown(row.get(c, "")) for c in columns))
    console.print(table)


def emit_excel(rows: Sequence[dict], columns: Sequence[str], headers: Sequence[str]) -> None:
    """CSV for a clerk's Excel: a UTF-8 BOM (so Chinese Excel does not show mojibake), Chinese headers,
    CRLF lines, and text that can never become a formula."""
    import csv

    from pipeline.outputs.sheets import safe_text

    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    lines: list[str] = []

    class _Sink:
        def write(self, text: str) -> None:
            lines.append(text)

    writer = csv.writer(_Sink(), lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([safe_text(str(row.get(c, ""))) for c in columns])
    data = "\ufeff" + "".join(lines)
    if out is not None:
        sys.stdout.flush()
        out.write(data.encode("utf-8"))
        out.flush()
    else:
        sys.stdout.write(data)


def _plain_value(value: object) -> object:
    """JSON keeps numbers, booleans and null; text loses its control characters."""
    return plain(value) if isinstance(value, str) else value


def setup_logging(verbose: bool) -> None:
    import logging

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
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """自查报告收件与汇总工具（活动、截止时间与报告模板见配置文件的 [campaign]）。"""
    from pipeline.process_guard import make_undumpable  # ctypes: not for `intake --help`

    setup_logging(verbose)
    GLOBAL_OPTIONS.update(config=config, data_dir=data_dir)
    make_undumpable()  # holds the mailbox password and mail: no core dump, no ptrace by others
