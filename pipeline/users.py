"""Console accounts: add, list, disable, change password, log in, sessions, login throttling.

Shared by `intake user …` and the web console (neither imports the other).
Passwords are hashed with argon2id (argon2-cffi's defaults); the plain text is
never stored or logged.  Every change to an account is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pipeline.context import Context
from pipeline.errors import IntakeError, NotFoundError
from pipeline.vocab import Action
from storage.audit import save_audit
from storage.schema import now_utc
from storage.users import (
    SessionRow,
    UserRow,
    count_recent_failures,
    delete_expired_sessions,
    delete_old_attempts,
    delete_session,
    delete_sessions_of,
    fetch_session,
    fetch_user,
    fetch_users,
    save_login_attempt,
    save_new_user,
    save_session,
    save_session_seen,
    save_user_fields,
)

ROLES = ("viewer", "clerk", "admin")
ROLE_LABELS = {"viewer": "查看", "clerk": "经办", "admin": "管理员"}
MIN_PASSWORD_LENGTH = 10
SESSION_IDLE = timedelta(hours=8)
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20

_hasher = PasswordHasher()
# Verifying against this when the account does not exist keeps the timing of both cases alike.
_DUMMY_HASH = _hasher.hash("not a real password, only for equal timing")


class LoginThrottledError(IntakeError):
    """Raised when an account or a client address has failed to log in too often recently."""


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    disabled: bool
    created_at: datetime

    def can(self, role: str) -> bool:
        """True when this account's role is `role` or above (viewer < clerk < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # the cookie value (only its SHA-256 is stored)
    user: User
    csrf_token: str


def _public(row: UserRow) -> User:
    return User(row.username, row.role, row.disabled, row.created_at)


def _check_username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > 50 or any(c.isspace() or not c.isprintable() for c in name):
        raise IntakeError("账号名不能为空、不能超过 50 个字符、不能含空格或控制字符")
    if name == "system":
        raise IntakeError("账号名 system 保留给系统自动操作")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise IntakeError(f"角色必须是 {'、'.join(ROLES)} 之一（viewer 只能查看，clerk 可以处理，admin 还可管理账号、免报、全部重新处理）")
    return role


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IntakeError(f"密码至少 {MIN_PASSWORD_LENGTH} 个字符")
    return password


def list_users(ctx: Context) -> list[User]:
    with ctx.db.connect() as conn:
        return [_public(r) for r in fetch_users(conn)]


def add_user(ctx: Context, username: str, role: str, password: str, *, by: str) -> User:
    """Create an account.  Raises IntakeError if the name is taken or the password too short."""
    name, role = _check_username(username), _check_role(role)
    hashed = _hasher.hash(_check_password(password))
    with ctx.db.begin() as conn:
        if fetch_user(conn, name) is not None:
            raise IntakeError(f"账号 {name} 已存在")
        save_new_user(conn, name, role, hashed)
        save_audit(conn, actor=by, action=Action.USER_ADD, target=name, details={"role": role})
        row = _existing(conn, name)
    return _public(row)


def set_disabled(ctx: Context, username: str, disabled: bool, *, by: str) -> User:
    """Disable (ending its sessions) or re-enable an account."""
    with ctx.db.begin() as conn:
        if not save_user_fields(conn, username, disabled=disabled):
            raise NotFoundError(f"没有账号 {username}")
        if disabled:
            delete_sessions_of(conn, username)
        save_audit(conn, actor=by, action=Action.USER_DISABLE if disabled else Action.USER_ENABLE, target=username)
        row = _existing(conn, username)
    return _public(row)


def set_password(ctx: Context, username: str, password: str, *, by: str) -> None:
    """Set a new password; every session of the account ends."""
    hashed = _hasher.hash(_check_password(password))
    with ctx.db.begin() as conn:
        if not save_user_fields(conn, username, password_hash=hashed):
            raise NotFoundError(f"没有账号 {username}")
        delete_sessions_of(conn, username)
        save_audit(conn, actor=by, action=Action.USER_PASSWORD, target=username)


def set_role(ctx: Context, username: str, role: str, *, by: str) -> None:
    role = _check_role(role)
    with ctx.db.begin() as conn:
        if not save_user_fields(conn, username, role=role):
            raise NotFoundError(f"没有账号 {username}")
        save_audit(conn, actor=by, action=Action.USER_ROLE, target=username, details={"role": role})


# -- logging in -----------------------------------------------------------------------------------


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def log_in(ctx: Context, username: str, password: str, *, address: str) -> Session:
    """Check a password and open a session.

    Raises LoginThrottledError when the account or the client address failed too often in the
    last 15 minutes (checked before the password, so guessing stops), and IntakeError with one
    message for a wrong name, a wrong password or a disabled account alike.
    """
    name = username.strip()[:100]
    since = now_utc() - THROTTLE_WINDOW
    with ctx.db.connect() as conn:
        if (count_recent_failures(conn, since=since, username=name) >= MAX_FAILURES_PER_ACCOUNT
                or count_recent_failures(conn, since=since, address=address) >= MAX_FAILURES_PER_ADDRESS):  # fmt: skip
            throttled = True
        else:
            throttled = False
        row = fetch_user(conn, name)
    if throttled:
        with ctx.db.begin() as conn:
            save_login_attempt(conn, name, address, False)
        raise LoginThrottledError("登录失败次数过多，请 15 分钟后再试")
    try:  # an unknown name is checked against a dummy hash: the answer takes as long either way
        verified: bool = _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        verified = False
    user = row if verified and row is not None and not row.disabled else None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with ctx.db.begin() as conn:
        save_login_attempt(conn, name, address, user is not None)
        if user is not None:
            save_session(conn, _token_key(token), user.username, csrf, SESSION_IDLE)
            if _hasher.check_needs_rehash(user.password_hash):
                save_user_fields(conn, user.username, password_hash=_hasher.hash(password))
    if user is None:
        raise IntakeError("账号或密码不对（或账号已停用）")
    return Session(token, _public(user), csrf)


def session_for(ctx: Context, token: str) -> Session | None:
    """The live session of a cookie token (its expiry slid forward), or None."""
    if not token or len(token) > 200:
        return None
    key = _token_key(token)
    with ctx.db.connect() as conn:
        row: SessionRow | None = fetch_session(conn, key)
        if row is None:
            return None
        user = fetch_user(conn, row.username)
    if user is None or user.disabled:
        return None
    if now_utc() - row.last_seen_at > timedelta(minutes=5):  # write at most every few minutes per session
        with ctx.db.begin() as conn:
            save_session_seen(conn, key, SESSION_IDLE)
    return Session(token, _public(user), row.csrf_token)


def log_out(ctx: Context, token: str) -> None:
    with ctx.db.begin() as conn:
        delete_session(conn, _token_key(token))


def tidy_sessions(ctx: Context) -> None:
    """Drop expired sessions and login attempts older than a day (run at console start)."""
    with ctx.db.begin() as conn:
        delete_expired_sessions(conn)
        delete_old_attempts(conn, now_utc() - timedelta(days=1))


def _existing(conn, username: str) -> UserRow:  # noqa: ANN001 - a SQLAlchemy Connection
    """The account just written in this transaction (NotFoundError if it vanished)."""
    row = fetch_user(conn, username)
    if row is None:
        raise NotFoundError(f"没有账号 {username}")
    return row
