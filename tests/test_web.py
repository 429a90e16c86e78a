"""HTTP-level tests of the console: every route × role, CSRF, login, the clerks' actions, safe downloads.

GIVEN the demo corpus ingested into a data dir and one account per role,
WHEN a client (Starlette's TestClient over the real ASGI app and real SQLite) calls a route,
THEN the role, the CSRF token and the data decide what it gets.
"""

from __future__ import annotations

import io
import re
import warnings
from urllib.parse import quote

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette suggests httpx2; httpx is what is pinned
    from starlette.testclient import TestClient

from pipeline.context import open_context
from pipeline.inbound.ingest import ingest_raw
from pipeline.outputs.snapshot import build_snapshot
from pipeline.web.app import create_app
from tests.webfixtures import ACCOUNTS, CSRF, PASSWORD, build_demo_template, copy_demo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_template(tmp_path_factory.mktemp("web-demo"))


@pytest.fixture
def config(demo, tmp_path):
    return copy_demo(demo[0], tmp_path / "copy")


@pytest.fixture
def app(config, demo):
    as_of = demo[1]
    application = create_app(config, clock=lambda: as_of)
    yield application
    application.state.console.ctx.close()


def client(app, role: str | None = None, *, https: bool = False) -> TestClient:
    c = TestClient(app, base_url="https://127.0.0.1" if https else "http://127.0.0.1", follow_redirects=False)
    if role is not None:
        login(c, ACCOUNTS[role], PASSWORD)
    return c


def login(c: TestClient, username: str, password: str, next_: str = "/"):
    page = c.get("/login")
    token = CSRF.search(page.text).group(1)
    return c.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": next_})


def csrf_of(c: TestClient, path: str = "/") -> str:
    return CSRF.search(c.get(path).text).group(1)


def review_queue(ctx_or_app) -> list:
    """The review queue as the console sees it (as of the console's clock)."""
    app = ctx_or_app
    return list(build_snapshot(app.state.console.ctx, app.state.console.now()).review_items)


def first_review_item(app) -> str:
    return review_queue(app)[0].item


# -- route table × role -----------------------------------------------------------------------------

GET_ROUTES = {  # path -> least role
    "/": "viewer", "/api/changes": "viewer", "/api/institutions?q=1": "viewer", "/units": "viewer",
    "/units/3": "viewer", "/review": "viewer", "/review/item?id={item}": "viewer", "/senders": "viewer",
    "/messages": "viewer", "/messages/1": "viewer", "/messages/1/raw": "viewer",
    "/messages/{mid}/part?path={path}": "viewer", "/messages/{mid}/view?path={path}": "viewer",
    "/outbox": "viewer", "/actions": "viewer", "/actions/workbook": "viewer", "/audit": "viewer", "/users": "admin",
}  # fmt: skip
POST_ROUTES = {
    "/review/act": "clerk", "/senders/act": "clerk", "/actions/exempt": "admin", "/actions/reprocess": "clerk",
    "/actions/export": "clerk", "/outbox/send": "clerk", "/users/add": "admin", "/users/change": "admin",
}  # fmt: skip
RANK = {"anonymous": -1, "viewer": 0, "clerk": 1, "admin": 2}


def test_the_route_tables_here_cover_every_route_of_the_app(app):
    """A new route must be added to these tables (and so to the role tests below)."""
    served = {}
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None and hasattr(endpoint, "required_role"):
            for method in route.methods - {"HEAD"}:
                served[(method, route.path)] = endpoint.required_role
    tested = {("GET", p.split("?")[0].replace("/3", "/{row:int}").replace("/1", "/{id:int}")
               .replace("/{mid}", "/{id:int}")): r for p, r in GET_ROUTES.items()}  # fmt: skip
    tested |= {("POST", p): r for p, r in POST_ROUTES.items()}
    assert served == tested


def _concrete(app, path: str) -> str:
    item = first_review_item(app)
    mid, _, part = item.partition(":")
    return path.format(item=quote(item), mid=mid, path=quote(part or "1"))


