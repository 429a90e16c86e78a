"""Who is asking, may they, and did the form come from us: sessions, roles, CSRF.

Every route is wrapped by `page(role)` (GET) or `action(role)` (POST).  The wrapper
finds the session from the cookie (anonymous → redirect to /login), checks the
role (too low → 403), and for POST checks the form's `csrf_token` against the
session's (missing or wrong → 403) before the handler runs.  Handlers are plain
synchronous functions run in the thread pool; they receive a `Call`.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipeline.context import Context
from pipeline.users import ROLE_LABELS, Session, session_for

SESSION_COOKIE = "intake_session"
LOGIN_CSRF_COOKIE = "intake_login_csrf"
MAX_FORM_FIELDS = 200


@dataclass
class Call:
    """One authorised request, as a handler sees it."""

    request: Request
    ctx: Context
    session: Session
    form: FormData | None
    now: datetime  # the console's clock (fixed with `intake web --as-of`)

    @property
    def user(self) -> str:
        return self.session.user.username

    def arg(self, name: str, default: str = "") -> str:
        """A form field (POST) or query parameter (GET), stripped; never None."""
        source = self.form if self.form is not None else self.request.query_params
        value = source.get(name, default)
        return value.strip() if isinstance(value, str) else default


def secure_request(request: Request) -> bool:
    """Served over TLS (directly, or behind a proxy on 127.0.0.1 that said so)."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                        secure=secure_request(request))  # fmt: skip


def same_token(a: object, b: object) -> bool:
    """Both are non-empty strings and equal (compared in constant time)."""
    return isinstance(a, str) and isinstance(b, str) and bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _guard(role: str, *, post: bool) -> Callable:
    def wrap(handler: Callable[[Call], Response]) -> Callable:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            app = request.app.state.console
            token = request.cookies.get(SESSION_COOKIE, "")
            session = await run_in_threadpool(session_for, app.ctx, token) if token else None
            if session is None:
                if post or request.url.path.startswith("/api/"):
                    return app.error(request, None, 401 if not post else 403, "未登录或登录已过期，请重新登录。")
                return _login_redirect(request)
            if not session.user.can(role):
                return app.error(request, session, 403, f"您的账号（{ROLE_LABELS[session.user.role]}）无权进行此操作。")
            form = None
            if post:
                form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
                if not same_token(form.get("csrf_token"), session.csrf_token):
                    return app.error(request, session, 403, "表单已失效（缺少或不匹配的校验码），请刷新页面后重试。")
            call = Call(request, app.ctx, session, form, app.now())
            return await run_in_threadpool(app.run, handler, call)

        marked: Any = endpoint
        marked.required_role = role  # the route table test reads it
        marked.is_action = post
        return endpoint

    return wrap


def page(role: str = "viewer") -> Callable:
    """A GET route readable by `role` and above."""
    return _guard(role, post=False)


def action(role: str = "clerk") -> Callable:
    """A POST route for `role` and above; CSRF-checked."""
    return _guard(role, post=True)
