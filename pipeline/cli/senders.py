"""The clerks' sender commands: `intake senders` (发件人待确认) and `intake confirm`.

Confirmations are their own list, not the review queue: an unknown sender's report
already counts; confirming it marks the sender known and learns the address (shown
first, and asked for unless --yes); rejecting it stops the report from counting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

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
from pipeline.cli.clerk import ByOpt, _clerk_errors

SENDER_COLUMNS = ("item", "received_at", "sender", "institutions", "files", "current")


@app.command()
def senders(
    fmt: FormatOpt = OutputFormat.table,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """发件人待确认：已计入报送、但发件地址不是该机构已登记联系人的来信。"""
    from pipeline.outputs.senders import unconfirmed_senders
    from pipeline.outputs.snapshot import build_snapshot

    with _clerk_errors(), opened(config, data_dir, read_only=True) as ctx:
        cfg = ctx.config
        found = unconfirmed_senders(build_snapshot(ctx, datetime.now(cfg.campaign.timezone)))
    table = fmt is OutputFormat.table
    rows = [
        {
            "item": u.item,
            "received_at": local(u.received_at, cfg) if table else iso(u.received_at, cfg),
            "sender": u.sender,
            "institutions": ";".join(u.institutions),
            "files": ";".join(u.filenames),
            "current": ("是" if u.current else "") if table else str(u.current).lower(),
        }
        for u in found
    ]
    emit(rows, SENDER_COLUMNS, fmt, title=f"发件人待确认（{len(rows)} 封）",
         headers=("邮件编号", "收到时间", "发件地址", "计入机构", "文件", "当前版本"))  # fmt: skip
    if table:
        console.print("确认发件人（并记住地址）：intake confirm 邮件编号；不是该机构发的：intake confirm 邮件编号 --reject"
                      if rows else "没有待确认的发件人。")  # fmt: skip


@app.command()
def confirm(
    item: Annotated[str, typer.Argument(help="邮件编号（intake senders 第一列），如 12。")],
    reject: Annotated[bool, typer.Option("--reject", help="不是该机构发的：该邮件的报告不再计入。")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="撤销对该发件人的确认或拒绝。")] = False,
    learn: Annotated[bool, typer.Option("--learn/--no-learn", help="确认时记住发件地址（默认记住；区卫健局、委内地址除外）。")] = True,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="不再询问，直接确认。")] = False,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """确认来信的发件人（并记住其地址为该机构的联系邮箱），或 --reject 拒绝，或 --undo 撤销。"""
    from pipeline.clerk.confirm import confirm_sender, preview_confirmation

    with _clerk_errors(), opened(config, data_dir) as ctx:
        if not reject and not undo:
            preview = preview_confirmation(ctx, item)
            names = "、".join(preview.institutions) or "（无）"
            console.print(f"邮件 {preview.item}：发件人 {escape(preview.sender)}，计入 {escape(names)}。")
            if learn and preview.learn_address:
                console.print(f"确认后将记住地址 {escape(preview.learn_address)} 为 "
                              f"{escape(preview.institutions[0])} 的联系邮箱（今后催报也会发到这个地址）。")  # fmt: skip
            elif learn:
                console.print(f"不会记住地址：{escape(preview.not_learned)}。")
            if not yes and not typer.confirm("确认？", default=False):
                console.print("未做任何更改。")
                raise typer.Exit(1)
        result = confirm_sender(ctx, item, by=by, reject=reject, undo=undo, learn=learn)
    if result.verdict == "undone":
        console.print(f"已撤销对邮件 {result.item} 发件人的确认/拒绝。")
    elif result.verdict == "rejected":
        console.print(f"已拒绝邮件 {result.item} 的发件人 {escape(result.sender)}：其报告不再计入。")
    else:
        console.print(f"已确认邮件 {result.item} 的发件人 {escape(result.sender)}。")
    if result.learned_address:
        console.print(f"已记住发件地址 {escape(result.learned_address)} 属于 {escape(result.institutions[0])}。")
    if result.status_changes:
        console.print(f"操作记录新增状态变化 {result.status_changes} 条（见 intake audit）。")
