"""Attacks on the boundaries of issue 12 (items 5, 6, 8): each test reproduces one hole and shows it closed.

- Bounded work outside the sandbox: pathological whitespace, long lines and huge bodies go
  through the whole pipeline (`intake ingest`) in bounded time; attribution has a deadline;
  a message that never finishes is given up after MAX_ATTEMPTS runs.
- The sandbox as a boundary: answers are JSON of plain values; no secret in the child's
  environment; the child drops root and cannot read the data dir; the main process is not dumpable.
- Output hygiene: `intake show` with markup and escape sequences; zero-width characters in
  names; full-width formula starts; file modes under umask 022; plain IMAP to a remote host;
  active content exported under a neutral extension.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from parsers.types import Address, DocumentText, Paragraph, ParsedMessage, ParseLimits, Part, PartKind
from pipeline.campaign_data import load_campaign_data
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.attribution import attribute_message
from pipeline.domain.bounds import bounded
from pipeline.domain.deadline import WorkTimeout, check_deadline, work_deadline
from storage.messages import fetch_messages

from .conftest import write_config
from .docfactory import minimal_docx, paragraph_xml
from .hostile import attachment, mail, report_docx

runner = CliRunner()
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HOSPITAL = "广州市第一人民医院"
TITLE = "电子健康码平台和应用安全自查报告"


def cli(config: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def _docx(*paragraphs: str) -> bytes:
    return minimal_docx("".join(paragraph_xml(p) for p in paragraphs))


# -- 5. bounded work outside the sandbox ------------------------------------------------------------

SECTIONS = ("一、自查情况", "已完成排查，未发现问题。", "二、存在问题", "无。", "三、整改措施", "持续加强管理。")


def pathological_mails() -> dict[str, bytes]:
    """Mail whose text made attribution (main process) backtrack or scan quadratically."""
    unit_spaces = _docx(f"{HOSPITAL}{TITLE}", *SECTIONS, "单位" + " " * 1500, f"报送单位（盖章）：{HOSPITAL}", "2024年7月8日")
    return {
        "unit_1500_spaces": mail(1, subject=f"{HOSPITAL}自查报告", parts=[attachment(unit_spaces, "报告.docx", DOCX)]),
        "blank_lines_40000": mail(2, subject="转发", body="\n" * 40_000 + "此致"),
        "blank_lines_crlf": mail(3, subject="转发", body="-- \r\n" + "\r\n" * 40_000 + "x"),
        "long_line": mail(4, body=("单位 " * 300_000) + "\n" + ("2024 " * 100_000)),
        "huge_body": mail(5, body=("单位" + " " * 1500 + "\n") * 3_000),
        "many_unit_paragraphs": mail(6, parts=[attachment(_docx(*(["单位" + " " * 800 + "（"] * 400)), "x.docx", DOCX)]),
        "genuine": mail(7, subject=f"{HOSPITAL}自查报告", parts=[attachment(report_docx(HOSPITAL), "自查报告.docx", DOCX)]),
    }


def test_pathological_text_goes_through_the_whole_pipeline_in_bounded_time(tmp_path: Path) -> None:
    """GIVEN "单位" + 1,500 spaces in a report, 40,000 blank lines, megabyte lines and a huge body
    WHEN `intake ingest` takes them in THEN it finishes within a minute, every message is processed
    (none left pending) and the report with the pathological line is still attributed."""
    config = write_config(tmp_path)
    folder = tmp_path / "mail"
    folder.mkdir()
    for name, raw in pathological_mails().items():
        (folder / f"{name}.eml").write_bytes(raw)
    started = time.perf_counter()
    cli(config, "ingest", str(folder))
    seconds = time.perf_counter() - started
    assert seconds < 60, f"ingest took {seconds:.1f} s"
    ctx = open_context(load_config(config))
    try:
        with ctx.db.connect() as conn:
            rows = list(fetch_messages(conn))
        assert len(rows) == 7
        assert all(r.parse_status == "ok" for r in rows), [(r.subject, r.parse_status, r.parse_error) for r in rows]
    finally:
        ctx.close()
    status = cli(config, "status", "--format", "csv", "--as-of", "2024-07-09T12:00:00+08:00")
    line = next(x for x in status.splitlines() if x.startswith(HOSPITAL + ","))
    assert ",on_time," in line


_WORDS = st.sampled_from(["单位", " ", "\u3000", "\t", "\n", "\r\n", "：", ":", "（", "）", "盖章", "2024", "年", "7",
                           "月", "日", "-----", "转发的邮件", "发件人:", "自", "查", "报告", "一、", "1.", "健康码",
                           HOSPITAL, "中山三院", "a", "=", "。", "\u200b", "X"])  # fmt: skip
_PIECES = st.one_of(_WORDS, st.text(max_size=30))  # the rules' own words, and any text at all


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pieces=st.lists(_PIECES, min_size=1, max_size=60), repeat=st.integers(1, 3000))
def test_attribution_time_is_bounded_on_arbitrary_text(campaign, pieces: list[str], repeat: int) -> None:
    """GIVEN any text made of the pieces the rules look for, repeated up to 3,000 times, as the mail's
    subject, body and a document WHEN it is attributed THEN it takes under three seconds."""
    text = "".join(pieces) * repeat
    document = DocumentText(paragraphs=tuple(Paragraph(line) for line in text.split("\n")))
    part = Part("1", text[:300] + ".docx", DOCX, DOCX, len(text), "0" * 64, PartKind.DOCUMENT, document=document)
    parsed = ParsedMessage("", text[:5000], Address(text[:300], "x@example.com"), 1, (), (), (), None, None,
                           text, "", (part,), ())  # fmt: skip
    started = time.perf_counter()
    result = attribute_message(bounded(parsed), campaign.roster, campaign.facts, campaign.recognizer)
    assert time.perf_counter() - started < 3.0
    assert result.decisions


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - CampaignData
    ctx = open_context(load_config(write_config(tmp_path_factory.mktemp("campaign"))))
    yield load_campaign_data(ctx)
    ctx.close()


def test_deadline_stops_work_and_nothing_outside_it() -> None:
    check_deadline()  # no block: never raises
    with work_deadline(0.05):
        check_deadline()
        time.sleep(0.1)
        with pytest.raises(WorkTimeout):
            check_deadline()
    check_deadline()


def test_attribution_past_its_deadline_is_a_failed_row_with_the_reason(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """GIVEN attribution that takes longer than the limit WHEN the message is ingested THEN it is recorded
    as failed with the reason (not left pending to block later runs)."""
    import pipeline.domain.matching as matching

    config = write_config(tmp_path, {"limits": {"parse_timeout_s": 1}})
    real_find = matching.NameIndex.find

    def slow_find(self, text: str, **kw):  # noqa: ANN001, ANN202
        time.sleep(0.2)
        return real_find(self, text, **kw)

    monkeypatch.setattr(matching.NameIndex, "find", slow_find)
    raw = mail(1, subject=f"{HOSPITAL}自查报告", parts=[attachment(report_docx(HOSPITAL), "自查报告.docx", DOCX)])
    (tmp_path / "a.eml").write_bytes(raw)
    cli(config, "ingest", str(tmp_path / "a.eml"))
    ctx = open_context(load_config(config))
    try:
        with ctx.db.connect() as conn:
            (row,) = fetch_messages(conn)
    finally:
        ctx.close()
    assert row.parse_status == "failed"
    assert "识别与归属超过 1 秒" in row.parse_error


def test_a_message_that_never_finishes_is_given_up_after_max_attempts(tmp_path: Path) -> None:
    """GIVEN a pending message whose processing was started MAX_ATTEMPTS times and never finished (the
    worker killed on it each time) WHEN the next run resumes THEN it is recorded as failed with the
    reason instead of being retried first for ever, and `intake reprocess` may still try it again."""
    from pipeline.inbound.process import MAX_ATTEMPTS
    from storage.attempts import begin_attempt, fetch_attempts

    config = write_config(tmp_path)
    raw = mail(1, subject=f"{HOSPITAL}自查报告", parts=[attachment(report_docx(HOSPITAL), "自查报告.docx", DOCX)])
    (tmp_path / "a.eml").write_bytes(raw)
    cli(config, "ingest", str(tmp_path / "a.eml"))
    ctx = open_context(load_config(config))
    try:
        with ctx.db.begin() as conn:
            (row,) = fetch_messages(conn)
            assert fetch_attempts(conn, row.id) == 0  # finished: the count starts again
            conn.exec_driver_sql("UPDATE messages SET parse_status = 'pending' WHERE id = ?", (row.id,))
            for _ in range(MAX_ATTEMPTS):
                begin_attempt(conn, row.id)
    finally:
        ctx.close()
    cli(config, "ingest", str(tmp_path / "a.eml"))  # resumes pending rows first
    ctx = open_context(load_config(config))
    try:
        with ctx.db.connect() as conn:
            (row,) = fetch_messages(conn)
    finally:
        ctx.close()
    assert row.parse_status == "failed"
    assert f"已尝试处理 {MAX_ATTEMPTS} 次都未完成" in row.parse_error
    cli(config, "reprocess", str(row.id))
    ctx = open_context(load_config(config))
    try:
        with ctx.db.connect() as conn:
            (row,) = fetch_messages(conn)
    finally:
        ctx.close()
    assert row.parse_status == "ok"


# -- 6. the sandbox as a boundary ---------------------------------------------------------------------


def test_parsed_messages_round_trip_through_plain_data() -> None:
    """GIVEN real sample mail of every kind (docx, pdf, xlsx, zip, attached mail) and hostile mail
    WHEN each parse is turned into plain JSON and back THEN it is equal to the original."""
    from parsers import plain
    from parsers.message import parse_message
    from tests.hostile import hostile_corpus
    from tests.test_properties import seeds

    raws = [*seeds(), *(case.raw for case in hostile_corpus()[:20])]
    raws.append(mail(9, subject=b"\xff\xfe\xb0\xa1 =?utf-8?b?5Z2P?= \x80", body="正文"))
    for raw in raws:
        parsed = parse_message(raw)
        again = plain.message_from_plain(plain.loads(plain.dumps(plain.message_to_plain(parsed))))
        assert again == parsed


@pytest.mark.parametrize("answer", [
    b'{"status": "ok", "value": {"__class__": "os.system"}}',
    b'{"status": "ok", "value": {"message_id": 1}}',
    b'["ok", null]',
    b"\x80\x04\x95",  # a pickle header
])  # fmt: skip
def test_answers_of_the_wrong_shape_are_refused(answer: bytes) -> None:
    from parsers import plain
    from pipeline.inbound.sandbox import decode_answer

    with pytest.raises((plain.PlainError, ValueError)):
        decode_answer(answer, plain.message_from_plain)


@pytest.mark.skipif(os.geteuid() != 0, reason="the child drops privileges only when started as root")
def test_the_parser_child_is_not_root_and_cannot_read_the_data_dir(tmp_path: Path) -> None:
    """GIVEN the intake running as root with its data dir (0700) WHEN the parser child is asked for its
    uid and to list the data dir THEN its uid is not 0 and the listing is refused."""
    from pipeline.inbound.sandbox import ParseSandbox, SandboxFailure

    ctx = open_context(load_config(write_config(tmp_path)))
    data_dir = ctx.config.data_dir
    ctx.close()
    box = ParseSandbox(timeout_s=30, memory_mb=1024)
    try:
        assert box.call("os:getuid") != 0 and box.call("os:geteuid") != 0
        assert box.call("os:getgroups") == []
        with pytest.raises(SandboxFailure, match="PermissionError"):
            box.call("os:listdir", str(data_dir))
        with pytest.raises(SandboxFailure, match="PermissionError"):
            box.call("tests.hostile:read_file", str(data_dir / "intake.sqlite3"))
        with pytest.raises(SandboxFailure, match="PermissionError"):  # the parent's initial environment
            box.call("tests.hostile:read_file", f"/proc/{os.getpid()}/environ")
        assert box.parse(mail(1, body="正文"), ParseLimits()).text_body == "正文"
    finally:
        box.close()


def test_the_parser_child_environment_holds_no_secret(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from pipeline.inbound.sandbox import ParseSandbox

    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "s3cret-imap")
    monkeypatch.setenv("INTAKE_SMTP_PASSWORD", "s3cret-smtp")
    box = ParseSandbox(timeout_s=30, memory_mb=1024)
    try:
        environ = box.call("tests.hostile:child_environ")
    finally:
        box.close()
    assert not any("s3cret" in v for v in environ.values())
    assert "INTAKE_IMAP_PASSWORD" not in environ


def test_passwords_leave_the_environment_once_read(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """GIVEN the mailbox and SMTP passwords in environment variables WHEN the config is loaded THEN both
    variables are gone from os.environ (no child inherits them) and the passwords still resolve."""
    config = write_config(tmp_path, {"mailbox": {"password_env": "INTAKE_T_IMAP_PW"},
                                     "smtp": {"password_env": "INTAKE_T_SMTP_PW"}})  # fmt: skip
    monkeypatch.setenv("INTAKE_T_IMAP_PW", "imap-pw")
    monkeypatch.setenv("INTAKE_T_SMTP_PW", "smtp-pw")
    cfg = load_config(config)
    assert "INTAKE_T_IMAP_PW" not in os.environ and "INTAKE_T_SMTP_PW" not in os.environ
    assert cfg.mailbox.password.resolve("[mailbox]") == "imap-pw"
    assert cfg.smtp.password.resolve("[smtp]") == "smtp-pw"
    assert "imap-pw" not in repr(cfg)


def test_the_cli_process_is_not_dumpable(tmp_path: Path) -> None:
    """GIVEN a fresh process running an `intake` command WHEN it has run THEN prctl(PR_GET_DUMPABLE) is 0."""
    import subprocess
    import sys

    config = write_config(tmp_path)
    code = ("import sys\nfrom pipeline.cli import app\nfrom pipeline.process_guard import is_dumpable\n"
            f"sys.argv = ['intake', 'roster', '--config', {str(config)!r}]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\nprint('dumpable', is_dumpable())\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().endswith("dumpable False")


def test_plain_imap_to_a_remote_host_is_refused(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """GIVEN `[mailbox] security = "plain"` and a host that is not this machine WHEN `intake poll` runs
    THEN it refuses before connecting (the password is never sent in clear text)."""
    config = write_config(tmp_path, {"mailbox": {"host": "203.0.113.7", "port": 143, "security": "plain",
                                                 "username": "u", "password_env": "INTAKE_T_PW"}})  # fmt: skip
    monkeypatch.setenv("INTAKE_T_PW", "pw")
    result = runner.invoke(app, ["poll", "--config", str(config)])
    assert result.exit_code == 2
    assert "security = plain 只能用于本机邮箱服务器" in result.output


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("127.8.9.1", True), ("mail.example.com", False), ("10.0.0.1", False)])  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    from pipeline.process_guard import is_loopback

    assert is_loopback(host) is loopback


# -- 8. output hygiene ------------------------------------------------------------------------------

ESC = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"


def _ingest(tmp_path: Path, mails: dict[str, bytes], overrides: dict | None = None) -> Path:
    config = write_config(tmp_path, overrides)
    folder = tmp_path / "mail"
    folder.mkdir(exist_ok=True)
    for name, raw in mails.items():
        (folder / f"{name}.eml").write_bytes(raw)
    cli(config, "ingest", str(folder))
    return config


def _message_id(config: Path, needle: str) -> str:
    rows = cli(config, "messages", "--format", "csv").splitlines()[1:]
    return next(r.split(",")[0] for r in rows if needle in r)


def test_show_prints_markup_and_escape_sequences_as_inert_text(tmp_path: Path) -> None:
    """GIVEN a mail whose subject is `报告[/]` with ESC sequences, and a sender name, filename and body
    full of them WHEN `intake show` prints it THEN it does not crash, `[/]` is shown literally and no
    ESC or other control character reaches the terminal (`intake messages` neither)."""
    doc = attachment(report_docx(HOSPITAL), f"报告{ESC}[bold].docx", DOCX)
    raw = mail(1, subject=f"报告[/]{ESC}\x9b31m", sender=f"[red]医院{ESC} <a@example.com>", parts=[doc],
               body=f"正文[/]{ESC}\n第二行\x08\x00")  # fmt: skip
    config = _ingest(tmp_path, {"m": raw})
    output = cli(config, "show", "1")
    assert "报告[/]" in output and "正文[/]" in output and "[red]医院" in output
    for control in ("\x1b", "\x07", "\x9b", "\x08", "\x00"):
        assert control not in output, repr(control)
    for fmt in ("table", "csv", "json"):
        listing = cli(config, "messages", "--format", fmt)
        assert "\x1b" not in listing and "\x9b" not in listing and "\x07" not in listing


def test_clean_helpers() -> None:
    from pipeline.cli.clean import plain, shown

    assert plain("a\x1b[31mb\x9bc\u202ed\te\nf") == "a[31mbcd e f"
    assert plain("a\nb\tc", lines=True) == "a\nb c"
    assert shown("报告[/]") == "报告\\[/]"


INVISIBLE = {"ZWNJ": "\u200c", "ZWJ": "\u200d", "WORD JOINER": "\u2060", "BOM": "\ufeff", "SOFT HYPHEN": "\u00ad",
             "VARIATION SELECTOR": "\ufe0f"}  # fmt: skip


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_names_are_matched_through_invisible_characters(campaign, char: str) -> None:  # noqa: ANN001
    """GIVEN a roster name with a format character or variation selector inside it WHEN it is looked up
    THEN it is found as that institution (the character no longer hides it)."""
    hidden = HOSPITAL[:4] + char + HOSPITAL[4:6] + char + HOSPITAL[6:]
    assert [m.key for m in campaign.roster.index.find(f"报送单位：{hidden}")] == [HOSPITAL]


def test_every_format_character_is_invisible_to_matching() -> None:
    import unicodedata

    from pipeline.domain.matching import normalise

    cf = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf")
    selectors = "".join(map(chr, [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]))
    assert normalise("医" + cf + selectors + "院") == "医院"


def test_a_report_with_zero_width_characters_in_its_names_is_attributed(tmp_path: Path) -> None:
    """GIVEN a report whose title and 报送单位 line have ZWNJ, ZWJ, U+2060, BOM and soft hyphens inside
    the hospital's name WHEN ingested THEN the hospital is on time (not hidden from matching)."""
    hidden = "\u200c".join(HOSPITAL[:3]) + "\u2060" + HOSPITAL[3:6] + "\ufeff\u00ad" + HOSPITAL[6:] + "\u200d"
    doc = _docx(f"{hidden}{TITLE}", *SECTIONS, f"报送单位（盖章）：{hidden}", "2024年7月8日")
    config = _ingest(tmp_path, {"m": mail(1, subject="自查报告", sender="it <it@qq.example>",
                                          parts=[attachment(doc, "报告.docx", DOCX)])})  # fmt: skip
    status = cli(config, "status", "--format", "csv", "--as-of", "2024-07-09T12:00:00+08:00")
    line = next(x for x in status.splitlines() if x.startswith(HOSPITAL + ","))
    assert ",on_time," in line


