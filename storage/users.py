"""Save and fetch console accounts, sessions and login attempts.

Nothing here hashes or checks a password: callers pass the hash in (pipeline.users).
A session row is keyed by the SHA-256 of its cookie token, so a copy of the database
does not hand out live sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from storage.db import inserted_id

from .schema import now_utc, web_login_attempts, web_sessions, web_users


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    role: str
    password_hash: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_sha256: str
    username: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def _user(r) -> UserRow:  # noqa: ANN001 - a SQLAlchemy Row
    return UserRow(r.id, r.username, r.role, r.password_hash, bool(r.disabled), r.created_at, r.updated_at)


def fetch_user(conn: Connection, username: str) -> UserRow | None:
    r = conn.execute(select(web_users).where(web_users.c.username == username)).first()
    return _user(r) if r else None


def fetch_users(conn: Connection) -> list[UserRow]:
    return [_user(r) for r in conn.execute(select(web_users).order_by(web_users.c.id))]


def save_new_user(conn: Connection, username: str, role: str, password_hash: str) -> int:
    now = now_utc()
    return inserted_id(conn.execute(
        insert(web_users).values(username=username, role=role, password_hash=password_hash, disabled=False,
                                 created_at=now, updated_at=now)  # fmt: skip
    ))


def save_user_fields(conn: Connection, username: str, **values: object) -> bool:
    """Update role / password_hash / disabled of one account; False when there is no such account."""
    result = conn.execute(
        update(web_users).where(web_users.c.username == username).values(updated_at=now_utc(), **values)
    )
    return result.rowcount == 1


# -- sessions ----------------------------------------------------------------------------------------


def save_session(conn: Connection, token_sha256: str, username: str, csrf_token: str, lifetime: timedelta) -> None:
    now = now_utc()
    conn.execute(
        insert(web_sessions).values(token_sha256=token_sha256, username=username, csrf_token=csrf_token,
                                    created_at=now, last_seen_at=now, expires_at=now + lifetime)  # fmt: skip
    )


def fetch_session(conn: Connection, token_sha256: str) -> SessionRow | None:
    """A session that has not expired, or None."""
    r = conn.execute(
        select(web_sessions).where(
            and_(web_sessions.c.token_sha256 == token_sha256, web_sessions.c.expires_at > now_utc())
        )
    ).first()
    if r is None:
        return None
    return SessionRow(r.token_sha256, r.username, r.csrf_token, r.created_at, r.last_seen_at, r.expires_at)


def save_session_seen(conn: Connection, token_sha256: str, lifetime: timedelta) -> None:
    """Slide a session's expiry forward (idle timeout)."""
    now = now_utc()
    conn.execute(
        update(web_sessions)
        .where(web_sessions.c.token_sha256 == token_sha256)
        .values(last_seen_at=now, expires_at=now + lifetime)
    )


def delete_session(conn: Connection, token_sha256: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.token_sha256 == token_sha256))


def delete_sessions_of(conn: Connection, username: str) -> int:
    """End every session of an account (disabled, or its password changed)."""
    return conn.execute(delete(web_sessions).where(web_sessions.c.username == username)).rowcount


def delete_expired_sessions(conn: Connection) -> int:
    return conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now_utc())).rowcount


# -- login attempts --------------------------------------------------------------------------------


def save_login_attempt(conn: Connection, username: str, address: str, success: bool) -> None:
    conn.execute(
        insert(web_login_attempts).values(username=username[:100], address=address[:64], at=now_utc(),
                                          success=success)  # fmt: skip
    )


def count_recent_failures(conn: Connection, *, since: datetime, username: str | None = None,
                          address: str | None = None) -> int:  # fmt: skip
    """Failed attempts since `since` for an account (after its last success) or a client address.

    A success resets an account's count, not an address's: one valid account must not let a
    client keep guessing others' passwords.
    """
    column = web_login_attempts.c.username if username is not None else web_login_attempts.c.address
    value = username if username is not None else address
    last_ok = None
    if username is not None:
        last_ok = conn.execute(
            select(func.max(web_login_attempts.c.at)).where(
                and_(column == value, web_login_attempts.c.success.is_(True), web_login_attempts.c.at >= since)
            )
        ).scalar()
    start = max(since, last_ok) if last_ok else since
    return conn.execute(
        select(func.count()).where(
            and_(column == value, web_login_attempts.c.success.is_(False), web_login_attempts.c.at > start)
        )
    ).scalar_one()


def delete_old_attempts(conn: Connection, before: datetime) -> int:
    return conn.execute(delete(web_login_attempts).where(web_login_attempts.c.at < before)).rowcount