@pytest.mark.parametrize("role", ["anonymous", "viewer", "clerk", "admin"])
def test_every_page_answers_each_role_as_its_rank_allows(app, role):
    c = client(app, None if role == "anonymous" else role)
    for template, least in GET_ROUTES.items():
        path = _concrete(app, template)
        r = c.get(path)
        if role == "anonymous":
            if path.startswith("/api/"):
                assert r.status_code == 401, path
            else:
                assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
        elif RANK[role] < RANK[least]:
            assert r.status_code == 403, path
            assert "无权" in r.text
        else:
            assert r.status_code in (200, 415), (path, r.status_code, r.text[:300])


@pytest.mark.parametrize("role", ["anonymous", "viewer", "clerk", "admin"])
def test_every_action_refuses_a_role_below_its_rank_and_any_post_without_csrf(app, role):
    c = client(app, None if role == "anonymous" else role)
    token = csrf_of(c) if role != "anonymous" else ""
    for path, least in POST_ROUTES.items():
        # Without the CSRF token: always refused, whatever the role.
        r = c.post(path, data={"item": "1", "action": "unrelated"})
        assert r.status_code == 403, (path, role)
        if role == "anonymous":
            continue
        # With the token and no other field: the role decides between 403 and the action's own answer
        # (a Chinese 400/404 for a missing field, or the result where no field is needed).
        r = c.post(path, data={"csrf_token": token})
        if RANK[role] < RANK[least]:
            assert r.status_code == 403 and "无权" in r.text, (path, role)
        else:
            assert r.status_code in (200, 303, 400, 404) and "无权" not in r.text, (path, role, r.status_code)


def test_a_viewer_changes_nothing_even_with_a_valid_token(app):
    c = client(app, "viewer")
    token = csrf_of(c)
    item = first_review_item(app)
    r = c.post("/review/act", data={"csrf_token": token, "item": item, "action": "unrelated"})
    assert r.status_code == 403
    assert first_review_item(app) == item


# -- login, cookies, headers -----------------------------------------------------------------------