FORMULAS = ["＝HYPERLINK(\"http://evil.example\",\"点此\")", "＋cmd|' /C calc'!A0", "－1+1", "＠SUM(1)", " =1+1",
            "\u3000=1+1", "\u00a0+1", "\u200b=1", "\ufeff@SUM(1)", "﹦1", "\t=1", "\n=1"]  # fmt: skip


@pytest.mark.parametrize("value", FORMULAS)
def test_the_formula_guard_covers_full_width_and_leading_blanks(value: str) -> None:
    from pipeline.outputs.workbook import safe_text

    assert safe_text(value) == "'" + value
    assert safe_text("报告（一）=正常") == "报告（一）=正常"


def test_full_width_formulas_never_reach_csv_or_the_workbook(tmp_path: Path) -> None:
    """GIVEN subjects starting with full-width ＝ and with blanks before = WHEN `intake messages --format csv`
    and `intake report` run THEN each such cell starts with an apostrophe."""
    import csv
    import io

    import openpyxl

    from tests.hostile import anonymous_report_docx

    report = attachment(anonymous_report_docx(), "报告.docx", DOCX)  # a report naming nobody: listed for review
    mails = {f"f{i}": mail(i + 1, subject=value.replace("\t", "").replace("\n", ""), parts=[report])
             for i, value in enumerate(FORMULAS[:9])}  # fmt: skip
    config = _ingest(tmp_path, mails)
    subjects = [r["subject"] for r in csv.DictReader(io.StringIO(cli(config, "messages", "--format", "csv")))]
    assert len(subjects) == 9 and all(s.startswith("'") for s in subjects), subjects
    out = tmp_path / "report.xlsx"
    cli(config, "report", "--out", str(out))
    book = openpyxl.load_workbook(out)
    cells = [c.value for ws in book.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    hits = [c for c in cells if any(c.lstrip("'") == s.lstrip("'") for s in subjects)]
    assert hits and all(c.startswith("'") for c in hits)


def test_files_are_private_under_umask_022(tmp_path: Path) -> None:
    """GIVEN umask 022 WHEN mail is ingested, a workbook written with --out, reports exported and reminders
    previewed THEN the database (and its WAL), the workbook, every exported file and outbox mail are 0600."""
    old = os.umask(0o022)
    try:
        raw = mail(1, subject=f"{HOSPITAL}自查报告", parts=[attachment(report_docx(HOSPITAL), "自查报告.docx", DOCX)])
        config = _ingest(tmp_path, {"m": raw})
        cli(config, "report", "--out", str(tmp_path / "out" / "汇总.xlsx"))
        cli(config, "export-reports", "--to", str(tmp_path / "export"))
        cli(config, "remind", "--dry-run", "--as-of", "2024-07-11T09:00:00+08:00")
        cli(config, "report", "--as-of", "2024-07-11T09:00:00+08:00")
    finally:
        os.umask(old)
    var = tmp_path / "var"
    files = [var / "intake.sqlite3", tmp_path / "out" / "汇总.xlsx", *(tmp_path / "export").iterdir(),
             *(var / "outbox").glob("*.eml"), *(var / "reports").glob("*.xlsx")]  # fmt: skip
    files += [p for p in var.glob("intake.sqlite3-*")]
    assert len(list((tmp_path / "export").iterdir())) >= 2 and list((var / "outbox").glob("*.eml"))
    assert list((var / "reports").glob("*.xlsx"))
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in files}
    assert all(m == "0o600" for m in modes.values()), modes


