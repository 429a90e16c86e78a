"""A clerk's note on an item, without deciding it (e.g. "打电话问过，明天补发").

The note is an audit entry of the item (and of the institution the item suggests), so it
shows in the message's history, the unit's page and the audit log under the clerk's name.
"""

from __future__ import annotations

from pipeline.context import Context, current_actor
from pipeline.errors import IntakeError, NotFoundError
from pipeline.outputs.review import item_id, parse_item_id
from pipeline.vocab import Action
from storage.audit import save_audit
from storage.messages import fetch_message

MAX_NOTE = 500


def add_note(ctx: Context, item: str, note: str, *, by: str | None = None, institution: str = "") -> str:
    """Record `note` on `item` ("12" or "12:2/1"); returns the item id.  Empty notes are refused."""
    text = note.strip()
    if not text:
        raise IntakeError("备注不能为空")
    if len(text) > MAX_NOTE:
        raise IntakeError(f"备注最多 {MAX_NOTE} 个字")
    message_id, path = parse_item_id(item)
    target = item_id(message_id, path)
    with ctx.db.begin() as conn:
        if fetch_message(conn, message_id) is None:
            raise NotFoundError(f"没有编号为 {message_id} 的邮件")
        save_audit(conn, actor=current_actor(by), action=Action.NOTE, target=target, institution=institution,
                   details={"message_id": message_id, "item_path": path}, reason=text)  # fmt: skip
    return target
