"""Commands about stored mail: ingest, messages, show."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import (
    ConfigOpt,
    DataDirOpt,
    FormatOpt,
    OutputFormat,
    app,
    console,
    emit,
    escape,
    iso,
    local,
    opened,
)
from pipeline.cli.clean import shown

if TYPE_CHECKING:
    from rich.tree import Tree

    from parsers.types import Part

# CSV/JSON contract: new columns only ever go at the end.
MESSAGE_COLUMNS = ("message_id", "received_at", "sender", "subject", "kind", "institutions", "message_id_header",
                   "sender_name")  # fmt: skip
MESSAGE_TABLE_COLUMNS = MESSAGE_COLUMNS[:6]


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help=".eml / .msg 文件、文件夹、Maildir 或 mbox。", exists=True)],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """导入邮件文件：保存原始邮件、解析、识别报告并归属到机构。可重复运行，不会重复导入。

    不是邮件的文件（空文件、PDF、图片、压缩包、乱码等）不导入：逐个列出原因并记录（intake refused 可查），
    此时退出码为 1。
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pipeline.inbound.ingest import ingest_paths
    from pipeline.inbound.sources import count_messages
    with opened(config, data_dir) as ctx:
        total = count_messages(paths)
        with Progress(
            TextColumn("导入中"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console.real, transient=True, disable=total < 20,
        ) as progress:  # fmt: skip
            task = progress.add_task("ingest", total=total)
            summary = ingest_paths(ctx, paths, on_progress=lambda _ref: progress.advance(task))
    refused = summary.unreadable_sources
    for problem in refused:
        console.print(f"[yellow]未导入[/yellow] {escape(str(problem.ref))}：{escape(problem.text)}")
    resumed = f"，续完上次中断 {summary.resumed} 封" if summary.resumed else ""
    not_mail = f"，未导入 {len(refused)} 个文件（不是邮件或无法读取，见上；intake refused 可再查看）" if refused else ""
    console.print(
        f"新增 {summary.new} 封，重复 {summary.duplicates} 封，解析失败 {summary.failed} 封（已保存，原因见 intake messages）"
        f"{resumed}{not_mail}。"
    )
    if refused:
        console.print("可导入的是邮件文件（.eml、Outlook .msg）、Maildir 文件夹和 mbox 文件；报告文件请作为邮件附件导入。")
        raise typer.Exit(1)  # scripts and the clerk see that not everything given was taken in


REFUSED_COLUMNS = ("last_seen_at", "ref", "reason", "description", "size", "sha256", "times", "first_seen_at")


@app.command()
def refused(
    fmt: FormatOpt = OutputFormat.table,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """列出 intake ingest 未导入的文件（不是邮件、空文件、无法读取）：路径、原因、大小、最近一次出现时间。"""
    from pipeline.inbound.mailsniff import describe_refusal
    from pipeline.labels_zh import label
    from pipeline.vocab import Refusal
    from storage.refusals import fetch_refusals
    with opened(config, data_dir, read_only=True) as ctx:
        cfg = ctx.config
        with ctx.db.connect() as conn:
            found = fetch_refusals(conn)
    table = fmt is OutputFormat.table
    rows = [
        {
            "last_seen_at": local(r.last_seen_at, cfg) if table else iso(r.last_seen_at, cfg),
            "ref": r.ref,
            "reason": label(r.reason, Refusal) if table else r.reason,
            "description": describe_refusal(r.reason, r.detail),
            "size": "" if r.size is None else r.size,
            "sha256": r.sha256[:12] if table else r.sha256,
            "times": r.times,
            "first_seen_at": local(r.first_seen_at, cfg) if table else iso(r.first_seen_at, cfg),
        }
        for r in found
    ]
    emit(rows, REFUSED_COLUMNS[:5] if table else REFUSED_COLUMNS, fmt, title=f"未导入的文件（共 {len(rows)} 个）",
         headers=("最近出现", "文件", "原因", "说明", "大小（字节）"))  # fmt: skip


@app.command()
def messages(
    fmt: FormatOpt = OutputFormat.table,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """列出所有已保存的邮件：收到时间、发件人、主题、类型、归属机构。"""
    from pipeline.labels_zh import label
    from pipeline.outputs.views import message_views
    from pipeline.vocab import MessageKind
    with opened(config, data_dir, read_only=True) as ctx:
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
                    "message_id_header": m.message_id_header,
                    "sender_name": m.sender_name,
                }
            )
    emit(rows, MESSAGE_TABLE_COLUMNS if fmt is OutputFormat.table else MESSAGE_COLUMNS, fmt, title=f"邮件（共 {len(rows)} 封）",
         headers=("编号", "收到时间", "发件人", "主题", "类型", "归属机构"))  # fmt: skip


def _sender(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


@app.command()
def show(
    message: Annotated[str, typer.Argument(help="邮件编号（intake messages 第一列）或 SHA-256 前缀。")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """显示一封邮件：邮件头、正文、附件树、解析警告和归属判断。"""
    from rich.tree import Tree

    from pipeline import labels_zh
    from pipeline.inbound.reparse import load_message
    from pipeline.labels_zh import label
    from pipeline.vocab import Kind, Origin, ReceivedBasis
    from storage.messages import fetch_sources
    with opened(config, data_dir, read_only=True) as ctx:
        row, parsed, decisions = load_message(ctx, message)
        with ctx.db.connect() as conn:
            sources = fetch_sources(conn, row.id)
        cfg = ctx.config
    console.print(f"[bold]邮件 {row.id}[/bold]  SHA-256 {row.sha256[:16]}…  {row.size:,} 字节")
    console.print(f"收到时间：{local(row.received_at, cfg)}（依据：{label(row.received_basis, ReceivedBasis)}）")
    # Everything below comes from the mail: escaped, so a subject like "[red]" or "[/]" prints as written.
    console.print(f"发件人：{escape(parsed.sender)}")
    console.print(f"主题：{escape(parsed.subject)}")
    console.print(f"Date 头：{local(parsed.date, cfg)}    Message-ID：{escape(parsed.message_id or '（无）')}")
    for source, ref in sources:
        console.print(f"来源：{labels_zh.SOURCE.get(source, source)} {escape(str(ref))}")
    if parsed.auto_reply:
        console.print(f"自动邮件：{escape(str(parsed.auto_reply))}")
    tree = Tree("附件")
    for part in parsed.attachments:
        _add_part(tree, part)
    console.print(tree)
    body = parsed.text_body.strip()
    console.print("[bold]正文[/bold]：" + escape(body[:1500] + ("…" if len(body) > 1500 else "") if body else "（空）"))
    for problem in [*parsed.problems, *([row.parse_error] if row.parse_error else [])]:
        console.print(f"[yellow]警告[/yellow] {escape(str(problem))}")
    for d in decisions:
        who = shown(d.institution or "—")
        origin = label(d.origin, Origin)
        console.print(escape(f"判断（{origin}）：{d.item_path} → {label(d.kind, Kind)} {who} 置信度 {d.confidence:.2f} {d.reason}"))




def _add_part(tree: Tree, part: Part) -> None:
    from parsers.types import PartKind
    from pipeline.labels import describe_problem

    label = escape(f"{part.path} {part.filename or '（无文件名）'} [{part.content_type}] {part.size:,} 字节")
    if part.kind is PartKind.UNREADABLE or part.problem:
        label += f" [red]{escape(describe_problem(part.problem) or '无法读取')}[/red]"
    branch = tree.add(label)
    for child in part.children:
        _add_part(branch, child)
    if part.message is not None:
        inner = branch.add(escape(f"附带邮件：{part.message.sender} / {part.message.subject}"))
        for sub in part.message.attachments:
            _add_part(inner, sub)
