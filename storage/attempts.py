"""Count processing attempts per message, so one message cannot block the queue forever.

`begin_attempt` is committed (durably) before a message is parsed and attributed; the
row's result (`save_parse` / `save_parse_failure`) is written with `end_attempts` in the
same transaction.  A run that hangs, is stopped or is killed -9 in between leaves the
count raised; the caller gives up once it reaches its limit.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from .schema import messages


def begin_attempt(conn: Connection, message_id: int) -> int:
    """Record one more attempt at processing `message_id`; returns how many have been started."""
    raised = update(messages).where(messages.c.id == message_id).values(attempts=messages.c.attempts + 1)
    return int(conn.execute(raised.returning(messages.c.attempts)).scalar_one())


def end_attempts(conn: Connection, message_id: int) -> None:
    """The message was processed (ok or failed): its count starts again at zero."""
    conn.execute(update(messages).where(messages.c.id == message_id).values(attempts=0))


def fetch_attempts(conn: Connection, message_id: int) -> int:
    return int(conn.execute(select(messages.c.attempts).where(messages.c.id == message_id)).scalar_one())
