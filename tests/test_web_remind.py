"""催报与回执 "send now for selected units", the overdue list's contacts, and the console's mail cache.

GIVEN the project's roster, bureaus and contacts, an empty campaign (nobody has reported) and a real
aiosmtpd server on 127.0.0.1,
WHEN a clerk sends the reminders of chosen units now (library, `intake remind --unit`, the console
over HTTP and in a real chromium) while the scheduled pass may run too,
THEN exactly the mails covering those units go out, through the ledger, once — and the scheduled
pass sends the rest and nothing of theirs again.  Expectations come from the CSV files.
"""

from __future__ import annotations

import csv
import re
import threading
import warnings
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette suggests httpx2; httpx is what is pinned
    from starlette.testclient import TestClient

from pipeline.config import Config, load_config
from pipeline.context import open_context
from pipeline.errors import NotFoundError
from pipeline.outbound.reminders import run_reminders
from pipeline.outputs.snapshot import MailFacts, build_snapshot
from pipeline.users import add_user
from pipeline.web.app import create_app
from pipeline.web.cache import MailCache
from storage.ledger import fetch_ledger
from tests.browser import ConsoleServer, chromium, screenshot  # noqa: F401 - chromium is a fixture
from tests.conftest import ROOT, write_config
from tests.smtp import SmtpServer, record_report, simple_mail, smtp_config
from tests.webfixtures import CSRF, PASSWORD

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TZ = ZoneInfo("Asia/Shanghai")
BEFORE = datetime(2024, 7, 8, 9, 5, tzinfo=TZ)  # the before-deadline reminder: every unit still pending
OVERDUE = datetime(2024, 7, 12, 9, 5, tzinfo=TZ)


def _csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader((ROOT / "data" / name).read_text(encoding="utf-8-sig").splitlines()))


ROSTER = _csv("roster.csv")
BUREAUS = _csv("bureaus.csv")
BUREAU_ROWS = {int(b["roster_row"]) for b in BUREAUS if b["roster_row"]}
CONTACTED = {c["institution"] for c in _csv("contacts.csv")}
# A directly reporting hospital (not a bureau, not one of two rows that are one hospital) with contacts,
# and a district-run institution: its reminder is its bureau's one mail.
DIRECT = next(r for r in ROSTER if r["channel"] == "direct" and int(r["row"]) not in BUREAU_ROWS and not r["same_as"]
              and r["name"] in CONTACTED and not any(x["same_as"] == r["row"] for x in ROSTER))  # fmt: skip
DISTRICT_RUN = next(r for r in ROSTER if r["channel"] == "bureau")
ITS_BUREAU = next(b["name"] for b in BUREAUS if b["district"] == DISTRICT_RUN["district"])


def subject_units(server: SmtpServer, start: int = 0) -> list[str]:
    """The unit each captured reminder is for (subjects end in …提醒（unit）)."""
    return [str(c.message["Subject"]).split("提醒（", 1)[1][:-1] for c in server.captured[start:]]


def campaign(tmp_path: Path, server: SmtpServer) -> Config:
    config = load_config(write_config(tmp_path, smtp_config(server)))
    open_context(config).close()  # migrations once, before any thread
    return config


# -- the library and the CLI -----------------------------------------------------------------------


def test_send_now_for_chosen_units_sends_their_mails_and_the_scheduled_pass_the_rest(tmp_path, smtp_server):
    ctx = open_context(campaign(tmp_path, smtp_server))
    try:
        summary = run_reminders(ctx, BEFORE, units=(DIRECT["name"], DISTRICT_RUN["row"]))
        assert sorted(subject_units(smtp_server)) == sorted([DIRECT["name"], ITS_BUREAU])
        bureau_mail = next(p for p in summary.plans if p.unit == ITS_BUREAU)
        assert DISTRICT_RUN["name"] in bureau_mail.institutions and len(bureau_mail.institutions) > 1  # never cut down
        again = run_reminders(ctx, BEFORE, units=(DIRECT["name"],))
        assert len(smtp_server.captured) == 2 and {d.action for d in again.deliveries.values()} == {"already"}
        scheduled = run_reminders(ctx, BEFORE)
        units = subject_units(smtp_server)
        assert len(units) == len(set(units)) == len(scheduled.plans) - sum(bool(p.skipped) for p in scheduled.plans)
        with ctx.db.connect() as conn:
            occasions = [r.occasion for r in fetch_ledger(conn)]
        assert len(occasions) == len(set(occasions)) == len(units)
    finally:
        ctx.close()


