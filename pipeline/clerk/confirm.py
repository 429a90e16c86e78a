"""A clerk's verdict on a report's sender: confirm it (and learn the address) or reject it.

`unconfirmed_senders(snapshot)` (pipeline.outputs.senders) lists the counted reports
whose sender is not a known contact.  `preview_confirmation` says what confirming a
message would do — above all which address would be learned — so the CLI (and the
console) can show it before the clerk agrees; `confirm_sender` then records the
verdict.  A confirmed sender counts as `known` for that message (and, learned, for
later mail); a rejected one is never counted (its reports stop counting; the verdict
survives reprocessing).  Both are undone with `undo=True`.

Learning is safe by construction: never a district bureau's address (nor a bureau's
Annex 1 row as the institution), never the commission's mailbox or an own-domain
address, never a sender our server failed, never the outer sender of a forwarded
message, never an address that already belongs to another institution, and only when
the message counts for one institution (or two rows that are one hospital).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete

from parsers.types import PartKind
from pipeline.campaign_data import CampaignData, load_campaign_data
from pipeline.clerk.contacts import save_learned_contact
from pipeline.context import Context, current_actor
from pipeline.domain.authenticity import check_sender
from pipeline.domain.senders import is_own_address
from pipeline.errors import IntakeError, NotFoundError
from pipeline.inbound.reparse import reparse_headers
from pipeline.outputs.history import record_status_changes
from pipeline.outputs.review import item_id, parse_item_id
from pipeline.vocab import Action, ItemPath, Kind
from storage.audit import save_audit
from storage.confirmations import CONFIRMED, REJECTED, deactivate_confirmations, save_confirmation
from storage.decisions import fetch_decisions
from storage.messages import fetch_items, fetch_message
from storage.rows import DecisionRow, ItemRow, MessageRow
from storage.schema import learned_contacts, now_utc


@dataclass(frozen=True, slots=True)
class ConfirmPreview:
    """What confirming a message's sender would do."""

    item: str
    message_id: int
    sender: str
    institutions: tuple[str, ...]  # roster names the message counts for
    learn_address: str  # the address that would be learned ("" when none)
    not_learned: str  # why no address would be learned ("" when one is)


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    item: str
    message_id: int
    verdict: str  # confirmed | rejected | undone
    sender: str
    institutions: tuple[str, ...]
    learned_address: str = ""
    status_changes: int = 0


def preview_confirmation(ctx: Context, item: str, *, data: CampaignData | None = None) -> ConfirmPreview:
    """What `confirm_sender(ctx, item)` would record and learn (nothing is written)."""
    data = data or load_campaign_data(ctx)
    message_id, _ = parse_item_id(item)
    with ctx.db.connect() as conn:
        message, items, active = _load(conn, message_id)
    institutions = _counted(active)
    address, why = learnable_address(ctx, data, message, items, active)
    return ConfirmPreview(item_id(message_id, ItemPath.MESSAGE), message_id, message.sender_address,
                          institutions, address, why)  # fmt: skip


