"""A stored message with its active decisions: the read model every output and the review queue share."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.context import Context
from pipeline.vocab import ItemPath, Kind, MessageKind, Origin, ParseState
from storage.decisions import fetch_decisions
from storage.messages import fetch_messages
from storage.rows import DecisionRow, MessageRow


@dataclass(frozen=True, slots=True)
class MessageView:
    message: MessageRow
    decisions: tuple[DecisionRow, ...]

    @property
    def institutions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.institution for d in self.decisions if d.kind == Kind.REPORT and d.institution))

    @property
    def kind(self) -> str:
        """The message's kind from its active decisions (manual ones included)."""
        manual = {d.kind for d in self.decisions if d.origin == Origin.MANUAL and d.item_path == ItemPath.MESSAGE}
        if manual:
            return next(iter(manual))
        if self.message.parse_status == ParseState.FAILED:
            return MessageKind.NEEDS_REVIEW
        if self.message.parse_status == ParseState.PENDING:
            return MessageKind.UNPROCESSED
        kinds = {d.kind for d in self.decisions}
        if Kind.NEEDS_REVIEW in kinds:
            return MessageKind.NEEDS_REVIEW
        if Kind.REPORT in kinds:
            return MessageKind.REPORT
        return MessageKind.UNRELATED if kinds else MessageKind.UNPROCESSED


def build_views(messages: Iterable[MessageRow], decisions: Iterable[DecisionRow]) -> list[MessageView]:
    """Pure: each message with its active decisions, in the order of `messages`."""
    by_message: dict[int, list[DecisionRow]] = defaultdict(list)
    for decision in decisions:
        by_message[decision.message_id].append(decision)
    return [MessageView(m, tuple(by_message.get(m.id, ()))) for m in messages]


def message_views(ctx: Context) -> list[MessageView]:
    """Every stored message with its active decisions, in receipt order (whatever its receipt time)."""
    with ctx.db.connect() as conn:
        return build_views(list(fetch_messages(conn)), list(fetch_decisions(conn)))
