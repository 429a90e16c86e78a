"""Reprocess stored mail with the current code, roster and config, and say what changed.

Snapshot the effective decisions of the selected messages and every roster
row's status, process each message again (automatic decisions are
replaced; manual ones stay and keep outranking them), snapshot again and
return the difference.  Each message is its own short transaction, so the
worker can ingest at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.campaign_data import load_campaign_data
from pipeline.context import Context, current_actor
from pipeline.errors import IntakeError, NotFoundError
from pipeline.inbound.pool import processor
from pipeline.outputs.history import record_status_changes
from pipeline.outputs.review import item_id, parse_item_id
from pipeline.outputs.snapshot import build_snapshot
from pipeline.vocab import Action, ItemPath, Kind, Origin
from storage.audit import save_audit
from storage.decisions import fetch_decisions
from storage.errors import StorageError
from storage.messages import fetch_item_index, fetch_items, fetch_messages

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which messages to reprocess: explicit ids, all, those in the review queue, or received since."""

    ids: tuple[str, ...] = ()  # "12" or "12:2/1" (an item selects its message)
    all: bool = False
    needs_review: bool = False
    since: datetime | None = None

    def describe(self) -> str:
        parts = list(self.ids)
        if self.all:
            parts.append("--all")
        if self.needs_review:
            parts.append("--needs-review")
        if self.since is not None:
            parts.append(f"--since {self.since.isoformat()}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True, order=True)
class Verdict:
    """What one active decision says about an item: its kind, the institution of a report, who decided."""

    kind: Kind
    institution: str = ""
    manual: bool = False

    def as_json(self) -> dict[str, object]:
        return {"kind": str(self.kind), "institution": self.institution, "manual": self.manual}


@dataclass(frozen=True, slots=True)
class AttributionChange:
    item: str
    message_id: int
    item_path: str
    before: tuple[Verdict, ...]  # () when the item had no decision
    after: tuple[Verdict, ...]


@dataclass(frozen=True, slots=True)
class StatusChange:
    institution: str
    row: int
    before: str
    after: str


@dataclass
class ReprocessSummary:
    selected: int = 0
    processed: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # message id, reason
    attribution_changes: list[AttributionChange] = field(default_factory=list)
    status_changes: list[StatusChange] = field(default_factory=list)
    orphaned_manual: list[str] = field(default_factory=list)  # manual decisions whose item no longer exists
    logged_status_changes: int = 0


def select_messages(ctx: Context, selection: Selection) -> list[int]:
    """Message ids to reprocess, in receipt order, without duplicates."""
    if not (selection.ids or selection.all or selection.needs_review or selection.since):
        raise IntakeError("请指定要重新处理的邮件：编号、--all、--needs-review 或 --since 时间")
    with ctx.db.connect() as conn:
        ordered = [m.id for m in fetch_messages(conn)]
        chosen: set[int] = set()
        if selection.all:
            chosen.update(ordered)
        if selection.since is not None:
            chosen.update(m.id for m in fetch_messages(conn, since=selection.since))
    known = set(ordered)
    for text in selection.ids:
        message_id, path = parse_item_id(text)
        if message_id not in known:
            raise NotFoundError(f"没有编号为 {message_id} 的邮件（用 intake messages 查看编号）")
        if path not in (ItemPath.MESSAGE, ItemPath.BODY):
            with ctx.db.connect() as conn:
                if path not in {i.path for i in fetch_items(conn, message_id)}:
                    raise NotFoundError(
                        f"邮件 {message_id} 没有条目 {path}（重新处理整封邮件请只写 {message_id}）"
                    )
        chosen.add(message_id)
    if selection.needs_review:
        queue = build_snapshot(ctx, datetime.now(ctx.config.campaign.timezone)).review_items
        chosen.update(q.message_id for q in queue)
    return [m for m in ordered if m in chosen]


def reprocess(
    ctx: Context,
    selection: Selection,
    *,
    on_progress: ProgressCallback | None = None,
    by: str | None = None,
    as_of: datetime | None = None,
) -> ReprocessSummary:
    """Parse and attribute the selected messages again; return what changed."""
    actor = current_actor(by)
    moment = as_of or datetime.now(ctx.config.campaign.timezone)
    ids = select_messages(ctx, selection)
    summary = ReprocessSummary(selected=len(ids))
    wanted = set(ids)
    data = load_campaign_data(ctx)  # the roster and contacts as they are now
    decisions_before = _effective(ctx, wanted)
    statuses_before = {r.institution.name: (r.institution.row, r.status)
                       for r in build_snapshot(ctx, moment, data=data).statuses}  # fmt: skip
    with processor(ctx, data) as processing:  # parsed in the parser processes while earlier ones are recorded
        for done, message_id in enumerate(ids, 1):
            try:
                processing.push(message_id)
            except (StorageError, IntakeError, LookupError) as err:
                summary.failed.append((message_id, str(err)))
            except Exception as err:  # one bad message never stops the batch; it is listed with its reason
                log.exception("reprocess of message %s failed", message_id)
                summary.failed.append((message_id, f"{type(err).__name__}: {err}"))
            if on_progress is not None:
                on_progress(done, len(ids))
    for result in processing.results:
        summary.processed += 1
        if not result.parse_ok:
            summary.failed.append((result.message_id, result.error))
    decisions_after = _effective(ctx, wanted)
    for key in sorted(set(decisions_before) | set(decisions_after)):
        before, after = decisions_before.get(key, ()), decisions_after.get(key, ())
        if before != after:
            summary.attribution_changes.append(
                AttributionChange(item_id(*key), key[0], key[1], before, after)
            )
    for r in build_snapshot(ctx, moment, data=data).statuses:
        row, was = statuses_before.get(r.institution.name, (r.institution.row, ""))
        if was != r.status:
            summary.status_changes.append(StatusChange(r.institution.name, row, was, r.status))
    summary.orphaned_manual = _orphaned_manual(ctx, wanted)
    with ctx.db.begin() as conn:
        save_audit(conn, actor=actor, action=Action.REPROCESS, target=selection.describe(),
                   institution=";".join(c.institution for c in summary.status_changes),
                   details={"selection": selection.describe(), "selected": summary.selected,
                            "processed": summary.processed, "failed": len(summary.failed),
                            "attribution_changes": len(summary.attribution_changes),
                            "status_changes": len(summary.status_changes),
                            "changes": [[c.item, [v.as_json() for v in c.before], [v.as_json() for v in c.after]]
                                        for c in summary.attribution_changes[:200]]})  # fmt: skip
    summary.logged_status_changes = record_status_changes(ctx, moment, cause="reprocess", roster=data.roster)
    return summary


def _effective(ctx: Context, message_ids: set[int]) -> dict[tuple[int, str], tuple[Verdict, ...]]:
    """(message, item) -> the verdicts of its active decisions, sorted."""
    found: dict[tuple[int, str], set[Verdict]] = {}
    with ctx.db.connect() as conn:
        for d in fetch_decisions(conn):
            if d.message_id not in message_ids:
                continue
            verdict = Verdict(Kind(d.kind), d.institution if d.kind == Kind.REPORT else "", d.origin == Origin.MANUAL)
            found.setdefault((d.message_id, d.item_path), set()).add(verdict)
    return {key: tuple(sorted(verdicts)) for key, verdicts in found.items()}


def _orphaned_manual(ctx: Context, message_ids: set[int]) -> list[str]:
    """Manual decisions naming an item the reparse no longer has (the parser changed its paths)."""
    with ctx.db.connect() as conn:
        items = fetch_item_index(conn)
        manual = [d for d in fetch_decisions(conn) if d.origin == Origin.MANUAL and d.message_id in message_ids]
    return [
        item_id(d.message_id, d.item_path)
        for d in manual
        if d.item_path not in (ItemPath.MESSAGE, ItemPath.BODY) and (d.message_id, d.item_path) not in items
    ]
