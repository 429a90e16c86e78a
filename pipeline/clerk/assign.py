"""A clerk's decisions: attribute an item by hand, mark it unrelated, undo, exempt a row.

Assigning never learns the sender's address: that is the separate, explicit
confirmation of the sender (`pipeline.clerk.confirm`), which shows the address first.

A manual decision outranks every automatic one for its item and survives
reprocessing (process_message replaces automatic decisions only).  Each act is
one short write transaction that also appends its audit entry; statuses that
move because of it are logged afterwards by `record_status_changes`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete

from pipeline.campaign_data import load_campaign_data
from pipeline.context import Context, current_actor
from pipeline.domain.authenticity import check_sender
from pipeline.domain.roster import load_roster, resolve_institution
from pipeline.domain.senders import classify_sender
from pipeline.errors import ConflictError, IntakeError, NotFoundError
from pipeline.inbound.reparse import reparse_headers
from pipeline.labels_zh import label
from pipeline.outputs.history import record_status_changes
from pipeline.outputs.review import item_id, parse_item_id
from pipeline.vocab import Action, ItemPath, Kind, Origin, SenderTrust
from storage.audit import save_audit
from storage.confirmations import deactivate_confirmations
from storage.decisions import deactivate_manual_decisions, fetch_decisions, save_manual_decision
from storage.exemptions import delete_exemption, fetch_exemptions, save_exemption
from storage.messages import fetch_items, fetch_message
from storage.rows import Decision, DecisionRow
from storage.schema import learned_contacts, now_utc


@dataclass(frozen=True, slots=True)
class AssignResult:
    item: str
    message_id: int
    item_path: str
    action: str  # assign | mark_unrelated | undo
    institution: str  # the institution assigned ("" for unrelated / undo)
    before: str  # what was in effect for the item before, in words
    after: str  # what is in effect now, in words
    learned_address: str = ""  # always "": assigning learns nothing (see pipeline.clerk.confirm)
    status_changes: int = 0


@dataclass(frozen=True, slots=True)
class ExemptResult:
    institution: str
    exempt: bool  # the row is exempt now
    previous_reason: str
    status_changes: int = 0


# -- assign / unrelated / undo -------------------------------------------------------------------


def assign(
    ctx: Context,
    item: str,
    institution_text: str = "",
    *,
    by: str | None = None,
    note: str = "",
    unrelated: bool = False,
    undo: bool = False,
    now: datetime | None = None,
    expect_version: str | None = None,
) -> AssignResult:
    """Attribute `item` ("12" or "12:2/1") to an institution, mark it unrelated, or undo the clerk's decision.

    `expect_version` (from `decision_version` when the clerk looked at the item): if the message's
    decisions have changed since, nothing is written and ConflictError says who acted.
    """
    if unrelated and undo:
        raise IntakeError("--unrelated 与 --undo 不能同时使用")
    actor = current_actor(by)
    data = load_campaign_data(ctx)
    message_id, path = parse_item_id(item)
    target = item_id(message_id, path)
    institution = ""
    if not unrelated and not undo:
        if not institution_text.strip():
            raise IntakeError("请给出机构（名称、别名或序号），或用 --unrelated 标为无关、--undo 撤销")
        institution = resolve_institution(data.roster, institution_text)
    with ctx.db.begin() as conn:
        message = fetch_message(conn, message_id)
        if message is None:
            raise NotFoundError(
                f"没有编号为 {message_id} 的邮件（用 intake review 或 intake messages 查看编号）"
            )
        items = {i.path: i for i in fetch_items(conn, message_id)}
        if path not in (ItemPath.MESSAGE, ItemPath.BODY) and path not in items:
            known = "、".join(item_id(message_id, p) for p in items) or "（无附件）"
            raise NotFoundError(
                f"邮件 {message_id} 没有条目 {path}；可用的条目：{target.split(':')[0]}（整封）、{known}"
            )
        active = list(fetch_decisions(conn, message_id=message_id))
        if expect_version is not None and decision_version(active) != expect_version:
            raise ConflictError(_conflict_text(active, path, target))
        before = _describe(active, path)
        # What the message counts for is changing: a confirmation of its sender (and the address it
        # taught) was for the old attribution, so the clerk confirms again if still right.
        for row in deactivate_confirmations(conn, message_id):
            if row.learned_address:
                conn.execute(delete(learned_contacts).where(and_(learned_contacts.c.address == row.learned_address,
                                                                 learned_contacts.c.learned_from == message_id)))  # fmt: skip
        if undo:
            manual = [d for d in active if d.origin == Origin.MANUAL and d.item_path == path]
            if not manual or deactivate_manual_decisions(conn, message_id, path) == 0:
                raise NotFoundError(f"条目 {target} 没有人工判断可撤销")
            for d in manual:
                _forget_learned(conn, d, message_id)
            after = _describe(list(fetch_decisions(conn, message_id=message_id)), path)
            save_audit(conn, actor=actor, action=Action.UNDO, target=target,
                       institution=";".join(d.institution for d in manual if d.institution),
                       details={"undone": before, "after": after, "message_id": message_id, "item_path": path},
                       reason=note)  # fmt: skip
            action = Action.UNDO
        else:
            base = _base_for(active, path)
            evidence = [
                {
                    "signal": "manual",
                    "institution": institution,
                    "weight": 0.0,
                    "text": f"{actor}：{note}"[:80],
                }
            ]
            for d in active:
                if d.origin == Origin.MANUAL and d.item_path == path:
                    _forget_learned(conn, d, message_id)  # the decision that taught it is being replaced
            if unrelated:
                reason = f"人工标为无关：{note}" if note else "人工标为无关"
                decision = Decision(path, Kind.UNRELATED, reason=reason, evidence=evidence)
            else:
                trust = classify_sender(message.sender_address, institution, roster=data.roster, facts=data.facts,
                                        check=check_sender(reparse_headers(ctx, message), ctx.config.authserv_id))  # fmt: skip
                if trust == SenderTrust.FAILED:  # the clerk has looked: it counts, still awaiting confirmation
                    trust = SenderTrust.UNKNOWN
                machine = [
                    e
                    for e in (base.evidence if base else [])
                    if isinstance(e, dict) and e.get("signal") != "manual"
                ]
                # Keep what the machine read (sections, via which bureau); a clerk has now looked at
                # the file, so it no longer needs a human check for being unreadable.
                decision = Decision(path, Kind.REPORT, institution=institution, confidence=1.0, evidence=evidence + machine,
                                    reason=note, sections=base.sections if base else {}, readable=True,
                                    via_bureau=base.via_bureau if base else "", sender_trust=trust)  # fmt: skip
            save_manual_decision(conn, message_id, decision, by=actor, note=note)
            after = _describe(list(fetch_decisions(conn, message_id=message_id)), path)
            action = Action.MARK_UNRELATED if unrelated else Action.ASSIGN
            save_audit(conn, actor=actor, action=action, target=target, institution=institution,
                       details={"before": before, "after": after, "message_id": message_id, "item_path": path,
                                "subject": message.subject, "sender": message.sender_address},
                       reason=note)  # fmt: skip
    changes = record_status_changes(ctx, now or now_utc(), cause=f"{action} {target}", roster=data.roster)
    return AssignResult(target, message_id, path, action, institution, before, after, "", changes)


def decision_version(active: list[DecisionRow]) -> str:
    """A short token for the decisions in effect on a message; any new decision or undo changes it."""
    ids = ",".join(str(d.id) for d in sorted(active, key=lambda d: d.id))
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


def current_version(ctx: Context, message_id: int) -> str:
    """`decision_version` of a message as stored now (what a form carries to `assign`)."""
    with ctx.db.connect() as conn:
        return decision_version(list(fetch_decisions(conn, message_id=message_id)))


def _conflict_text(active: list[DecisionRow], path: str, target: str) -> str:
    manual = sorted((d for d in active if d.origin == "manual"), key=lambda d: d.decided_at)
    mine = [d for d in manual if d.item_path == path] or manual
    if mine:
        return f"条目 {target} 已由 {mine[-1].decided_by} 处理（{_describe(active, path)}），请查看后再操作"
    return f"条目 {target} 已被他人修改（撤销或重新处理），请查看后再操作"


def _base_for(active: list[DecisionRow], path: str) -> DecisionRow | None:
    """The decision whose machine reading (sections, bureau, evidence) a manual one keeps.

    The item's own decision (an earlier manual one included); for a whole message, its most
    complete item.
    """
    mine = [d for d in active if d.item_path == path]
    if not mine and path == ItemPath.MESSAGE:
        mine = [d for d in active if d.kind in (Kind.REPORT, Kind.NEEDS_REVIEW)]
    return max(mine, key=lambda d: sum(bool(v) for v in (d.sections or {}).values()), default=None)


def _describe(active: list[DecisionRow], path: str) -> str:
    """What is in effect for one item: "人工：报告 X" / "自动：待核对（原因）"; the whole message counts too."""
    mine = [d for d in active if d.item_path == path] or [d for d in active if d.item_path == ItemPath.MESSAGE]
    if not mine:
        return ""
    parts = []
    for d in mine:
        origin = label(d.origin, Origin)
        if d.kind == Kind.REPORT:
            parts.append(f"{origin}：报告 {d.institution}")
        elif d.kind == Kind.NEEDS_REVIEW:
            parts.append(f"{origin}：待核对（{d.reason}）" if d.reason else f"{origin}：待核对")
        else:
            parts.append(f"{origin}：无关")
    return "；".join(dict.fromkeys(parts))


def _forget_learned(conn, decision: DecisionRow, message_id: int) -> None:  # noqa: ANN001
    """Undo also forgets the address that decision taught (only if it was learned from this message)."""
    for ev in decision.evidence or []:
        address = ev.get("learned_address") if isinstance(ev, dict) else None
        if address:
            conn.execute(
                delete(learned_contacts).where(
                    and_(
                        learned_contacts.c.institution == decision.institution,
                        learned_contacts.c.address == address,
                        learned_contacts.c.learned_from == message_id,
                    )
                )
            )


# -- exemptions --------------------------------------------------------------------------------


def exempt(ctx: Context, institution_text: str, reason: str = "", by: str | None = None, *, undo: bool = False,
           now: datetime | None = None) -> ExemptResult:  # fmt: skip
    """Mark a roster row exempt (it need not report) with a reason, or undo that."""
    actor = current_actor(by)
    roster = load_roster(ctx.config.campaign)
    name = resolve_institution(roster, institution_text)
    if not undo and not reason.strip():
        raise IntakeError("设为免报必须写明原因：--reason 文本")
    with ctx.db.begin() as conn:
        existing = fetch_exemptions(conn).get(name)
        previous = existing.reason if existing else ""
        if undo:
            if existing is None:
                if name in roster.exempt_names:
                    raise IntakeError(
                        f"{name} 是在配置文件 config.toml（[campaign] exempt）中设为免报的，请在那里修改"
                    )
                raise NotFoundError(f"{name} 没有被设为免报，无需撤销")
            delete_exemption(conn, name)
            save_audit(conn, actor=actor, action=Action.UNEXEMPT, target=name, institution=name,
                       details={"previous_reason": previous}, reason=reason)  # fmt: skip
        else:
            save_exemption(conn, name, reason.strip(), actor)
            save_audit(conn, actor=actor, action=Action.EXEMPT, target=name, institution=name,
                       details={"previous_reason": previous}, reason=reason.strip())  # fmt: skip
    verb = Action.UNEXEMPT if undo else Action.EXEMPT
    changes = record_status_changes(ctx, now or now_utc(), cause=f"{verb} {name}", roster=roster)
    return ExemptResult(name, not undo or name in roster.exempt_names, previous, changes)