def test_a_clerk_and_the_scheduler_at_once_send_each_occasion_once(tmp_path, smtp_server):
    config = campaign(tmp_path, smtp_server)
    barrier = threading.Barrier(2)
    results: list = []

    def run(units: tuple[str, ...]) -> None:
        ctx = open_context(config)
        try:
            barrier.wait()
            results.append(run_reminders(ctx, BEFORE, units=units))
        finally:
            ctx.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in ((), (DIRECT["name"], ITS_BUREAU))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    units = subject_units(smtp_server)
    ids = [c.message["Message-ID"] for c in smtp_server.captured]
    assert len(units) == len(set(units)) and len(ids) == len(set(ids))
    assert {DIRECT["name"], ITS_BUREAU} <= set(units)
    sent = sum(d.action == "sent" for r in results for d in r.deliveries.values())
    assert sent == len(ids)


def test_an_unknown_unit_is_refused_before_anything_is_sent(tmp_path, smtp_server):
    ctx = open_context(campaign(tmp_path, smtp_server))
    try:
        with pytest.raises(NotFoundError, match="催报单位"):
            run_reminders(ctx, BEFORE, units=(DIRECT["name"], "广州市不存在的医院"))
        assert smtp_server.captured == []
    finally:
        ctx.close()


def test_a_chosen_unit_that_has_reported_gets_nothing_and_is_told_why(tmp_path, smtp_server):
    ctx = open_context(campaign(tmp_path, smtp_server))
    try:
        raw = simple_mail(sender="xxk@example.org", subject=f"{DIRECT['name']}自查报告")
        record_report(ctx, raw, datetime(2024, 7, 8, 8, 0, tzinfo=TZ), (DIRECT["name"],))
        summary = run_reminders(ctx, BEFORE, units=(DIRECT["name"],))
        assert smtp_server.captured == [] and summary.plans == []
        assert len(summary.not_due) == 1 and summary.not_due[0].startswith(DIRECT["name"])
    finally:
        ctx.close()


