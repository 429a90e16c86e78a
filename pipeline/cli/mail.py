"""Commands about stored mail: ingest, messages, show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.tree import Tree

from parsers.types import Part, PartKind
from pipeline import labels_zh
from pipeline.cli.app import (
    ConfigOpt,
    DataDirOpt,
    FormatOpt,
    OutputFormat,
    app,
    console,
    emit,
    iso,
    local,
    opened,
)
from pipeline.cli.clean import shown
from pipeline.inbound.ingest import ingest_paths
from pipeline.inbound.reparse import load_message
from pipeline.inbound.sources import count_messages
from pipeline.labels import describe_problem
from pipeline.labels_zh import label
from pipeline.outputs.views import message_views
from pipeline.vocab import Kind, MessageKind, Origin, ReceivedBasis
from storage.messages import fetch_sources

MESSAGE_COLUMNS = ("message_id", "received_at", "sender", "subject", "kind", "institutions")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help=".eml 文件、文件夹、Maildir 或 mbox。", exists=True)],
    config: ConfigOpt = Path("config.toml"),
    data_dir: DataDirOpt = None,
) -> None:
    """导入邮件文件：保存原始邮件、解析、识别报告并归属到机构。可重复运行，不会重复导入。"""
    with opened(config, data_dir) as ctx:
        total = count_messages(paths)
        with Progress(
            TextColumn("导入中"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, transient=True, disable=total < 20,
        ) as progress:  # fmt: skip
            task = progress.add_task("ingest", total=total)
            summary = ingest_paths(ctx, paths, on_progress=lambda _ref: progress.advance(task))
    for problem in summary.unreadable_sources:
        console.print(f"[yellow]跳过[/yellow] {shown(problem.ref)}：{shown(problem.reason)}")
    resumed = f"，续完上次中断 {summary.resumed} 封" if summary.resumed else ""
    console.print(
        f"新增 {summary.new} 封，重复 {summary.duplicates} 封，解析失败 {summary.failed} 封（已保存，原因见 intake messages）{resumed}。"
    )


@app.command()
def messages(
    fmt: FormatOpt = OutputFormat.table,
    config: ConfigOpt = Path("config.toml"),
    data_dir: DataDirOpt = None,
) -> None:
    """列出所有已保存的邮件：收到时间、发件人、主题、类型、归属机构。"""
    with opened(config, data_dir) as ctx:
        cfg = ctx.config
        rows = []
        for view in message_views(ctx):
            m = view.message
            rows.append(
                {
                    "message_id": m.id,
                    "received_at": iso(m.received_at, cfg) if fmt is not OutputFormat.table else local(m.received_at, cfg),
                    "sender": m.sender_address if fmt is not OutputFormat.table else _sender(m.sender_name, m.sender_address),
                    "subject": m.subject,
                    "kind": view.kind if fmt is not OutputFormat.table else label(view.kind, MessageKind),
                    "institutions": ";".join(view.institutions),
                }
            )
    emit(rows, MESSAGE_COLUMNS, fmt, title=f"邮件（共 {len(rows)} 封）",
         headers=("编号", "收到时间", "发件人", "主题", "类型", "归属机构"))  # fmt: skip


def _sender(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


@app.command()
def show(
    message: Annotated[str, typer.Argument(help="邮件编号（intake messages 第一列）或 SHA-256 前缀。")],
    config: ConfigOpt = Path("config.toml"),
    data_dir: DataDirOpt = None,
) -> None:
    """显示一封邮件：邮件头、正文、附件树、解析警告和归属判断。"""
    with opened(config, data_dir) as ctx:
        row, parsed, decisions = load_message(ctx, message)
        with ctx.db.connect() as conn:
            sources = fetch_sources(conn, row.id)
        cfg = ctx.config
    console.print(f"[bold]邮件 {row.id}[/bold]  SHA-256 {row.sha256[:16]}…  {row.size:,} 字节")
    console.print(f"收到时间：{local(row.received_at, cfg)}（依据：{label(row.received_basis, ReceivedBasis)}）")
    # Everything below that came from the mail is shown(): no control characters, no markup.
    console.print(f"发件人：{shown(parsed.sender)}")
    console.print(f"主题：{shown(parsed.subject)}")
    console.print(f"Date 头：{local(parsed.date, cfg)}    Message-ID：{shown(parsed.message_id or '（无）')}")
    for source, ref in sources:
        console.print(f"来源：{labels_zh.SOURCE.get(source, source)} {shown(ref)}")
    if parsed.auto_reply:
        console.print(f"自动邮件：{shown(parsed.auto_reply)}")
    tree = Tree("附件")
    for part in parsed.attachments:
        _add_part(tree, part)
    console.print(tree)
    body = parsed.text_body.strip()
    console.print("[bold]正文[/bold]：" + (shown(body[:1500], lines=True) + ("…" if len(body) > 1500 else "") if body else "（空）"))
    for problem in [*parsed.problems, *( [row.parse_error] if row.parse_error else [])]:
        console.print(f"[yellow]警告[/yellow] {shown(problem)}")
    for d in decisions:
        who = shown(d.institution or "—")
        origin = label(d.origin, Origin)
        console.print(f"判断（{origin}）：{shown(d.item_path)} → {label(d.kind, Kind)} {who} 置信度 {d.confidence:.2f} {shown(d.reason)}")




def _add_part(tree: Tree, part: Part) -> None:
    label = f"{shown(part.path)} {shown(part.filename or '（无文件名）')} {shown(f'[{part.content_type}]')} {part.size:,} 字节"
    if part.kind is PartKind.UNREADABLE or part.problem:
        label += f" [red]{shown(describe_problem(part.problem) or '无法读取')}[/red]"
    branch = tree.add(label)
    for child in part.children:
        _add_part(branch, child)
    if part.message is not None:
        inner = branch.add(f"附带邮件：{shown(part.message.sender)} / {shown(part.message.subject)}")
        for sub in part.message.attachments:
            _add_part(inner, sub)
