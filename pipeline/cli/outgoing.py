"""Commands about outgoing mail: remind, receipts, outbox, contacts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import (
    AsOfOpt,
    ConfigOpt,
    DataDirOpt,
    FormatOpt,
    HeldError,
    OutputFormat,
    app,
    console,
    emit,
    err_console,
    escape,
    iso,
    local,
    opened,
    parse_as_of,
)

if TYPE_CHECKING:
    from pipeline.outbound.mailer import Delivery

DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="只写入发件箱（outbox）预览，不发送。未设 [reminders] send = true 时总是如此。"
    ),
]
OUTBOX_COLUMNS = ("occasion", "kind", "status", "recipients", "subject", "attempts", "last_error", "note",
                  "created_at", "sent_at", "message_id", "eml_path")  # fmt: skip
CONTACT_COLUMNS = (
    "institution",
    "address",
    "person",
    "role",
    "source",
    "status",
    "last_error",
    "last_used_at",
    "phone",  # added later: CSV/JSON columns only ever grow at the end
)
CONTACT_TABLE_COLUMNS = ("institution", "address", "person", "role", "phone", "source", "status", "last_error",
                         "last_used_at")  # fmt: skip


def _mode(dry: bool) -> str:
    return "[yellow]预览模式：只写入发件箱，不发送[/yellow]" if dry else "[green]发送模式[/green]"


UnitOpt = Annotated[
    list[str] | None,
    typer.Option("--unit", help="只给这些单位发本次催报（名称、简称或名单序号，可重复）；区属单位发其区卫健局的整封提醒。"),
]


@app.command()
def remind(as_of: AsOfOpt = None, dry_run: DryRunOpt = False, unit: UnitOpt = None, config: ConfigOpt = None,
           data_dir: DataDirOpt = None) -> None:  # fmt: skip
    """催报一次：按提醒策略给未报送的单位（区属单位经区卫健局）发提醒，列出发给谁、为什么。每个场合只发一次。"""
    from pipeline.labels_zh import label
    from pipeline.outbound.reminders import HOLD_PREFIX, run_reminders
    from pipeline.vocab import Channel, DeliveryOutcome, ReminderPhase
    with opened(config, data_dir) as ctx:
        moment = parse_as_of(as_of, ctx.config)
        summary = run_reminders(ctx, moment, dry_run=True if dry_run else None, units=tuple(unit or ()))
        for line in summary.not_due:
            console.print(f"[yellow]未催报[/yellow] {escape(line)}")
        console.print(f"{_mode(summary.dry_run)}  统计时点 {local(moment, ctx.config)}")
        for bounce in summary.bounces:
            if bounce.ignored:  # kept and listed, changing nothing
                console.print(f"[yellow]可疑退信[/yellow] 邮件 {bounce.message_id}（{escape(bounce.occasion)}）"
                              f"{escape(bounce.address)}：{escape(bounce.ignored)}")  # fmt: skip
                continue
            console.print(
                f"[red]退信[/red] {escape(bounce.address)}（{escape(bounce.occasion)}）：{escape(bounce.diagnostic[:100])}，已标记为失效地址"
            )
        held = summary.why_none.startswith(HOLD_PREFIX)  # the calendar does not know the day: not merely "none due"
        if summary.occasion is None:
            if not held:
                console.print(f"本次没有催报：{escape(summary.why_none)}")
        else:
            o = summary.occasion
            phase = "截止前提醒" if o.phase == ReminderPhase.BEFORE else f"第 {o.round} 次逾期提醒"
            console.print(f"提醒场合：{o.day:%Y-%m-%d}（{phase}），共 {len(summary.plans)} 封")
        rows = []
        for plan in summary.plans:
            result = _outcome(plan.skipped, summary.deliveries.get(plan.occasion), skipped_label="未发送")
            rows.append({"unit": plan.unit, "channel": label(plan.channel, Channel), "institutions": "、".join(plan.institutions),
                         "to": "，".join(r.address for r in plan.to), "cc": "，".join(r.address for r in plan.cc),
                         "reason": "；".join((plan.reason, *plan.notes)), "result": result})  # fmt: skip
        if rows:
            emit(rows, ("unit", "channel", "institutions", "to", "cc", "reason", "result"), OutputFormat.table,
                 headers=("收件单位", "渠道", "未报送单位", "收件人", "抄送", "原因", "结果"))  # fmt: skip
        for line in summary.held:
            console.print(f"[yellow]暂缓[/yellow] {escape(line)}")
        for occasion, delivery in summary.deliveries.items():
            if delivery.action == DeliveryOutcome.CANCELLED or occasion not in {p.occasion for p in summary.plans}:
                console.print(escape(f"{occasion}：{label(delivery.action)}"))
    if held:
        raise HeldError(f"{summary.why_none}（已记录；intake health 也会报告）")


def _outcome(skipped: str, delivery: Delivery | None, *, skipped_label: str) -> str:
    """What happened to one planned mail, for the clerk's table."""
    from pipeline.labels_zh import label
    if skipped:
        return f"{skipped_label}：{skipped}"
    if delivery is None:
        return ""
    result = label(delivery.action)
    return f"{result}（{delivery.error[:80]}）" if delivery.error else result