def test_intake_remind_unit_is_repeatable(tmp_path, smtp_server):
    from typer.testing import CliRunner

    from pipeline.cli import app as cli_app

    campaign(tmp_path, smtp_server)
    runner = CliRunner()
    args = ["remind", "--as-of", BEFORE.isoformat(), "--unit", DIRECT["name"], "--unit", ITS_BUREAU,
            "--config", str(tmp_path / "config.toml")]  # fmt: skip
    result = runner.invoke(cli_app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert sorted(subject_units(smtp_server)) == sorted([DIRECT["name"], ITS_BUREAU])
    bad = runner.invoke(cli_app, ["remind", "--as-of", BEFORE.isoformat(), "--unit", "广州市胸科医阮",
                                  "--config", str(tmp_path / "config.toml")], env={"COLUMNS": "250"})  # fmt: skip
    assert bad.exit_code != 0 and "胸科医院" in bad.output  # the nearest name is offered
    assert len(smtp_server.captured) == 2


# -- the console over HTTP -------------------------------------------------------------------------


def _console(config: Config, moment: datetime):
    ctx = open_context(config)
    try:
        add_user(ctx, "王芳", "clerk", PASSWORD, by="test")
        add_user(ctx, "张三", "viewer", PASSWORD, by="test")
    finally:
        ctx.close()
    app = create_app(config, clock=lambda: moment)
    return app


def _logged_in(app, username: str) -> TestClient:
    c = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = CSRF.search(c.get("/login").text).group(1)
    c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"})
    return c


def test_console_sends_the_ticked_units_once_and_audits_the_clerk(tmp_path, smtp_server):
    app = _console(campaign(tmp_path, smtp_server), BEFORE)
    try:
        c = _logged_in(app, "王芳")
        page = c.get("/outbox").text
        boxes = re.findall(r'name="unit" value="([^"]+)"', page)
        assert DIRECT["name"] in boxes and ITS_BUREAU in boxes
        token = CSRF.search(page).group(1)
        form = {"csrf_token": token, "as_of": BEFORE.isoformat(), "selected": "1", "unit": [DIRECT["name"], ITS_BUREAU]}
        r = c.post("/outbox/send", data=form)
        assert r.status_code == 200 and "只催报勾选的单位" in r.text
        assert sorted(subject_units(smtp_server)) == sorted([DIRECT["name"], ITS_BUREAU])
        assert c.post("/outbox/send", data=form).status_code == 200
        assert len(smtp_server.captured) == 2  # the second click sends nothing new
        ledger = c.get("/outbox").text.split("发件箱（", 1)[1]
        assert ledger.startswith("2 封") and ledger.count("已发送") == 2
        audit = c.get("/audit?actor=王芳").text
        assert "执行催报" in audit
        none = c.post("/outbox/send", data={"csrf_token": token, "as_of": BEFORE.isoformat(), "selected": "1"})
        assert none.status_code == 400 and "勾选" in none.text and len(smtp_server.captured) == 2
        viewer = _logged_in(app, "张三")
        assert 'name="unit"' not in viewer.get("/outbox").text
        assert viewer.post("/outbox/send", data=form).status_code == 403
    finally:
        app.state.console.ctx.close()


def test_the_overdue_list_and_the_unit_page_show_whom_to_phone(tmp_path, smtp_server):
    """contacts.csv with its optional phone column: the dashboard's overdue list shows the contact unit
    (the bureau for a district-run unit without contacts of its own), person, e-mail and phone."""
    campaign(tmp_path, smtp_server)
    # The district-run unit loses its own contacts: it is then reached through its bureau.
    contacts = [c for c in _csv("contacts.csv") if c["institution"] != DISTRICT_RUN["name"]]
    assert ITS_BUREAU in {c["institution"] for c in contacts}
    phones = {}
    for n, c in enumerate(contacts):
        c["phone"] = phones.setdefault(c["institution"], f"020-8{n:07d}")
    fields = ["institution", "address", "person", "role", "phone"]
    with (tmp_path / "data" / "contacts.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(contacts)
    app = _console(load_config(tmp_path / "config.toml"), OVERDUE)
    try:
        c = _logged_in(app, "张三")
        page = c.get("/").text
        row = re.search(rf'<tr><td>{DIRECT["row"]}</td>.*?</tr>', page, re.S).group(0)
        own = next(x for x in contacts if x["institution"] == DIRECT["name"])
        assert own["person"] in row and own["address"] in row and phones[DIRECT["name"]] in row
        row = re.search(rf'<tr><td>{DISTRICT_RUN["row"]}</td>.*?</tr>', page, re.S).group(0)
        assert ITS_BUREAU in row and phones[ITS_BUREAU] in row
        unit = c.get(f"/units/{DIRECT['row']}").text
        assert phones[DIRECT["name"]] in unit and own["person"] in unit
    finally:
        app.state.console.ctx.close()


# -- the mail cache ---------------------------------------------------------------------------------


def _full(ctx) -> MailFacts:  # noqa: ANN001
    from storage.decisions import fetch_decisions
    from storage.messages import fetch_item_index, fetch_messages

    with ctx.db.connect() as conn:
        return MailFacts(tuple(fetch_messages(conn)), tuple(fetch_decisions(conn)), fetch_item_index(conn))


def test_the_mail_cache_reads_only_what_changed_and_always_equals_a_full_read(tmp_path, smtp_server):
    """GIVEN a console's mail cache WHEN mail arrives, a clerk decides and undoes, a duplicate arrives from a
    second source with a better receipt time THEN each read equals a fresh full read, and only the first is full."""
    from pipeline.clerk.assign import assign

    ctx = open_context(campaign(tmp_path, smtp_server))
    cache = MailCache()
    try:
        def check() -> None:
            assert cache.facts(ctx) == _full(ctx)

        names = [r["name"] for r in ROSTER[:4]]
        for n, name in enumerate(names[:2]):
            record_report(ctx, simple_mail(sender=f"a{n}@example.org", subject=f"{name}自查报告"),
                          datetime(2024, 7, 8, 8, n, tzinfo=TZ), (name,))  # fmt: skip
        check()
        raw = simple_mail(sender="b@example.org", subject=f"{names[2]}关于电子健康码平台和应用安全自查情况的报告")
        from pipeline.inbound.ingest import ingest_raw

        new = ingest_raw(ctx, raw, source="file", ref="new.eml").message_id
        check()
        assign(ctx, str(new), names[3], by="王芳")
        check()
        assign(ctx, str(new), "", by="王芳", undo=True)
        check()
        ingest_raw(ctx, raw, source="imap", ref="INBOX/7", received_at=datetime(2024, 7, 9, 10, 0, tzinfo=TZ))
        check()
        snap = build_snapshot(ctx, OVERDUE, mail=cache.facts(ctx))
        assert snap.statuses == build_snapshot(ctx, OVERDUE).statuses
        assert cache.full_reads == 1
    finally:
        ctx.close()


# -- in a real browser -------------------------------------------------------------------------------


def test_browser_clerk_ticks_two_units_and_sends_then_a_second_click_sends_nothing(tmp_path, smtp_server, chromium):  # noqa: F811
    config = campaign(tmp_path, smtp_server)
    ctx = open_context(config)
    try:
        add_user(ctx, "王芳", "clerk", PASSWORD, by="test")
    finally:
        ctx.close()
    server = ConsoleServer(tmp_path / "config.toml", BEFORE.isoformat())
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    context.set_default_timeout(120_000)
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # "are you sure?"
        page.goto(server.url + "/outbox")
        page.fill("input[name=username]", "王芳")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/outbox")
        for unit in (DIRECT["name"], ITS_BUREAU):
            page.check(f'#send-selected input[name=unit][value="{unit}"]')
        screenshot(page, "06_催报_勾选")
        with page.expect_navigation():
            page.click("#send-selected-units")
        assert "只催报勾选的单位" in page.content()
        assert sorted(subject_units(smtp_server)) == sorted([DIRECT["name"], ITS_BUREAU])
        page.goto(server.url + "/outbox")
        states = {u: page.locator(f'tr[data-unit="{u}"] td.ledger-state').inner_text()
                  for u in (DIRECT["name"], ITS_BUREAU, DISTRICT_RUN["name"]) if page.locator(f'tr[data-unit="{u}"]').count()}  # fmt: skip
        assert states[DIRECT["name"]] == states[ITS_BUREAU] == "已发送"
        ledger_rows = page.locator("section.card").nth(1).locator("tbody tr")
        assert ledger_rows.count() == 2
        assert {ledger_rows.nth(i).locator("td").first.inner_text() for i in range(2)} == {
            f"reminder:{u}:2024-07-08" for u in (DIRECT["name"], ITS_BUREAU)}
        screenshot(page, "06_催报_已发送")
        for unit in (DIRECT["name"], ITS_BUREAU):
            page.check(f'#send-selected input[name=unit][value="{unit}"]')
        with page.expect_navigation():
            page.click("#send-selected-units")
        assert page.locator("table.list").inner_text().count("此前已处理") == 2
        assert len(smtp_server.captured) == 2
        page.goto(server.url + "/outbox")
        assert page.locator("section.card").nth(1).locator("tbody tr").count() == 2
    finally:
        context.close()
        server.stop()