def confirm_sender(ctx: Context, item: str, *, by: str | None = None, reject: bool = False, undo: bool = False,
                   learn: bool = True, now: datetime | None = None) -> ConfirmResult:  # fmt: skip
    """Confirm (or `reject`, or `undo` the verdict on) the sender of message `item` ("12" or "12:1").

    Confirming learns the address `preview_confirmation` names (unless `learn` is False).
    Raises NotFoundError for an unknown message, IntakeError for one that counts for nobody.
    """
    if reject and undo:
        raise IntakeError("--reject 与 --undo 不能同时使用")
    actor = current_actor(by)
    data = load_campaign_data(ctx)
    message_id, _ = parse_item_id(item)
    target = item_id(message_id, ItemPath.MESSAGE)
    learned = ""
    with ctx.db.begin() as conn:
        message, items, active = _load(conn, message_id)
        institutions = _counted(active)
        if undo:
            previous = deactivate_confirmations(conn, message_id)
            if not previous:
                raise NotFoundError(f"邮件 {message_id} 的发件人没有确认或拒绝记录可撤销")
            for row in previous:
                if row.learned_address:
                    conn.execute(delete(learned_contacts).where(and_(
                        learned_contacts.c.address == row.learned_address,
                        learned_contacts.c.learned_from == message_id)))  # fmt: skip
            save_audit(conn, actor=actor, action=Action.UNDO, target=target, institution=";".join(institutions),
                       details={"undone": [r.verdict for r in previous], "sender": message.sender_address,
                                "message_id": message_id})  # fmt: skip
            verdict = "undone"
        else:
            if not institutions and not reject:
                raise IntakeError(f"邮件 {message_id} 没有计入任何机构的报告，无需确认发件人")
            verdict = REJECTED if reject else CONFIRMED
            if verdict == CONFIRMED and learn:
                address, _why = learnable_address(ctx, data, message, items, active)
                if address and save_learned_contact(conn, institutions[0], address, message_id):
                    learned = address
            save_confirmation(conn, message_id, address=message.sender_address.strip().lower(),
                              institution=institutions[0] if institutions else "", verdict=verdict,
                              learned_address=learned, by=actor)  # fmt: skip
            action = Action.REJECT_SENDER if reject else Action.CONFIRM_SENDER
            save_audit(conn, actor=actor, action=action, target=target, institution=";".join(institutions),
                       details={"sender": message.sender_address, "message_id": message_id,
                                "learned_address": learned})  # fmt: skip
            if learned:
                save_audit(conn, actor=actor, action=Action.LEARN_CONTACT, target=target, institution=institutions[0],
                           details={"address": learned, "message_id": message_id})  # fmt: skip
    changes = record_status_changes(ctx, now or now_utc(), cause=f"{verdict} {target}", roster=data.roster)
    return ConfirmResult(target, message_id, verdict, message.sender_address, institutions, learned, changes)


def learnable_address(ctx: Context, data: CampaignData, message: MessageRow, items: dict[str, ItemRow],
                      active: list[DecisionRow]) -> tuple[str, str]:  # fmt: skip
    """(address that confirming would learn, "") or ("", why not — in the clerks' language)."""
    address = message.sender_address.strip().lower()
    if not address or "@" not in address:
        return "", "发件地址无效"
    roster = data.roster
    campaign = ctx.config.campaign
    if is_own_address(address, own_domains=campaign.own_domains, mailbox=campaign.mailbox_address):
        return "", "委内地址不作为机构联系邮箱"
    if address in data.facts.bureau_addresses:
        return "", "区卫健局的地址代多家单位报送，不作为某一机构的联系邮箱"
    institutions = _counted(active)
    groups = {roster.group(name)[0] for name in institutions}
    if len(groups) != 1:
        return "", "该邮件计入多家机构（或没有计入），地址不代表某一家机构"
    institution = next(iter(groups))
    if roster.bureau_for(institution) is not None:
        return "", "区卫健局的联系邮箱只能在联系人文件中登记"
    if any(d.via_bureau for d in active if d.kind == Kind.REPORT):
        return "", "经区卫健局转报的报告，发件地址不代表该机构"
    if not check_sender(reparse_headers(ctx, message), ctx.config.authserv_id).address_usable:
        return "", "发件人未通过本委邮件服务器校验，不记住"
    reports = [d for d in active if d.kind == Kind.REPORT and d.institution]
    if any(items.get(prefix) is not None and items[prefix].kind == PartKind.MESSAGE
           for d in reports for prefix in _prefixes(d.item_path)):  # fmt: skip
        return "", "报告在转发的邮件里，转发人不是报告的作者"
    owners = {c.institution for c in data.contacts if c.address == address}
    if owners - set(roster.group(institution)):
        return "", f"该地址已登记为其他单位（{'、'.join(sorted(owners))}）的联系邮箱"
    if owners:
        return "", "该地址已是该机构的联系邮箱"
    return address, ""


def _load(conn, message_id: int) -> tuple[MessageRow, dict[str, ItemRow], list[DecisionRow]]:  # noqa: ANN001
    message = fetch_message(conn, message_id)
    if message is None:
        raise NotFoundError(f"没有编号为 {message_id} 的邮件（用 intake senders 或 intake messages 查看编号）")
    items = {i.path: i for i in fetch_items(conn, message_id)}
    return message, items, list(fetch_decisions(conn, message_id=message_id))


def _counted(active: list[DecisionRow]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d.institution for d in active if d.kind == Kind.REPORT and d.institution))


def _prefixes(path: str) -> list[str]:
    pieces = path.split("/")
    return ["/".join(pieces[:i]) for i in range(1, len(pieces))]



