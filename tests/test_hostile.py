"""Hostile mail: the whole corpus of tests/hostile.py goes in; nothing crashes, hangs, leaks or lets a formula out.

One ingest of the corpus (module fixture, through the `intake` CLI) feeds most tests:
every file accounted for, every attack held with its reason, genuine reports still
attributed, nothing written outside the data dir, no formula in the workbook or the
CSV outputs, no header injected into outgoing mail, the data dir private.  Then the
sender-authenticity rules, and a poll + ingest whose logs must hold neither the
mailbox password nor any message body.
"""

from __future__ import annotations

import csv
import email
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from datetime import datetime
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from typer.testing import CliRunner

from parsers.message import parse_message
from parsers.types import ParseLimits, ProblemCode
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.context import Context, open_context
from pipeline.domain.authenticity import check_sender, parse_authentication_results
from pipeline.inbound.imap import poll_once as poll
from pipeline.inbound.ingest import ingest_paths
from pipeline.outbound.receipts import send_receipts

from .conftest import ROOT, write_config
from .dovecot import Account
from .hostile import (
    FORMULAS,
    INJECTED_HEADER,
    ZIP_SLIP_NAMES,
    ZIP_SLIP_PROBE,
    HostileCase,
    attachment,
    evaluate,
    hostile_corpus,
    mail,
    write_corpus,
)