@app.command()
def receipts(
    dry_run: DryRunOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """给已收到报告的发件人发回执（无法读取或缺章节的发补正通知）；每封来信最多一封，不回复自动邮件。"""
    from pipeline.labels_zh import label
    from pipeline.outbound.receipts import send_receipts
    from pipeline.vocab import MailKind
    with opened(config, data_dir) as ctx:
        cfg = ctx.config
        summary = send_receipts(ctx, parse_as_of(None, cfg), dry_run=True if dry_run else None)
        console.print(_mode(summary.dry_run))
        rows = []
        for plan in summary.plans:
            result = _outcome(plan.skipped, summary.deliveries.get(plan.occasion), skipped_label="不发")
            rows.append({"message": plan.message_id, "kind": label(plan.kind, MailKind), "to": plan.to.address if plan.to else "",
                         "institutions": "、".join(plan.institutions), "result": result})  # fmt: skip
        for occasion, delivery in summary.deliveries.items():
            if occasion not in {p.occasion for p in summary.plans}:
                rows.append({"message": occasion, "kind": label(delivery.kind, MailKind),
                             "to": "，".join(delivery.recipients), "institutions": "",
                             "result": label(delivery.action)})  # fmt: skip
    if not rows:
        console.print("没有需要发回执的新来信。")
        return
    emit(rows, ("message", "kind", "to", "institutions", "result"), OutputFormat.table,
         headers=("邮件编号", "类型", "收件人", "单位", "结果"))  # fmt: skip


@app.command()
def outbox(fmt: FormatOpt = OutputFormat.table, config: ConfigOpt = None,
           data_dir: DataDirOpt = None) -> None:  # fmt: skip
    """列出发信台账：每封催报、回执、日报的场合、收件人、状态、SMTP 结果和发件箱中的 .eml 文件。"""
    from pipeline.labels_zh import label
    from pipeline.vocab import DeliveryState, MailKind
    from storage.ledger import fetch_ledger
    with opened(config, data_dir, read_only=True) as ctx:
        cfg = ctx.config
        with ctx.db.connect() as conn:
            ledger = list(fetch_ledger(conn))
        table = fmt is OutputFormat.table
        rows = [
            {
                "occasion": r.occasion,
                "kind": label(r.kind, MailKind) if table else r.kind,
                "status": label(r.status, DeliveryState) if table else r.status,
                "recipients": ("，" if table else ";").join(r.recipients),
                "subject": r.subject,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "note": r.note.replace("\n", "；"),
                "created_at": local(r.created_at, cfg) if table else iso(r.created_at, cfg),
                "sent_at": local(r.sent_at, cfg) if table else iso(r.sent_at, cfg),
                "message_id": r.message_id_header,
                "eml_path": r.eml_path,
            }
            for r in ledger
        ]
        known = {r.eml_path for r in ledger}
        strays = sorted(
            p.name for p in (ctx.data_dir / "outbox").glob("*.eml") if f"outbox/{p.name}" not in known
        )
    if table:
        emit(rows, ("sent_at", "kind", "occasion", "recipients", "subject", "status", "attempts", "last_error", "eml_path"),
             fmt, title=f"发信台账（共 {len(rows)} 条）",
             headers=("发送时间", "类别", "场合", "收件人", "主题", "状态", "尝试", "SMTP 结果/错误", "文件"))  # fmt: skip
        for name in strays:
            console.print(f"[yellow]未登记的文件[/yellow] outbox/{escape(name)}（中断的运行留下，未发送）")
    else:
        emit(rows, OUTBOX_COLUMNS, fmt)


@app.command()
def contacts(
    fmt: FormatOpt = OutputFormat.table,
    reset: Annotated[
        str | None, typer.Option("--reset", help="把一个曾退信的地址恢复为可用（联系人已更正后）。")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """列出联系人：来源（联系人文件 / 从报送中学到）、是否退信、最近一次发信时间。"""
    from pipeline.clerk.contacts import list_contacts
    from pipeline.vocab import AddressHealth
    from storage.ledger import save_address_status
    with opened(config, data_dir, read_only=not reset) as ctx:
        cfg = ctx.config
        if reset:
            with ctx.db.begin() as conn:
                save_address_status(conn, reset.strip(), AddressHealth.OK)
            err_console.print(f"已将 {escape(reset.strip().lower())} 恢复为可用地址。")
        uses = list_contacts(ctx)
    table = fmt is OutputFormat.table
    rows = [
        {
            "institution": u.contact.institution,
            "address": u.contact.address,
            "person": u.contact.person,
            "role": u.contact.role,
            "source": ("联系人文件" if u.contact.source == "file" else "学习所得")
            if table
            else u.contact.source,
            "status": ("退信" if u.status == AddressHealth.FAILING else "正常") if table else u.status,
            "last_error": u.last_error,
            "last_used_at": local(u.last_used_at, cfg) if table else iso(u.last_used_at, cfg),
            "phone": u.contact.phone,
        }
        for u in uses
    ]
    emit(rows, CONTACT_TABLE_COLUMNS if table else CONTACT_COLUMNS, fmt, title=f"联系人（共 {len(rows)} 个）",
         headers=("单位", "邮箱", "联系人", "职务", "电话", "来源", "状态", "退信原因", "最近发信"))  # fmt: skip