def test_login_sets_a_strict_http_only_cookie_and_secure_only_over_tls(app):
    for https in (False, True):
        c = client(app, https=https)
        r = login(c, ACCOUNTS["clerk"], PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("intake_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert ("Secure" in cookie) is https


def test_wrong_password_is_refused_and_repeated_failures_are_throttled(app):
    c = client(app)
    for _ in range(5):
        r = login(c, ACCOUNTS["clerk"], "wrong password!")
        assert r.status_code == 401 and "账号或密码不对" in r.text
    r = login(c, ACCOUNTS["clerk"], PASSWORD)  # even the right password, for a while
    assert r.status_code == 429 and "次数过多" in r.text
    assert client(app, "admin").get("/").status_code == 200  # other accounts are not locked out


def test_login_without_its_form_token_is_refused(app):
    c = client(app)
    r = c.post("/login", data={"username": ACCOUNTS["clerk"], "password": PASSWORD})
    assert r.status_code == 403


def test_next_never_leaves_the_site(app):
    c = client(app)
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = login(c, ACCOUNTS["viewer"], PASSWORD, next_=evil)
        assert r.headers["location"] == "/", evil


def test_disabled_account_is_logged_out_at_once(app):
    clerk = client(app, "clerk")
    admin = client(app, "admin")
    r = admin.post("/users/change", data={"csrf_token": csrf_of(admin), "username": ACCOUNTS["clerk"], "change": "disable"})
    assert r.status_code == 303
    assert clerk.get("/").status_code == 303  # back to the login page
    assert login(client(app), ACCOUNTS["clerk"], PASSWORD).status_code == 401


def test_logout_ends_the_session(app):
    c = client(app, "viewer")
    assert c.post("/logout", data={"csrf_token": csrf_of(c)}).status_code == 303
    assert c.get("/").status_code == 303


def test_pages_carry_a_csp_without_inline_script_and_contain_none(app):
    c = client(app, "admin")
    for path in ("/", "/units", "/review", "/messages", "/messages/1", "/outbox", "/actions", "/audit", "/users",
                 "/review/item?id=" + quote(first_review_item(app))):  # fmt: skip
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert "'unsafe-inline'" not in script_src and "'self'" in script_src
        assert r.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), path  # no inline script
        assert " style=" not in r.text and "javascript:" not in r.text, path
        assert "http://" not in r.text.replace("http://127.0.0.1", "") and "https://" not in r.text, path  # no CDN


def test_mail_text_is_escaped_everywhere(app):
    ctx = app.state.console.ctx
    raw = (b"From: =?utf-8?b?" + __import__("base64").b64encode(b"<img src=x onerror=alert(1)>") + b"?= <evil@x.example>\r\n"
           b"To: wsjkw@gz.example\r\nSubject: <script>alert(1)</script>\r\nDate: Wed, 10 Jul 2024 10:00:00 +0800\r\n"
           b"Message-ID: <xss@x.example>\r\n\r\n<b>hi</b>\r\n")  # fmt: skip
    message_id = ingest_raw(ctx, raw, source="file", ref="xss.eml").message_id
    c = client(app, "viewer")
    for path in ("/messages", f"/messages/{message_id}", "/messages?q=script"):
        text = c.get(path).text
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "<img src=x" not in text


# -- downloads -------------------------------------------------------------------------------------


def test_raw_mail_and_attachments_download_and_never_render(app):
    c = client(app, "viewer")
    r = c.get("/messages/1/raw")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    assert r.content.startswith(b"Return-Path") or b"\r\nFrom:" in r.content or r.content[:5] in (b"Recei", b"From:")
    item = next(q for q in review_queue(app) if ":" in q.item)
    mid, _, path = item.item.partition(":")
    r = c.get(f"/messages/{mid}/part?path={quote(path)}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert "/" not in disposition.split("filename=")[1].split(";")[0]
    assert len(r.content) > 0


def test_only_pdf_and_images_are_shown_inline(app):
    c = client(app, "viewer")
    ctx = app.state.console.ctx
    from storage.messages import fetch_item_index

    with ctx.db.connect() as conn:
        index = fetch_item_index(conn)
    docx = next((mid, p) for (mid, p), i in index.items() if i.content_type.endswith("wordprocessingml.document"))
    r = c.get(f"/messages/{docx[0]}/view?path={quote(docx[1])}")
    assert r.status_code == 415
    pdf = next(((mid, p) for (mid, p), i in index.items() if i.content_type == "application/pdf"), None)
    if pdf is not None:
        r = c.get(f"/messages/{pdf[0]}/view?path={quote(pdf[1])}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"] == "inline"


def test_workbook_downloads_as_xlsx_for_the_chosen_moment(app):
    import openpyxl

    c = client(app, "viewer")
    r = c.get("/actions/workbook?as_of=2024-07-12T09:00")
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert ".xlsx" in r.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    assert "汇总" in book.sheetnames and "报送情况" in book.sheetnames


# -- the clerks' actions ---------------------------------------------------------------------------


def test_clerk_settles_a_review_item_and_the_audit_names_them(app):
    c = client(app, "clerk")
    queue = review_queue(app)
    item = next(q for q in queue if q.suggestion)
    page = c.get("/review/item?id=" + quote(item.item))
    version = re.search(r'name="version" value="([^"]*)"', page.text).group(1)
    r = c.post("/review/act", data={"csrf_token": csrf_of(c), "item": item.item, "version": version,
                                    "action": "assign", "institution": item.suggestion, "next": ""})  # fmt: skip
    assert r.status_code == 303
    assert item.item not in {q.item for q in review_queue(app)}
    audit = c.get("/audit?actor=" + quote(ACCOUNTS["clerk"])).text
    assert "人工归属" in audit and item.item in audit


def test_two_clerks_on_one_item_the_second_is_told_who_acted(app):
    first, second = client(app, "clerk"), client(app, "admin")
    item = first_review_item(app)
    pages = [c.get("/review/item?id=" + quote(item)).text for c in (first, second)]
    versions = [re.search(r'name="version" value="([^"]*)"', p).group(1) for p in pages]
    assert versions[0] == versions[1]
    r1 = first.post("/review/act", data={"csrf_token": csrf_of(first), "item": item, "version": versions[0],
                                         "action": "unrelated"})  # fmt: skip
    assert r1.status_code == 303
    r2 = second.post("/review/act", data={"csrf_token": csrf_of(second), "item": item, "version": versions[1],
                                          "action": "assign", "institution": "1"})  # fmt: skip
    assert r2.status_code == 409
    assert f"已由 {ACCOUNTS['clerk']} 处理" in r2.text


def test_admin_exempts_a_unit_and_the_dashboard_counts_move(app):
    c = client(app, "admin")

    def exempt_count() -> int:
        return int(re.search(r'data-status="exempt"><b>(\d+)</b>', c.get("/").text).group(1))

    before = exempt_count()
    marker = c.get("/api/changes").json()["marker"]
    overdue = re.search(r'href="/units/(\d+)"', c.get("/units?status=overdue").text).group(1)
    r = c.post("/actions/exempt", data={"csrf_token": csrf_of(c), "institution": overdue, "reason": "已撤并"})
    assert r.status_code == 303
    assert exempt_count() == before + 1
    assert c.get("/api/changes").json()["marker"] != marker
    assert ACCOUNTS["admin"] in c.get(f"/units/{overdue}").text  # the unit's audit entries name the admin
    clerk = client(app, "clerk")
    assert clerk.post("/actions/exempt", data={"csrf_token": csrf_of(clerk), "institution": "1", "reason": "x"}).status_code == 403


def test_reminder_preview_writes_nothing_and_sending_goes_through_the_ledger_once(app):
    c = client(app, "clerk")
    page = c.get("/outbox?as_of=2024-07-12T09:30")
    assert "逾期提醒" in page.text and "发件箱是空的" in page.text
    assert "Subject:" in page.text or "主题" in page.text
    data = {"csrf_token": csrf_of(c), "as_of": "2024-07-12T09:30+08:00"}
    first = c.post("/outbox/send", data=data)
    assert first.status_code == 200 and "预览模式" in first.text
    ledger = c.get("/outbox?as_of=2024-07-12T09:30").text  # the ledger as of the moment the pass ran for
    rows = ledger.count("预览（未发送）")
    assert rows > 0
    assert "预览（未发送）" not in c.get("/outbox?as_of=2024-07-12T09:00").text  # not computed yet at 09:00
    c.post("/outbox/send", data=data)
    assert c.get("/outbox?as_of=2024-07-12T09:30").text.count("预览（未发送）") == rows  # the same occasion is never recorded twice
    assert "执行催报" in c.get("/audit?actor=" + quote(ACCOUNTS["clerk"])).text


def test_reprocess_needs_review_shows_the_diff_and_all_is_for_admins(app):
    c = client(app, "clerk")
    r = c.post("/actions/reprocess", data={"csrf_token": csrf_of(c), "scope": "review"})
    assert r.status_code == 200 and "重新处理" in r.text and "归属" in r.text
    assert c.post("/actions/reprocess", data={"csrf_token": csrf_of(c), "scope": "all"}).status_code == 403


def test_export_returns_a_zip_of_the_reports(app):
    import zipfile

    c = client(app, "clerk")
    r = c.post("/actions/export", data={"csrf_token": csrf_of(c), "as_of": "2024-07-12T09:00+08:00"})
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "00_报告清单.xlsx" in names and len(names) > 50


def test_admin_adds_an_account_that_can_then_log_in(app):
    c = client(app, "admin")
    r = c.post("/users/add", data={"csrf_token": csrf_of(c), "username": "赵六", "role": "viewer", "password": "0123456789ab"})
    assert r.status_code == 303
    assert login(client(app), "赵六", "0123456789ab").status_code == 303
    short = c.post("/users/add", data={"csrf_token": csrf_of(c), "username": "钱七", "role": "viewer", "password": "short"})
    assert short.status_code == 400 and "至少" in short.text


def test_roster_filters_and_search(app):
    c = client(app, "viewer")
    overdue = c.get("/units?status=overdue").text
    assert "逾期未报" in overdue and "按时报送</td>" not in overdue
    one = c.get("/units?q=3").text
    assert one.count('href="/units/') == 1


def test_senders_page_lists_unknown_senders_and_a_clerk_confirms_one(app):
    """GIVEN the demo corpus (reports from personal mailboxes) WHEN a clerk opens 发件人待确认 THEN it lists
    exactly the library's unconfirmed submissions with the address to be learned; confirming one removes it
    and the audit log names the clerk."""
    from pipeline.outputs.senders import unconfirmed_senders
    from pipeline.outputs.snapshot import build_snapshot

    console = app.state.console
    expected = unconfirmed_senders(build_snapshot(console.ctx, console.now()))
    assert expected, "the demo corpus has reports from unknown senders"
    c = client(app, "clerk")
    page = c.get("/senders").text
    items = re.findall(r'name="item" value="([^"]+)"', page)
    assert items == [s.item for s in expected]
    first = expected[0]
    r = c.post("/senders/act", data={"csrf_token": csrf_of(c, "/senders"), "item": first.item, "decision": "confirm"})
    assert r.status_code == 303
    after = re.findall(r'name="item" value="([^"]+)"', c.get("/senders").text)
    assert first.item not in after and len(after) == len(items) - 1
    assert ACCOUNTS["clerk"] in c.get(f"/messages/{first.message_id}").text


def test_console_opens_a_database_made_before_the_console(tmp_path, demo):
    """Migration 0004 adds the account tables to an existing data dir without touching its mail."""
    config = copy_demo(demo[0], tmp_path / "old")
    with open_context(config).db.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM web_users").scalar() == 3
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar() > 100


# -- intake user ------------------------------------------------------------------------------------


def test_intake_user_commands_manage_accounts_with_the_password_from_stdin(config_path):
    from typer.testing import CliRunner

    from pipeline.cli import app as cli_app
    from pipeline.config import load_config
    from pipeline.users import log_in

    runner = CliRunner()

    def run(*args: str, stdin: str = ""):
        return runner.invoke(cli_app, [*args, "--config", str(config_path)], input=stdin, env={"COLUMNS": "200"})

    assert run("user", "add", "李文", "--role", "clerk", "--by", "管理员", stdin="a long password\n").exit_code == 0
    listed = run("user", "list")
    assert "李文" in listed.output and "clerk" in listed.output
    duplicate = run("user", "add", "李文", stdin="a long password\n")
    assert duplicate.exit_code == 2 and "已存在" in duplicate.output
    assert run("user", "add", "周八", stdin="short\n").exit_code == 2
    assert run("user", "passwd", "李文", stdin="another long one\n").exit_code == 0
    assert run("user", "role", "李文", "admin").exit_code == 0
    ctx = open_context(load_config(config_path))
    try:
        assert log_in(ctx, "李文", "another long one", address="127.0.0.1").user.role == "admin"
        assert run("user", "disable", "李文").exit_code == 0
        with pytest.raises(Exception, match="账号或密码不对"):
            log_in(ctx, "李文", "another long one", address="127.0.0.1")
        from pipeline.outputs.audit import audit_records, fetch_trail

        actions = [(r["actor"], r["action"]) for r in audit_records(fetch_trail(ctx))]
        assert ("管理员", "user_add") in actions and any(a == "user_disable" for _, a in actions)
    finally:
        ctx.close()


def test_a_clerk_undoes_a_manual_decision_from_the_message_page(app):
    c = client(app, "clerk")
    item = first_review_item(app)
    mid = item.partition(":")[0]
    page = c.get("/review/item?id=" + quote(item)).text
    version = re.search(r'name="version" value="([^"]*)"', page).group(1)
    c.post("/review/act", data={"csrf_token": csrf_of(c), "item": item, "version": version, "action": "unrelated"})
    assert item not in {q.item for q in review_queue(app)}
    message = c.get(f"/messages/{mid}").text
    assert "撤销" in message
    form = re.search(r'<form method="post" action="/review/act" class="inline undo">(.*?)</form>', message, re.S).group(1)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))
    assert fields["item"] == item
    r = c.post("/review/act", data=fields)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/messages/{mid}?")
    assert item in {q.item for q in review_queue(app)}


