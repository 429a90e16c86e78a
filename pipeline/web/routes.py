"""The console's pages (GET): each asks `queries` for its data and renders a template.

Roles: every page here is readable by a viewer; what a page offers to do depends
on the role (the POST routes in `actions` check it again).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.domain.status import STATUSES
from pipeline.errors import IntakeError
from pipeline.web import queries
from pipeline.web.auth import Call, page

DOWNLOAD_TYPE = "application/octet-stream"


def as_of(call: Call) -> datetime:
    """The moment a page is computed for: `?as_of=` (local date-time) or the console's clock."""
    text = call.arg("as_of")
    if not text:
        return call.now
    tz = call.ctx.config.campaign.timezone
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise IntakeError(f"时间格式不对：{text}（例：2024-07-11T09:00）") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def live(call: Call) -> bool:
    """The page is as of "now" on the real clock (cached results may then be up to a minute old)."""
    return not call.arg("as_of") and call.request.app.state.console.clock is None


def attachment(data: bytes, filename: str, content_type: str = DOWNLOAD_TYPE) -> Response:
    """A download that the browser saves and never renders (RFC 6266 name, ASCII fallback)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename) or "download"
    headers = {
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return Response(data, media_type=content_type if content_type == "message/rfc822" else DOWNLOAD_TYPE, headers=headers)


@page()
def dashboard(call: Call) -> Response:
    data = queries.dashboard_data(call.ctx, as_of(call), live=live(call))
    return call.request.app.state.console.render(call, "dashboard.html", d=data, as_of=data.as_of,
                                                 fixed=bool(call.arg("as_of")), districts=queries.districts(call.ctx))  # fmt: skip


@page()
def changes(call: Call) -> Response:
    return JSONResponse({"marker": queries.change_marker(call.ctx)})


@page()
def institutions(call: Call) -> Response:
    found = queries.find_institutions(call.ctx, call.arg("q"))
    return JSONResponse([{"row": i.row, "name": i.name, "district": i.district} for i in found])


@page()
def units(call: Call) -> Response:
    f = queries.RosterFilter(status=call.arg("status"), district=call.arg("district"), channel=call.arg("channel"),
                             needs_review=call.arg("review") == "1", unconfirmed=call.arg("unconfirmed") == "1",
                             q=call.arg("q"))  # fmt: skip
    moment = as_of(call)
    rows = queries.roster_rows(call.ctx, moment, f, live=live(call))
    return call.request.app.state.console.render(call, "units.html", rows=rows, f=f, statuses=STATUSES,
                                                 districts=queries.districts(call.ctx), as_of=moment)  # fmt: skip


@page()
def unit(call: Call) -> Response:
    detail = queries.unit_detail(call.ctx, as_of(call), int(call.request.path_params["row"]), live=live(call))
    return call.request.app.state.console.render(call, "unit.html", u=detail)


@page()
def review(call: Call) -> Response:
    return call.request.app.state.console.render(call, "review.html", items=queries.review_list(call.ctx, as_of(call), live=live(call)))


@page()
def review_item(call: Call) -> Response:
    detail = queries.review_detail(call.ctx, call.arg("id"), as_of(call), live=live(call))
    return call.request.app.state.console.render(call, "review_item.html", r=detail, done=call.arg("done"))


@page()
def senders(call: Call) -> Response:
    return call.request.app.state.console.render(call, "senders.html", senders=queries.unconfirmed_senders(call.ctx))


@page()
def messages(call: Call) -> Response:
    views, total = queries.messages_list(call.ctx, as_of(call), live=live(call), q=call.arg("q"), unit=call.arg("unit"), day_from=call.arg("from"),
                                         day_to=call.arg("to"))  # fmt: skip
    return call.request.app.state.console.render(call, "messages.html", views=views, total=total)


@page()
def message(call: Call) -> Response:
    detail = queries.message_detail(call.ctx, int(call.request.path_params["id"]))
    return call.request.app.state.console.render(call, "message.html", m=detail)


@page()
def message_raw(call: Call) -> Response:
    d = queries.raw_download(call.ctx, int(call.request.path_params["id"]))
    return attachment(d.data, d.filename, d.content_type)


@page()
def message_part(call: Call) -> Response:
    d = queries.part_download(call.ctx, int(call.request.path_params["id"]), call.arg("path"))
    return attachment(d.data, d.filename)


@page()
def message_part_view(call: Call) -> Response:
    """PDF and images only, by their sniffed type, for an <iframe>/<img>; anything else is refused."""
    d = queries.part_download(call.ctx, int(call.request.path_params["id"]), call.arg("path"))
    if d.content_type not in queries.INLINE_TYPES:
        return call.request.app.state.console.error(call.request, call.session, 415, "此类文件不能在浏览器中直接显示，请下载查看。")
    # A PDF opens in the browser's own viewer; an image gets a sandbox too (no script, no origin).
    csp = "default-src 'none'" if d.content_type == "application/pdf" else "default-src 'none'; sandbox"
    return Response(d.data, media_type=d.content_type, headers={"Content-Disposition": "inline",
                                                                "Content-Security-Policy": csp})  # fmt: skip


@page()
def outbox(call: Call) -> Response:
    moment = as_of(call)
    preview = queries.reminder_preview(call.ctx, moment, live=live(call))
    ledger, failing = queries.outbox_rows(call.ctx, moment, live=live(call))
    return call.request.app.state.console.render(call, "outbox.html", p=preview, ledger=ledger, failing=failing,
                                                 as_of=moment)  # fmt: skip


@page()
def actions_page(call: Call) -> Response:
    return call.request.app.state.console.render(call, "actions.html", exemptions=queries.exemptions(call.ctx, as_of(call), live=live(call)),
                                                 as_of=as_of(call))  # fmt: skip


@page()
def workbook(call: Call) -> Response:
    path = queries.workbook(call.ctx, as_of(call))
    return attachment(path.read_bytes(), path.name)


@page()
def audit(call: Call) -> Response:
    rows = queries.audit_rows(call.ctx, actor=call.arg("actor"), institution=call.arg("unit"), action=call.arg("action"))
    return call.request.app.state.console.render(call, "audit.html", rows=rows[:1000], total=len(rows))


@page("admin")
def users(call: Call) -> Response:
    return call.request.app.state.console.render(call, "users.html", users=queries.accounts(call.ctx))


ROUTES = [
    Route("/", dashboard, methods=["GET"]),
    Route("/api/changes", changes, methods=["GET"]),
    Route("/api/institutions", institutions, methods=["GET"]),
    Route("/units", units, methods=["GET"]),
    Route("/units/{row:int}", unit, methods=["GET"]),
    Route("/review", review, methods=["GET"]),
    Route("/review/item", review_item, methods=["GET"]),
    Route("/senders", senders, methods=["GET"]),
    Route("/messages", messages, methods=["GET"]),
    Route("/messages/{id:int}", message, methods=["GET"]),
    Route("/messages/{id:int}/raw", message_raw, methods=["GET"]),
    Route("/messages/{id:int}/part", message_part, methods=["GET"]),
    Route("/messages/{id:int}/view", message_part_view, methods=["GET"]),
    Route("/outbox", outbox, methods=["GET"]),
    Route("/actions", actions_page, methods=["GET"]),
    Route("/actions/workbook", workbook, methods=["GET"]),
    Route("/audit", audit, methods=["GET"]),
    Route("/users", users, methods=["GET"]),
]
