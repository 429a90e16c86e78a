"""The console's ASGI application: templates, security headers, login, error pages.

`create_app(config)` opens the data dir once and serves the routes of
`pipeline.web.routes` (reads) and `pipeline.web.actions` (writes).  Pages are
server-rendered Jinja2 with autoescape on; every asset comes from `static/`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.config import Config
from pipeline.context import Context, open_context
from pipeline.errors import AmbiguousError, ConflictError, IntakeError, NotFoundError
from pipeline.users import ROLE_LABELS, LoginThrottledError, Session, log_in, log_out, tidy_sessions
from pipeline.web import filters
from pipeline.web.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Call, same_token, set_cookie
from storage.errors import StorageError

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent

# No inline script or style anywhere; frames only from us (PDF preview); forms post only to us.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")  # fmt: skip
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response that does not set them itself."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Console:
    """What every request shares: the context, the clock, the templates."""

    def __init__(self, ctx: Context, clock: Callable[[], datetime] | None) -> None:
        self.ctx = ctx
        self.clock = clock
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)  # fmt: skip
        filters.install(self.env, ctx.config)

    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(self.ctx.config.campaign.timezone)

    def html(self, request: Request, session: Session | None, template: str, *, status: int = 200,
             **data: Any) -> HTMLResponse:  # fmt: skip
        page = self.env.get_template(template).render(
            request=request, session=session, user=session.user if session else None,
            csrf=session.csrf_token if session else "", role_labels=ROLE_LABELS, **data)  # fmt: skip
        return HTMLResponse(page, status_code=status)

    def render(self, call: Call, template: str, **data: Any) -> HTMLResponse:
        return self.html(call.request, call.session, template, now=call.now, **data)

    def error(self, request: Request, session: Session | None, status: int, message: str,
              candidates: list[str] | None = None) -> HTMLResponse:  # fmt: skip
        return self.html(request, session, "error.html", status=status, message=message, candidates=candidates or [])

    def run(self, handler: Callable[[Call], Response], call: Call) -> Response:
        """Run a handler, turning the project's errors into a Chinese error page."""
        try:
            return handler(call)
        except ConflictError as err:
            return self.error(call.request, call.session, 409, str(err))
        except AmbiguousError as err:
            return self.error(call.request, call.session, 400, str(err), err.candidates[:15])
        except NotFoundError as err:
            return self.error(call.request, call.session, 404, str(err))
        except (IntakeError, StorageError) as err:
            return self.error(call.request, call.session, 400, str(err))
        except OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err):
                raise
            return self.error(call.request, call.session, 503, "数据库一直忙（后台程序正在大量写入），请稍后再试一次。")


def _safe_next(target: str) -> str:
    """Only a local path: never an absolute URL or a scheme-relative one (open redirect)."""
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


async def login_page(request: Request) -> Response:
    app: Console = request.app.state.console
    token = secrets.token_urlsafe(24)
    response = app.html(request, None, "login.html", login_csrf=token, next=_safe_next(request.query_params.get("next", "/")),
                        message="")  # fmt: skip
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login_submit(request: Request) -> Response:
    app: Console = request.app.state.console
    form = await request.form(max_files=0, max_fields=10)
    target = _safe_next(str(form.get("next", "/")))
    if not same_token(form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return app.error(request, None, 403, "登录表单已失效，请刷新页面后重试。")
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    address = request.client.host if request.client else ""
    try:
        session = await run_in_threadpool(log_in, app.ctx, username, password, address=address)
    except LoginThrottledError as err:
        return _login_again(app, request, str(err), target, 429)
    except IntakeError as err:
        return _login_again(app, request, str(err), target, 401)
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, session.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def _login_again(app: Console, request: Request, message: str, target: str, status: int) -> Response:
    token = secrets.token_urlsafe(24)
    response = app.html(request, None, "login.html", status=status, login_csrf=token, next=target, message=message)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def logout(request: Request) -> Response:
    app: Console = request.app.state.console
    form = await request.form(max_files=0, max_fields=10)
    token = request.cookies.get(SESSION_COOKIE, "")
    from pipeline.users import session_for

    session = await run_in_threadpool(session_for, app.ctx, token) if token else None
    if session is not None:
        if not same_token(form.get("csrf_token"), session.csrf_token):
            return app.error(request, session, 403, "表单已失效，请刷新页面后重试。")
        await run_in_threadpool(log_out, app.ctx, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def create_app(config: Config, *, clock: Callable[[], datetime] | None = None) -> Starlette:
    """The console for one data dir.  `clock` fixes "now" (demos, tests); default: the real time."""
    from pipeline.web import actions, routes

    ctx = open_context(config)
    tidy_sessions(ctx)
    console = Console(ctx, clock)
    table = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        *routes.ROUTES,
        *actions.ROUTES,
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return console.error(request, None, 404, "没有这个页面。")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        from pipeline.web.message_view import warm_up

        warm_up(ctx)
        yield
        ctx.close()

    # Forms here are a few short fields: 1 MB is plenty and bounds what an anonymous POST can cost.
    app = Starlette(routes=table, exception_handlers={404: not_found}, lifespan=lifespan, max_body_size=1_000_000)
    app.state.console = console
    app.add_middleware(SecurityHeaders)
    return app