def test_active_content_is_exported_under_a_neutral_extension_and_flagged(tmp_path: Path) -> None:
    """GIVEN a hospital's report as a .docm (macros) and another's as .html with a <script> WHEN
    `intake export-reports` runs THEN both are written as .bin and the index flags them as active content."""
    import openpyxl

    from tests.docfactory import DOCM_MAIN

    other = "广州市红十字会医院"
    body = "".join(paragraph_xml(t) for t in (f"{HOSPITAL}{TITLE}", *SECTIONS, f"报送单位（盖章）：{HOSPITAL}", "2024年7月8日"))
    docm = minimal_docx(body, main_type=DOCM_MAIN, extra={"word/vbaProject.bin": b"\x00" * 64})
    html = ("<html><head><title>x</title><script>alert(1)</script></head><body>"
            + "".join(f"<p>{t}</p>" for t in (f"{other}{TITLE}", *SECTIONS, f"报送单位（盖章）：{other}", "2024年7月8日"))
            + "</body></html>").encode()  # fmt: skip
    config = _ingest(tmp_path, {
        "docm": mail(1, subject="自查报告", parts=[attachment(docm, "自查报告.docm")]),
        "html": mail(2, subject="自查报告", parts=[attachment(html, "自查报告.html", "text/html")]),
    })  # fmt: skip
    out = cli(config, "export-reports", "--to", str(tmp_path / "export"))
    names = sorted(p.name for p in (tmp_path / "export").iterdir())
    active = [n for n in names if n.startswith(("01_", "02_")) or HOSPITAL in n or other in n]
    assert len(active) == 2, (names, out)
    assert all(n.endswith(".bin") for n in active), names
    assert not any(n.endswith((".docm", ".html", ".htm")) for n in names)
    sheet = openpyxl.load_workbook(tmp_path / "export" / "00_报告清单.xlsx").active
    header = [c.value for c in sheet[1]]
    flagged = {r[header.index("机构")]: r[header.index("活动内容")] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert flagged[HOSPITAL] and flagged[other], flagged
    assert "活动内容" in out


def test_bounded_cuts_only_what_is_over_its_caps() -> None:
    """GIVEN a usual message THEN bounded() returns it unchanged (same object); GIVEN 500 paragraphs of
    3,000 characters and a 5,000-character body line THEN lines are cut at LINE_CHARS, the document at
    about DOCUMENT_CHARS plus its last TAIL_PARAGRAPHS paragraphs (the signature stays)."""
    from dataclasses import replace

    from parsers.message import parse_message
    from pipeline.domain import bounds

    usual = parse_message(mail(1, subject=f"{HOSPITAL}自查报告", parts=[attachment(report_docx(HOSPITAL), "a.docx", DOCX)]))
    assert bounds.bounded(usual) is usual
    paragraphs = tuple(Paragraph(f"{i:04d}" + "x" * 2996) for i in range(500))
    part = Part("1", "a.docx", DOCX, DOCX, 1, "0" * 64, PartKind.DOCUMENT, document=DocumentText(paragraphs))
    capped = bounds.bounded(replace(usual, attachments=(part,), text_body="a" * 5000 + "\nb"))
    kept = capped.attachments[0].document.paragraphs
    assert max(len(p.text) for p in kept) == bounds.LINE_CHARS
    assert kept[-1].text.startswith("0499") and len(kept) < 500
    assert sum(len(p.text) for p in kept) <= bounds.DOCUMENT_CHARS + (bounds.TAIL_PARAGRAPHS + 1) * bounds.LINE_CHARS
    assert capped.text_body == "a" * bounds.LINE_CHARS + "\nb"


def test_error_messages_quoting_user_text_do_not_crash_or_emit_escapes(tmp_path: Path) -> None:
    """GIVEN `intake show` asked for a message named `x[/]` + ESC WHEN the error is printed (by the real
    entry point) THEN it is the Chinese error with the text shown literally: no MarkupError, no ESC."""
    import subprocess
    import sys

    config = write_config(tmp_path)
    open_context(load_config(config)).close()  # a data dir to read: `show` is read-only and creates none
    done = subprocess.run([sys.executable, "-m", "pipeline", "show", "x[/]\x1b[31m", "-c", str(config)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "没有找到邮件 x[/][31m" in done.stderr and "\x1b" not in done.stderr and "MarkupError" not in done.stderr
