"""Commands about the campaign: status, report (the spreadsheet), roster, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import (
    AsOfOpt,
    ConfigOpt,
    DataDirOpt,
    ExcelOpt,
    FormatOpt,
    OutputFormat,
    app,
    console,
    emit,
    emit_excel,
    escape,
    iso,
    load,
    local,
    opened,
    parse_as_of,
)


def status_columns() -> tuple[str, ...]:
    """The CSV/JSON columns of `intake status` (a contract: new ones only at the end).  A function, so that
    `intake --help` does not import the vocabulary."""
    from pipeline.vocab import Kind

    return ("institution", "district", "channel", "status", "first_received_at", "last_received_at", "submissions",
            Kind.NEEDS_REVIEW.value, "sender_trust")  # fmt: skip


@app.command()
def status(
    as_of: AsOfOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    excel: ExcelOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """每个名单机构的报送状态：按时报送、逾期报送、逾期未报、未报（未到期）、免报。"""
    from pipeline.domain.status import count_by_status
    from pipeline.labels_zh import label
    from pipeline.outputs.quick_status import quick_statuses
    from pipeline.vocab import Channel, Kind, SenderTrust, Status

    cfg = load(config, data_dir)
    moment = parse_as_of(as_of, cfg)
    # The same statuses as the snapshot's, read with sqlite3 alone (no SQLAlchemy: start-up is most of the
    # command's time); None sends it the ordinary way, which also names any problem with the data dir.
    rows = quick_statuses(cfg, moment)
    if rows is None:
        from pipeline.outputs.snapshot import build_snapshot

        with opened(config, data_dir, read_only=True) as ctx:
            rows = list(build_snapshot(ctx, moment).statuses)
    table = fmt is OutputFormat.table or excel
    records = [
        {
            "institution": r.institution.name,
            "district": r.institution.district,
            "channel": label(r.institution.channel, Channel) if table else r.institution.channel,
            "status": label(r.status, Status) if table else r.status,
            "first_received_at": local(r.first_received_at, cfg) if table else iso(r.first_received_at, cfg),
            "last_received_at": local(r.last_received_at, cfg) if table else iso(r.last_received_at, cfg),
            "submissions": len(r.submissions),
            Kind.NEEDS_REVIEW.value: ("是" if r.needs_review else "") if table else str(r.needs_review).lower(),
            # The current version's sender trust ("" when nothing is counted); the trailing column.
            "sender_trust": (label(r.sender_trust, SenderTrust) if r.sender_trust else "") if table else r.sender_trust,
        }
        for r in rows
    ]
    headers = ("机构", "区", "渠道", "状态", "首次收到", "最近收到", "次数", "需核对", "发件人")
    if excel:
        emit_excel(records, status_columns(), headers)
        return
    emit(records, status_columns(), fmt, title=f"报送状态（统计时点 {local(moment, cfg)}，截止 {local(cfg.campaign.deadline, cfg)}）",
         headers=headers)  # fmt: skip
    if table:
        counts = count_by_status(rows)
        console.print("  ".join(f"{label(s, Status)} {n}" for s, n in counts.items()))


@app.command()
def report(
    as_of: AsOfOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="输出的 .xlsx 路径。默认在数据目录 reports/ 下，文件名带日期。")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """生成每日报送情况表（Excel）：汇总、未报送名单、报送情况、来信明细、待人工核对、发件人待确认、操作记录。"""
    from pipeline.outputs.workbook import build_workbook

    with opened(config, data_dir) as ctx:
        moment = parse_as_of(as_of, ctx.config)
        path = build_workbook(ctx, moment, out)
    console.print(f"已生成报表：{escape(str(path))}")


roster_app = typer.Typer(help="查看或检查机构名单（附件1）。", invoke_without_command=True)
app.add_typer(roster_app, name="roster")


@roster_app.callback()
def roster_show(
    typer_ctx: typer.Context,
    fmt: FormatOpt = OutputFormat.table,
    config: ConfigOpt = None,
) -> None:
    """显示机构名单：序号、名称、区、报送渠道、别名。"""
    from pipeline.domain.roster import load_roster
    from pipeline.labels_zh import label
    from pipeline.vocab import Channel
    if typer_ctx.invoked_subcommand is not None:
        return
    cfg = load(config, None)
    roster = load_roster(cfg.campaign)
    rows = [
        {
            "row": i.row,
            "name": i.name,
            "district": i.district,
            "channel": label(i.channel, Channel) if fmt is OutputFormat.table else i.channel,
            "aliases": "；".join(i.aliases),
            "note": ("免报" if i.exempt else "") + (f" 同第{i.same_as}行" if i.same_as else "") + (f" {i.note}" if i.note else ""),
        }
        for i in roster
    ]
    emit(rows, ("row", "name", "district", "channel", "aliases", "note"), fmt, title=f"机构名单（{len(rows)} 家）",
         headers=("序号", "机构", "区", "渠道", "别名", "备注"))  # fmt: skip
    if fmt is OutputFormat.table:
        console.print(f"区卫健局 {len(roster.bureaus)} 个：" + "、".join(b.name for b in roster.bureaus))


@roster_app.command("check")
def roster_check(config: ConfigOpt = None) -> None:
    """检查名单文件：重复、别名冲突、格式错误。有问题时以非零状态退出。"""
    from pipeline.domain.roster import check_roster, load_roster
    cfg = load(config, None)
    problems = check_roster(cfg.campaign)
    if problems:
        for line in problems:
            console.print(f"[red]问题[/red] {escape(line)}")
        raise typer.Exit(1)
    roster = load_roster(cfg.campaign)
    console.print(f"名单无误：{len(roster)} 家机构，{len(roster.bureaus)} 个区卫健局。")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="样例邮件生成的随机种子（换一个种子得到另一批邮件）。")] = 7,
    config: ConfigOpt = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="演示用的临时数据目录（每次重建）。")] = Path("var/demo"),
) -> None:
    """演示：生成一批逼真的样例邮件，导入临时数据目录，显示报送汇总并生成报表。"""
    from rich.progress import Progress

    from pipeline.demo.run import run_demo
    from pipeline.labels_zh import label
    from pipeline.outputs.snapshot import build_snapshot
    from pipeline.outputs.workbook import build_workbook
    from pipeline.vocab import Status

    cfg = load(config, data_dir)
    with Progress(console=console.real, transient=True) as progress:
        task = progress.add_task("生成并导入样例邮件", total=None)
        run = run_demo(cfg, seed=seed, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    try:
        snapshot = build_snapshot(run.ctx, run.corpus.as_of)
        rows, counts = snapshot.statuses, snapshot.counts()
        path = build_workbook(run.ctx, run.corpus.as_of, snapshot=snapshot)
    finally:
        run.ctx.close()
    ev = run.evaluation
    moment = local(run.corpus.as_of, cfg)
    console.print(f"样例邮箱：{escape(str(run.mailbox_dir))}（{len(run.corpus.mails)} 封邮件）")
    console.print(f"统计时点 {moment}：" + "  ".join(f"{label(s, Status)} {n}" for s, n in counts.items()))
    overdue = [r.institution.name for r in rows if r.status == Status.OVERDUE]
    if overdue:
        console.print("逾期未报：" + "、".join(overdue))
    console.print(
        f"对照样例真值：状态正确 {ev.rows_right}/{ev.rows}（{ev.status_accuracy:.1%}），"
        f"错误归属 {len(ev.wrong_attributions)} 条，待人工核对 {ev.needs_review}/{ev.messages} 封（{ev.review_share:.1%}）"
    )
    for line in ev.wrong_attributions[:10]:
        console.print(f"[red]错误归属[/red] {escape(line)}")
    console.print(f"已生成报表：{escape(str(path))}")
    console.print(escape(f"继续查看：intake status --data-dir {cfg.data_dir} --as-of {iso(run.corpus.as_of, cfg)}"))
