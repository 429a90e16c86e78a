"""The console's actions (POST): settle a review item, confirm a sender, exempt, reprocess,
send reminders, export, manage accounts.

Each is CSRF-checked and role-checked by `action(role)`, calls one function of
`queries` with the clerk's account name as `by=` (so the audit log names them),
and redirects (POST/redirect/GET) or renders the result.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pipeline.errors import IntakeError
from pipeline.vocab import Kind
from pipeline.web import queries
from pipeline.web.auth import Call, action
from pipeline.web.routes import as_of, attachment

SETTLE_ACTIONS = ("assign", Kind.UNRELATED, "undo", "note")


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _render(call: Call, template: str, **data: object) -> Response:
    return call.request.app.state.console.render(call, template, **data)


@action("clerk")
def review_act(call: Call) -> Response:
    """Settle one review item: assign (to the typed unit), unrelated, or undo; then go to the next item."""
    item, kind = call.arg("item"), call.arg("action")
    if kind not in SETTLE_ACTIONS:
        raise IntakeError("未知的操作")
    unit = call.arg("institution")
    if kind == "note":
        target = queries.note(call.ctx, item, call.arg("note"), by=call.user, institution=call.arg("suggestion"))
        return _back("/review/item?" + urlencode({"id": target, "done": f"已为条目 {target} 添加备注"}))
    if kind == "assign" and not unit:
        raise IntakeError("请填写机构（名称、简称或名单序号）")
    result = queries.settle(call.ctx, item, kind, unit, call.arg("note"), by=call.user, version=call.arg("version"))
    back = call.arg("back")
    following = call.arg("next")
    done = {"assign": f"已将条目 {result.item} 归属到 {result.institution}", Kind.UNRELATED: f"已将条目 {result.item} 标为无关",
            "undo": f"已撤销条目 {result.item} 的人工判断"}[kind]  # fmt: skip
    if back.startswith("/messages/") and back[len("/messages/"):].isdigit():  # undo from a message page
        return _back(back + "?" + urlencode({"done": done}))
    if following:
        return _back("/review/item?" + urlencode({"id": following, "done": done}))
    return _back("/review?" + urlencode({"done": done}))


@action("clerk")
def sender_act(call: Call) -> Response:
    queries.decide_sender(call.ctx, call.arg("item"), call.arg("decision") == "confirm", by=call.user)
    return _back("/senders")


@action("admin")
def exempt(call: Call) -> Response:
    undo = call.arg("undo") == "1"
    result = queries.exempt_unit(call.ctx, call.arg("institution"), call.arg("reason"), undo=undo, by=call.user)
    done = f"已取消 {result.institution} 的免报" if undo else f"已将 {result.institution} 设为免报"
    return _back("/actions?done=" + quote(done))


@action("clerk")
def reprocess(call: Call) -> Response:
    scope = call.arg("scope")
    ids = [t for t in call.arg("ids").replace("，", " ").replace(",", " ").split() if t]
    if scope == "all" and not call.session.user.can("admin"):
        return call.request.app.state.console.error(call.request, call.session, 403, "重新处理全部邮件需要管理员账号。")
    if scope not in ("all", "review", "selected") or (scope == "selected" and not ids):
        raise IntakeError("请选择重新处理的范围（选择“指定邮件”时请填写邮件或条目编号）")
    summary = queries.reprocess_selected(call.ctx, ids=ids if scope == "selected" else [], all_=scope == "all",
                                         needs_review=scope == "review", by=call.user, as_of=call.now)  # fmt: skip
    return _render(call, "reprocess_result.html", s=summary)


@action("clerk")
def send_reminders(call: Call) -> Response:
    """The whole pass, or (ticked `unit` boxes, with `selected=1`) only the mails covering those units."""
    units = tuple(u.strip() for u in call.form.getlist("unit") if isinstance(u, str) and u.strip()) if call.form else ()
    if call.arg("selected") == "1" and not units:
        raise IntakeError("请先勾选要催报的单位")
    summary = queries.send_reminders(call.ctx, as_of(call), by=call.user, units=units)
    return _render(call, "remind_result.html", s=summary)


@action("clerk")
def export(call: Call) -> Response:
    path, _summary = queries.export_zip(call.ctx, as_of(call), by=call.user)
    return attachment(path.read_bytes(), path.name)


@action("admin")
def user_add(call: Call) -> Response:
    user = queries.add_account(call.ctx, call.arg("username"), call.arg("role"), _form_text(call, "password"), by=call.user)
    return _back("/users?done=" + quote(f"已新建账号 {user.username}"))


@action("admin")
def user_change(call: Call) -> Response:
    change = call.arg("change")
    name = call.arg("username")
    if change == "disable":
        queries.change_account(call.ctx, name, disabled=True, by=call.user)
    elif change == "enable":
        queries.change_account(call.ctx, name, disabled=False, by=call.user)
    elif change == "role":
        queries.change_account(call.ctx, name, role=call.arg("role"), by=call.user)
    elif change == "password":
        queries.change_account(call.ctx, name, password=_form_text(call, "password"), by=call.user)
    else:
        raise IntakeError("未知的操作")
    return _back("/users?done=" + quote(f"已更新账号 {name}"))


ROUTES = [
    Route("/review/act", review_act, methods=["POST"]),
    Route("/senders/act", sender_act, methods=["POST"]),
    Route("/actions/exempt", exempt, methods=["POST"]),
    Route("/actions/reprocess", reprocess, methods=["POST"]),
    Route("/actions/export", export, methods=["POST"]),
    Route("/outbox/send", send_reminders, methods=["POST"]),
    Route("/users/add", user_add, methods=["POST"]),
    Route("/users/change", user_change, methods=["POST"]),
]


def _form_text(call: Call, name: str) -> str:
    """A form field as text, untrimmed (passwords keep their spaces); "" when absent."""
    value = call.form.get(name, "") if call.form is not None else ""
    return value if isinstance(value, str) else ""
