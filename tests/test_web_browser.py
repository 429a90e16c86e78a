"""End-to-end: a clerk in a real headless chromium against `intake web` on the demo corpus.

GIVEN the demo corpus ingested, accounts for an admin and a clerk, and `intake web` serving it
      with its clock fixed at the demo's as-of moment,
WHEN they log in and click through the console,
THEN they settle review items from the keyboard, exempt a unit, preview reminders, download
     the workbook, and the open dashboard updates its counts by itself.
"""

from __future__ import annotations

import re
from datetime import datetime

import openpyxl
import pytest
from playwright.sync_api import expect

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.outputs.snapshot import build_snapshot
from tests.browser import ConsoleServer, chromium, screenshot  # noqa: F401 - chromium is a fixture
from tests.webfixtures import ACCOUNTS, PASSWORD, build_demo_template, copy_demo

AS_OF = "2024-07-12T09:00:00+08:00"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root, _ = build_demo_template(tmp_path_factory.mktemp("browser-demo"))
    copy = tmp_path_factory.mktemp("browser-copy")
    copy_demo(root, copy)
    srv = ConsoleServer(copy / "config.toml", AS_OF)
    yield srv
    srv.stop()


@pytest.fixture
def page(chromium, server):  # noqa: F811 - the fixture imported above
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN", accept_downloads=True)
    # Generous waits: on a shared 2-core CI machine a cold page (snapshot + sandboxed reparse) can take
    # well over Playwright's 30 s default; the assertions, not the timings, are what is tested here.
    context.set_default_timeout(120_000)
    context.set_default_navigation_timeout(120_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the console's "are you sure?" prompts
    yield page
    context.close()


def log_in(page, server, role: str) -> None:  # noqa: ANN001
    page.goto(server.url + "/")
    assert "/login" in page.url
    page.fill("input[name=username]", ACCOUNTS[role])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")


def tile(page, status: str) -> int:  # noqa: ANN001
    return int(page.locator(f'[data-status="{status}"] b').inner_text())


def queue_items(server) -> list:  # noqa: ANN001
    ctx = open_context(load_config(server.log.parent / "config.toml"))
    try:
        return list(build_snapshot(ctx, datetime.fromisoformat(AS_OF)).review_items)
    finally:
        ctx.close()


def test_clerk_settles_review_items_from_the_keyboard(page, server):
    log_in(page, server, "clerk")
    screenshot(page, "01_总览")
    page.click("text=待核对")
    screenshot(page, "03_待核对")
    before = queue_items(server)
    assert before, "the demo corpus has items to check"
    page.click("#start")
    first = re.search(r"id=([^&]+)", page.url).group(1)
    screenshot(page, "04_待核对条目")
    if page.locator('[data-key="1"]').count():
        page.keyboard.press("1")  # assign to the suggested unit
    else:
        page.keyboard.press("2")  # unrelated
    page.wait_for_selector(".notice.ok")
    assert "已将条目" in page.locator(".notice.ok").inner_text()
    after = queue_items(server)
    assert len(after) == len(before) - 1
    assert page.url != server.url + "/review/item?id=" + first
    here = page.url
    with page.expect_navigation():
        page.keyboard.press("n")  # next item, no action
    assert page.url != here and "/review" in page.url
    assert len(queue_items(server)) == len(after)
    page.goto(server.url + "/audit?actor=" + ACCOUNTS["clerk"])
    assert "人工归属" in page.content() or "标为无关" in page.content()
    screenshot(page, "08_操作记录")


def test_admin_exempts_a_unit_and_the_open_dashboard_updates_itself(page, server, chromium):  # noqa: F811
    log_in(page, server, "admin")
    before = tile(page, "exempt")
    overdue_before = tile(page, "overdue")
    # A second tab of the same clerk acts while the dashboard stays open.
    other = page.context.new_page()
    other.goto(server.url + "/units?status=overdue")
    screenshot(other, "02_报送情况")
    name = other.locator("table.list tbody tr td a").first.inner_text()
    other.goto(server.url + "/actions")
    other.fill("#exempt-form input[name=institution]", name)
    other.fill("#exempt-form input[name=reason]", "已撤并（测试）")
    other.click("#exempt-form button[type=submit]")
    other.wait_for_selector(".notice.ok")
    screenshot(other, "07_操作")
    # No reload from the test: the page's own script polls /api/changes and reloads (CSP forbids eval,
    # so the wait polls the DOM from outside).
    expect(page.locator('[data-status="exempt"] b')).to_have_text(str(before + 1), timeout=15000)
    assert tile(page, "overdue") == overdue_before - 1
    screenshot(page, "01_总览_免报后")


def test_reminder_preview_and_workbook_download(page, server, tmp_path):
    log_in(page, server, "clerk")
    page.click("text=催报与回执")
    assert "逾期提醒" in page.content()
    page.locator("details summary").first.click()
    assert "Subject:" in page.locator("details pre").first.inner_text()
    screenshot(page, "06_催报与回执")
    page.click("text=操作")
    with page.expect_download() as info:
        page.click("#download-workbook")
    target = tmp_path / "book.xlsx"
    info.value.save_as(target)
    assert info.value.suggested_filename.endswith(".xlsx")
    book = openpyxl.load_workbook(target, read_only=True)
    assert "报送情况" in book.sheetnames
    page.click("text=来信")
    screenshot(page, "05_来信")
    page.locator("table.list tbody tr td a").first.click()
    page.wait_for_load_state()
    screenshot(page, "05_来信_邮件")


def test_tls_behind_a_local_proxy_makes_the_session_cookie_secure(server):
    """X-Forwarded-Proto is believed from 127.0.0.1 (the nginx of the README): the cookie gets Secure."""
    import http.client
    import urllib.parse

    from tests.webfixtures import CSRF

    host = urllib.parse.urlsplit(server.url)
    for proto, secure in (("https", True), ("http", False)):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        conn.request("GET", "/login")
        page = conn.getresponse()
        token = CSRF.search(page.read().decode()).group(1)
        body = urllib.parse.urlencode({"username": ACCOUNTS["viewer"], "password": PASSWORD, "csrf_token": token, "next": "/"})
        conn.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"intake_login_csrf={token}",
            "X-Forwarded-Proto": proto})  # fmt: skip
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 303
        cookie = next(v for k, v in response.getheaders() if k.lower() == "set-cookie" and v.startswith("intake_session="))
        assert ("Secure" in cookie) is secure, proto