runner = CliRunner()
TZ = ZoneInfo("Asia/Shanghai")
DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Ingested:
    root: Path
    config: Path
    folder: Path
    cases: list[HostileCase]
    paths: list[Path]
    ctx: Context
    before: set[str]  # every path under root before the ingest
    seconds: float


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def cli(config: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """GIVEN the hostile corpus written as .eml files WHEN `intake ingest` runs on the folder (from a
    scratch working directory, with TMPDIR inside the test folder) THEN this is the state every test reads."""
    root = tmp_path_factory.mktemp("hostile")
    config = write_config(root)
    cases = hostile_corpus()
    folder = root / "mail"
    paths = write_corpus(folder, cases)
    for sub in ("cwd", "tmp"):
        (root / sub).mkdir()
    before = tree(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root / "cwd")
        mp.setenv("TMPDIR", str(root / "tmp"))
        mp.setattr(tempfile, "tempdir", str(root / "tmp"))
        started = time.perf_counter()
        output = cli(config, "ingest", str(folder), code=1)  # 1: the files that are not mail were refused
        seconds = time.perf_counter() - started
    assert "新增" in output
    ctx = open_context(load_config(config))
    yield Ingested(root, config, folder, cases, paths, ctx, before, seconds)
    ctx.close()


# -- the corpus ---------------------------------------------------------------------------------


def test_every_file_is_accounted_for(ingested: Ingested) -> None:
    """GIVEN every corpus file WHEN ingested THEN each mail has a stored row (byte-identical files share one)
    and each file that is not mail has none, its refusal recorded instead."""
    verdicts = evaluate(ingested.ctx, ingested.folder, ingested.cases)
    mails = [v for v in verdicts if not v.case.refused]
    assert mails and all(v.message_id is not None for v in mails), [v.case.name for v in mails if v.message_id is None]
    assert len({v.message_id for v in mails}) == len(mails)
    refused = [v for v in verdicts if v.case.refused]
    assert len(refused) == 3 and all(v.held for v in refused), [(v.case.name, v.problem) for v in refused]
    from sqlalchemy import select

    from storage.schema import message_sources

    with ingested.ctx.db.connect() as conn:
        refs = {r.ref: r.message_id for r in conn.execute(select(message_sources))}
    not_mail = {str(ingested.folder / c.filename) for c in ingested.cases if c.refused}
    assert {str(p) for p in ingested.paths} - not_mail <= set(refs) and not not_mail & set(refs)
    copy = ingested.paths[-1]
    assert refs[str(copy)] == refs[str(ingested.paths[0])]


def test_every_attack_is_held_with_its_reason_and_genuine_reports_are_attributed(ingested: Ingested) -> None:
    """GIVEN the ingested corpus THEN each case ended as it must: a row, the refusal reason recorded,
    the genuine report beside the attack attributed to its institution, forged senders sent to review."""
    verdicts = evaluate(ingested.ctx, ingested.folder, ingested.cases)
    failures = [f"{v.case.name}: {v.problem}" for v in verdicts if not v.held]
    assert not failures, "\n".join(failures)
    assert sum(1 for c in ingested.cases if c.genuine) >= 12


def test_whole_corpus_is_quick(ingested: Ingested) -> None:
    assert ingested.seconds < 120, f"the hostile corpus took {ingested.seconds:.0f} s"


@pytest.mark.parametrize(
    "name", ["2-000-level-multipart-nesting", "5-mb-header-line", "5-mb-of-encoded-words"]
)
def test_pathological_structures_parse_in_seconds(ingested: Ingested, name: str) -> None:
    """GIVEN 2,000-level multipart nesting or a 5 MB header WHEN parsed THEN it takes seconds, not minutes."""
    case = next(c for c in ingested.cases if name in c.name)
    started = time.perf_counter()
    parsed = parse_message(case.raw)
    assert time.perf_counter() - started < 5
    assert parsed.problems


def test_xxe_never_reads_the_file(ingested: Ingested) -> None:
    case = next(c for c in ingested.cases if "xxe" in c.name)
    parsed = parse_message(case.raw)
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    texts = [p.document.text for p in parsed.walk_parts() if p.document is not None]
    assert any(p.problem is not None and p.problem.code is ProblemCode.UNSAFE_XML for p in parsed.walk_parts())
    if not hostname:
        pytest.skip("no /etc/hostname on this machine: nothing the XXE could leak")
    assert all(hostname not in t for t in texts)


def test_total_work_per_message_is_bounded() -> None:
    """GIVEN a message whose attachments together exceed the per-message work limits
    WHEN parsed THEN the attachments past the limit are listed, not read, with the reason."""
    blobs = [attachment(os.urandom(400_000), f"数据{i}.bin") for i in range(4)]
    parsed = parse_message(mail(1, parts=blobs), limits=ParseLimits(max_message_expanded_bytes=1_000_000))
    assert [p.problem is not None and p.problem.code is ProblemCode.WORK_LIMIT for p in parsed.attachments] == [False, False, False, True]
    assert any(p.code is ProblemCode.WORK_LIMIT for p in parsed.problems)
    texts = [attachment(("正文" * 30_000).encode(), f"文本{i}.txt", "text/plain") for i in range(3)]
    parsed = parse_message(mail(2, parts=texts), limits=ParseLimits(max_message_text_chars=100_000))
    assert [p.kind.value for p in parsed.attachments] == ["document", "document", "unreadable"]
    assert "characters of text" in parsed.attachments[2].problem.detail


def test_every_limit_is_in_config_toml_with_a_default() -> None:
    """Every parse limit and sandbox setting is spelled out in config.toml [limits] and loads."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    limits = text.split("[limits]", 1)[1].split("\n[", 1)[0]
    # defer_ocr is the parser pool's switch for one parse, not an operator's setting
    keys = {f.name for f in fields(ParseLimits)} - {"max_document_bytes", "max_message_depth", "defer_ocr"}
    for key in keys | {"max_message_bytes", "isolate_parsing", "parse_timeout_s", "parse_memory_mb"}:
        assert re.search(rf"^{key} = ", limits, re.MULTILINE), key
    config = load_config(ROOT / "config.toml")
    assert config.isolate_parsing and config.parse_timeout_s == 60 and config.parse_memory_mb == 1536


# -- outputs ------------------------------------------------------------------------------------


def _assert_no_formula(path: Path) -> list[str]:
    """Every cell of every sheet: no formula, no text that Excel would evaluate.  Returns all strings."""
    book = openpyxl.load_workbook(path)
    strings = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"
                assert cell.hyperlink is None, f"{sheet.title}!{cell.coordinate} is a hyperlink"
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(DANGEROUS_STARTS), f"{sheet.title}!{cell.coordinate}"
                    strings.append(cell.value)
    return strings


def test_daily_workbook_has_no_formula(ingested: Ingested) -> None:
    """GIVEN subjects, display names and filenames that start with = + - @ WHEN `intake report` runs
    THEN no cell is a formula and the hostile text is there, as text, behind an apostrophe."""
    out = ingested.root / "out" / "report.xlsx"
    cli(ingested.config, "report", "--as-of", "2024-07-12T10:00:00+08:00", "--out", str(out))
    strings = _assert_no_formula(out)
    joined = "\n".join(strings)
    assert "'" + FORMULAS[0] in joined  # the HYPERLINK subject, neutralised
    assert "'" + FORMULAS[2] in joined  # the @SUM subject of a review item
    assert f"\r\n{INJECTED_HEADER}" not in joined and f"\n{INJECTED_HEADER}" not in joined


@pytest.mark.parametrize("command", ["messages", "status", "review"])
def test_csv_outputs_are_neutralised(ingested: Ingested, command: str) -> None:
    output = cli(ingested.config, command, "--format", "csv")
    rows = list(csv.reader(io.StringIO(output)))
    assert len(rows) > 1
    for row in rows:
        for cell in row:
            assert not cell.startswith(DANGEROUS_STARTS), (command, cell)
    if command != "status":
        assert any(cell.startswith("'=") or cell.startswith("'@") for row in rows for cell in row)


def test_export_uses_only_names_of_our_making(ingested: Ingested) -> None:
    """GIVEN reports that arrived under hostile names (../, CON, control characters, 300 characters)
    WHEN `intake export-reports` copies them THEN every file is directly in the target folder, named
    NN_机构_日期.ext, and the index workbook has no formula."""
    target = ingested.root / "export"
    cli(ingested.config, "export-reports", "--to", str(target))
    names = [p.name for p in target.rglob("*")]
    assert names and all((target / n).parent == target for n in names)
    # active content (the docm) keeps its type before a neutral .bin: NN_机构_日期.docm.bin
    pattern = re.compile(r"^(00_报告清单\.xlsx|\d{2}_[^/\\\x00-\x1f]+_\d{8}(_\d+)?\.[a-z0-9]+(\.bin)?)$")
    assert all(pattern.match(n) for n in names), names
    assert not any(ZIP_SLIP_PROBE in n or n.upper().startswith("CON.") for n in names)
    _assert_no_formula(target / "00_报告清单.xlsx")


def test_outgoing_receipts_carry_no_injected_header(ingested: Ingested) -> None:
    """GIVEN a display name and a subject carrying an encoded CR/LF + "Bcc:" WHEN receipts are prepared
    (dry run, into the outbox) THEN no outgoing header has CR/LF in a value and nobody extra is addressed."""
    summary = send_receipts(ingested.ctx, datetime(2024, 7, 12, 10, 0, tzinfo=TZ), dry_run=True)
    assert summary.deliveries
    files = list((ingested.ctx.data_dir / "outbox").glob("*.eml"))
    assert files
    for path in files:
        raw = path.read_bytes()
        head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
        assert not re.search(rb"(^|\n)bcc:", head, re.IGNORECASE)
        msg = email.message_from_bytes(raw, policy=compat32)
        assert "bcc" not in {k.lower() for k in msg}
        addressed = {addr for _name, addr in getaddresses(msg.get_all("to", []) + msg.get_all("cc", []))}
        assert "victim@evil.example" not in addressed
        for key, value in msg.items():
            unfolded = re.sub(r"\r?\n[ \t]", " ", str(value))
            assert "\r" not in unfolded and "\n" not in unfolded, (key, value)


def test_data_dir_is_private(ingested: Ingested) -> None:
    data = ingested.ctx.data_dir
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "raw").stat().st_mode & 0o777 == 0o700
    raw_files = [p for p in (data / "raw").rglob("*") if p.is_file()]
    assert raw_files and all(p.stat().st_mode & 0o777 == 0o600 for p in raw_files)
    raw_dirs = [p for p in (data / "raw").rglob("*") if p.is_dir()]
    assert raw_dirs and all(p.stat().st_mode & 0o777 == 0o700 for p in raw_dirs)


def test_nothing_was_written_outside_the_data_dir(ingested: Ingested) -> None:
    """GIVEN the tree of the test folder before the ingest WHEN everything above has run THEN the only
    new paths are the data dir and the outputs we asked for; no zip-slip or hostile name exists anywhere."""
    after = tree(ingested.root)
    allowed = ("var", "out", "export")
    new = {p for p in after - ingested.before if p.split(os.sep, 1)[0] not in allowed}
    assert not new, sorted(new)[:20]
    for name in ZIP_SLIP_NAMES:
        for base in (ingested.root / "cwd", ingested.ctx.data_dir, ingested.ctx.data_dir / "raw", Path("/")):
            assert not (base / name.replace("\\", "/")).resolve().exists() or name.startswith("C:")
    assert not list(Path("/tmp").glob(f"{ZIP_SLIP_PROBE}*"))
    assert not list(Path("/tmp").glob(f"*/{ZIP_SLIP_PROBE}*"))
    assert not list(ingested.root.rglob(f"*{ZIP_SLIP_PROBE}*"))


# -- sender authenticity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "authserv", "results"),
    [
        ("mail.gz.gov.cn; spf=pass smtp.mailfrom=a.example", "mail.gz.gov.cn", (("spf", "pass"),)),
        ("MAIL.GZ.GOV.CN 1; dkim/1=fail (bad sig; really) header.d=x; dmarc = fail", "mail.gz.gov.cn",
         (("dkim", "fail"), ("dmarc", "fail"))),
        ('mx.example; spf=pass reason="a; b=fail"; dmarc=pass', "mx.example", (("spf", "pass"), ("dmarc", "pass"))),
        ("(comment) mail.gz.gov.cn; none", "mail.gz.gov.cn", ()),
    ],
)  # fmt: skip
def test_authentication_results_are_parsed(value: str, authserv: str, results: tuple) -> None:
    found = parse_authentication_results(value)
    assert found is not None and found.authserv_id == authserv and found.results == results


def _with_headers(*headers: bytes, extra_from: bool = False) -> bytes:
    extra = list(headers) + ([b"From: second@evil.example"] if extra_from else [])
    return mail(1, sender="a <kuanghui@sysucc.example>", extra=extra)


@pytest.mark.parametrize(
    ("headers", "extra_from", "usable", "why"),
    [
        ((), False, True, ""),
        ((b"Authentication-Results: mail.gz.gov.cn; spf=pass; dkim=pass; dmarc=pass",), False, True, ""),
        ((b"Authentication-Results: mail.gz.gov.cn; spf=softfail; dmarc=pass",), False, True, ""),
        ((b"Authentication-Results: mail.gz.gov.cn; dmarc=fail",), False, False, "dmarc=fail"),
        ((b"Authentication-Results: mail.gz.gov.cn; dkim=fail",), False, False, "dkim=fail"),
        ((b"Authentication-Results: evil.example; spf=fail; dmarc=fail",), False, True, ""),
        ((b"Authentication-Results: mail.gz.gov.cn; spf=fail",
          b"Authentication-Results: mail.gz.gov.cn; spf=pass; dmarc=pass"), False, False, "spf=fail"),
        ((), True, False, "From"),
    ],
    ids=["none", "pass", "softfail", "dmarc-fail", "dkim-fail", "stranger-ignored", "forged-pass-loses", "two-from"],
)  # fmt: skip
def test_sender_check(headers: tuple, extra_from: bool, usable: bool, why: str) -> None:
    check = check_sender(parse_message(_with_headers(*headers, extra_from=extra_from)), "mail.gz.gov.cn")
    assert check.address_usable is usable
    assert why in check.reason


def test_no_authserv_id_configured_trusts_no_header() -> None:
    raw = _with_headers(b"Authentication-Results: mail.gz.gov.cn; dmarc=fail")
    check = check_sender(parse_message(raw), "")
    assert check.address_usable and check.ignored == 1 and not check.trusted


# -- logs ---------------------------------------------------------------------------------------------

BODY_MARKER = "BODY-MARKER-看不见的正文-7f3a"


def test_logs_hold_neither_password_nor_body(tmp_path: Path, imap_account: Account,
                                             caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """GIVEN a mailbox password in the environment and messages whose bodies carry a marker
    WHEN ingest and poll run with DEBUG logging (and a poll with a wrong password, and a message whose
    parse fails) THEN neither the password nor the marker appears in any log line."""
    caplog.set_level(logging.DEBUG)
    overrides = {"mailbox": imap_account.mailbox_settings()}
    config = write_config(tmp_path, overrides)
    for n in range(3):
        imap_account.append("INBOX", mail(100 + n, body=f"{BODY_MARKER} {n}"))
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "a.eml").write_bytes(mail(200, body=BODY_MARKER))
    (folder / "b.eml").write_bytes(mail(201, body=BODY_MARKER, parts=[b"Content-Type: application/zip\r\n\r\n"
                                                                        + BODY_MARKER.encode()]))  # fmt: skip
    ctx = open_context(load_config(config))
    try:
        ingest_paths(ctx, [folder])
        summary = poll(ctx)
        assert summary.ok and summary.folders[0].new == 3
    finally:
        ctx.close()
    wrong = "Wr0ng-Pa55word-xyz"
    env = {**os.environ, "INTAKE_TEST_IMAP_PASSWORD": wrong, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "-v", "poll",
                           "--config", str(write_config(tmp_path / "w", overrides))],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    verbose = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "-v", "ingest",
                              str(folder), "--config", str(write_config(tmp_path / "v", overrides))],
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    logs = caplog.text + done.stderr + done.stdout + verbose.stderr
    assert "imap_folder" in caplog.text and "INFO" in verbose.stderr  # the logs were really captured
    assert done.returncode != 0  # the wrong password was refused, and said so
    for secret in (imap_account.password, wrong):
        assert secret not in logs
    assert BODY_MARKER not in logs
    assert BODY_MARKER.encode("utf-8").hex() not in logs
