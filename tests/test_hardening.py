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


_PIECES = st.sampled_from(["单位", " ", "\u3000", "\t", "\n", "\r\n", "：", ":", "（", "）", "盖章", "2024", "年", "7",
                           "月", "日", "-----", "转发的邮件", "发件人:", "自", "查", "报告", "一、", "1.", "健康码",
                           HOSPITAL, "中山三院", "a", "=", "。", "\u200b", "X"])  # fmt: skip


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
    assert result.exit_code != 0
    assert "security = plain 只能用于本机邮箱服务器" in str(result.exception)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("127.8.9.1", True), ("mail.example.com", False), ("10.0.0.1", False)])  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    from pipeline.process_guard import is_loopback

    assert is_loopback(host) is loopback
