"""The Chinese label of every vocabulary value: one wording, used by the CLI, the workbook, mails and the console.

`label(value)` takes an enum member (or the plain string the database holds, with
the enum class to read it as) and returns what a clerk reads.  A value without a
label is shown as it is, so a new word never crashes an output.
"""

from __future__ import annotations

from enum import StrEnum

from pipeline.vocab import (
    Action,
    Channel,
    DeliveryOutcome,
    DeliveryState,
    ItemPath,
    Kind,
    MailKind,
    MessageKind,
    Origin,
    ReceivedBasis,
    Refusal,
    SenderTrust,
    Status,
)

STATUS = {
    Status.ON_TIME: "按时报送",
    Status.LATE: "逾期报送",
    Status.OVERDUE: "逾期未报",
    Status.PENDING: "未报（未到期）",
    Status.EXEMPT: "免报",
}
KIND = {
    MessageKind.REPORT: "自查报告",
    MessageKind.NEEDS_REVIEW: "待人工核对",
    MessageKind.UNRELATED: "无关邮件",
    MessageKind.UNPROCESSED: "未处理",
}
CHANNEL = {Channel.DIRECT: "直接报送", Channel.BUREAU: "经区卫健局报送"}
ORIGIN = {Origin.AUTO: "自动", Origin.MANUAL: "人工"}
BASIS = {
    ReceivedBasis.INTERNALDATE: "邮件服务器收件时间",
    ReceivedBasis.RECEIVED: "Received 头",
    ReceivedBasis.DATE: "发件人 Date 头（不可靠）",
    ReceivedBasis.UNKNOWN: "未知",
}
ITEM_PATH = {ItemPath.MESSAGE: "整封", ItemPath.BODY: "正文"}
DELIVERY_STATE = {
    DeliveryState.INTENT: "发送中/待确认",
    DeliveryState.SENT: "已发送",
    DeliveryState.DRY_RUN: "预览（未发送）",
    DeliveryState.RETRY: "待重试",
    DeliveryState.FAILED: "失败",
    DeliveryState.CANCELLED: "已取消",
}
MAIL_KIND = {MailKind.REMINDER: "催报", MailKind.RECEIPT: "回执", MailKind.CORRECTION: "补正通知", MailKind.DIGEST: "日报"}
ACTION = {
    Action.ASSIGN: "人工归属",
    Action.MARK_UNRELATED: "标为无关",
    Action.UNDO: "撤销人工判断",
    Action.LEARN_CONTACT: "记住发件地址",
    Action.CONFIRM_SENDER: "确认发件人",
    Action.REJECT_SENDER: "拒绝发件人",
    Action.EXEMPT: "设为免报",
    Action.UNEXEMPT: "取消免报",
    Action.REPROCESS: "重新处理",
    Action.EXPORT_REPORTS: "导出报告文件",
    Action.STATUS_CHANGE: "状态变化",
    Action.USER_ADD: "新建账号",
    Action.USER_DISABLE: "停用账号",
    Action.USER_ENABLE: "启用账号",
    Action.USER_PASSWORD: "修改密码",
    Action.USER_ROLE: "修改角色",
    Action.SEND_REMINDERS: "执行催报",
    Action.NOTE: "备注",
}
SENDER_TRUST = {
    SenderTrust.VERIFIED: "已验证",
    SenderTrust.KNOWN: "已知联系人",
    SenderTrust.UNKNOWN: "发件人待确认",
    SenderTrust.FAILED: "验证失败",
}
DELIVERY_OUTCOME = {
    DeliveryOutcome.SENT: "已发送",
    DeliveryOutcome.DRY_RUN: "已写入发件箱（预览，未发送）",
    DeliveryOutcome.RETRY: "暂时失败，下次重试",
    DeliveryOutcome.FAILED: "发送失败",
    DeliveryOutcome.ALREADY: "此前已处理",
    DeliveryOutcome.WAITING: "待重发（预览模式不发送）",
    DeliveryOutcome.CANCELLED: "已取消",
}
REFUSAL = {
    Refusal.EMPTY: "空文件",
    Refusal.DOCUMENT: "其他类型的文件",
    Refusal.NOT_MAIL: "不是邮件",
    Refusal.UNREADABLE: "无法读取",
    Refusal.DAMAGED_ENTRY: "mbox 中的邮件已损坏",
    Refusal.STORE_FAILED: "保存失败",
}
SOURCE = {"file": "文件", "imap": "邮箱（文件夹/UIDVALIDITY/UID）"}

_BY_CLASS: dict[type[StrEnum], dict] = {
    Status: STATUS,
    MessageKind: KIND,
    Kind: {Kind(k.value): v for k, v in KIND.items() if k.value in Kind._value2member_map_},
    Channel: CHANNEL,
    Origin: ORIGIN,
    ReceivedBasis: BASIS,
    ItemPath: ITEM_PATH,
    DeliveryState: DELIVERY_STATE,
    DeliveryOutcome: DELIVERY_OUTCOME,
    MailKind: MAIL_KIND,
    Action: ACTION,
    SenderTrust: SENDER_TRUST,
    Refusal: REFUSAL,
}


def label(value: StrEnum | str, as_: type[StrEnum] | None = None) -> str:
    """The Chinese label of `value` (read as enum `as_` when it is a plain string); the value itself if none."""
    if as_ is not None and not isinstance(value, as_):
        try:
            value = as_(value)
        except ValueError:
            return str(value)
    if isinstance(value, StrEnum):
        return _BY_CLASS.get(type(value), {}).get(value, str(value))
    return str(value)