def test_the_dashboard_sees_a_change_made_outside_the_console(app, config):
    """The console caches its expensive reads; a change made by another process (the CLI here) shows at once."""
    from pipeline.clerk.assign import exempt

    c = client(app, "viewer")

    def exempt_count() -> int:
        return int(re.search(r'data-status="exempt"><b>(\d+)</b>', c.get("/").text).group(1))

    before = exempt_count()
    assert exempt_count() == before  # served again (from the cache)
    other = open_context(config)  # like `intake exempt` in another process: its own engine
    try:
        overdue = re.search(r'href="/units/(\d+)"', c.get("/units?status=overdue").text).group(1)
        exempt(other, overdue, "撤并", by="命令行")
    finally:
        other.close()
    assert exempt_count() == before + 1
    assert "撤并" in c.get("/units?status=exempt").text


def test_a_hostile_attachment_is_downloaded_under_a_safe_name_and_never_shown(app):
    """GIVEN a mail whose attachment is HTML with script, named to climb out of a folder
    WHEN a clerk downloads or tries to view it THEN it comes as octet-stream under a safe name."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "x <x@evil.example>"
    msg["To"] = "xxb@gz.gov.cn"
    msg["Subject"] = "附件"
    msg["Date"] = "Wed, 10 Jul 2024 10:00:00 +0800"
    msg.set_content("见附件")
    msg.add_attachment(b"<html><script>alert(document.cookie)</script></html>", maintype="text", subtype="html",
                       filename="../../报告.html")  # fmt: skip
    message_id = ingest_raw(app.state.console.ctx, msg.as_bytes(), source="file", ref="evil.eml").message_id
    c = client(app, "viewer")
    page = c.get(f"/messages/{message_id}").text
    path = re.search(rf'/messages/{message_id}/part\?path=([^"]+)"', page).group(1)
    r = c.get(f"/messages/{message_id}/part?path={path}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    disposition = r.headers["content-disposition"]
    from urllib.parse import unquote

    name = unquote(disposition.split("filename*=UTF-8''")[1])
    assert disposition.startswith("attachment;") and name.endswith("报告.html")
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert c.get(f"/messages/{message_id}/view?path={path}").status_code == 415


def test_a_note_on_a_review_item_decides_nothing_and_is_shown_with_the_clerks_name(app):
    c = client(app, "clerk")
    item = first_review_item(app)
    r = c.post("/review/act", data={"csrf_token": csrf_of(c), "item": item, "action": "note", "note": "已电话联系，明天补发"})
    assert r.status_code == 303
    assert item in {q.item for q in review_queue(app)}  # still waiting for a decision
    page = c.get(r.headers["location"]).text
    assert "已电话联系，明天补发" in page and ACCOUNTS["clerk"] in page
    assert "备注" in c.get("/audit?action=note").text
    empty = c.post("/review/act", data={"csrf_token": csrf_of(c), "item": item, "action": "note", "note": " "})
    assert empty.status_code == 400


def test_the_console_starts_the_parse_sandbox_as_it_starts(app, config) -> None:
    """GIVEN a console whose parse sandbox is not running WHEN the console starts (its lifespan) THEN the
    sandbox's child is started in the background, so the first message a clerk opens does not wait for it."""
    import time

    from pipeline.inbound import sandbox

    assert config.isolate_parsing
    box = sandbox.shared_sandbox(timeout_s=config.parse_timeout_s, memory_mb=config.parse_memory_mb)
    box.close()
    assert box.pid is None
    with TestClient(app):
        deadline = time.monotonic() + 120
        while box.pid is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert box.pid is not None
