"""The clerks' commands end to end through the CLI, on a data dir built from the sample corpus.

GIVEN the demo mailbox ingested into a scratch data dir, WHEN a clerk runs review,
assign, reprocess, exempt, export-reports and audit, THEN the stored facts change
exactly as the clerk asked, manual decisions survive reprocessing, every act is in
the audit trail, and exported files stay inside their folder with safe names.
Attribution rules are tuned elsewhere: these tests check the commands' behaviour,
not which institution the automatic stage picks.
"""

from __future__ import annotations

import base64
import csv
import getpass
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import docx
import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.context import Context, open_context
from pipeline.demo.samples.corpus import SampleCorpus, generate_corpus
from pipeline.domain.roster import load_roster
from pipeline.inbound.ingest import ingest_raw
from pipeline.outputs.audit import audit_frame, fetch_trail
from pipeline.outputs.export import report_filename, safe_filename
from pipeline.outputs.history import record_status_changes
from pipeline.outputs.views import message_views
from pipeline.outputs.workbook import WorkbookExtras, build_workbook
from storage.schema import learned_contacts, messages

from .conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))
AS_OF = "2024-07-12T09:00:00+08:00"
runner = CliRunner()

# -- building data dirs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> SampleCorpus:
    data = ROOT / "data"
    return generate_corpus(data / "roster.csv", data / "bureaus.csv", data / "contacts.csv", seed=7)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory, corpus: SampleCorpus) -> Path:
    """The corpus ingested once per module; each test works on its own copy."""
    base = tmp_path_factory.mktemp("base")
    ctx = open_context(load_config(write_config(base)))
    try:
        for mail in corpus.mails:
            ingest_raw(ctx, mail.raw, source="file", ref=mail.name, received_at=mail.received_at)
    finally:
        ctx.close()  # the last connection closing checkpoints the WAL, so a plain copy is consistent
    return base


@pytest.fixture
def cfg(tmp_path: Path, base_dir: Path) -> Path:
    """A config + data dir that is a private copy of the ingested corpus."""
    shutil.copytree(base_dir / "var", tmp_path / "var")
    return write_config(tmp_path)


@contextmanager
def context(config_path: Path) -> Iterator[Context]:
    ctx = open_context(load_config(config_path))
    try:
        yield ctx
    finally:
        ctx.close()


def run(config_path: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--config", str(config_path)], env={"COLUMNS": "200"})
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == code, f"{args} exited {result.exit_code}:\n{output}\n{result.exception!r}"
    return output


def run_json(config_path: Path, *args: str) -> list[dict]:
    return json.loads(run(config_path, *args, "--format", "json"))


def statuses(config_path: Path) -> dict[str, dict]:
    return {r["institution"]: r for r in run_json(config_path, "status", "--as-of", AS_OF)}


def institutions_of(config_path: Path, message_id: int) -> list[str]:
    rows = {r["message_id"]: r for r in run_json(config_path, "messages")}
    return [n for n in rows[message_id]["institutions"].split(";") if n]


def auto_report_items(config_path: Path) -> list[tuple[int, str, str]]:
    """(message id, item path, institution) of automatic report decisions on attachments."""
    with context(config_path) as ctx:
        return [
            (d.message_id, d.item_path, d.institution)
            for v in message_views(ctx)
            for d in v.decisions
            if d.kind == "report" and d.origin == "auto" and d.readable and d.item_path not in ("message", "body")
        ]  # fmt: skip


def only_report_of(config_path: Path) -> tuple[int, str, str]:
    """An item that is the single submission of its institution (and the only report in its mail)."""
    items = auto_report_items(config_path)
    by_inst: dict[str, list] = {}
    by_msg: dict[int, list] = {}
    for item in items:
        by_inst.setdefault(item[2], []).append(item)
        by_msg.setdefault(item[0], []).append(item)
    return next(i for i in items if len(by_inst[i[2]]) == 1 and len(by_msg[i[0]]) == 1)


def other_institution(config_path: Path, *avoid: str) -> str:
    """A roster row that has not reported (so a manual assignment visibly changes it)."""
    rows = statuses(config_path)
    return next(n for n, r in rows.items() if r["status"] == "overdue" and n not in avoid)


# -- hand-made mail for traps the corpus does not aim at -----------------------------------------


def report_docx(unit: str) -> bytes:
    doc = docx.Document()
    doc.add_paragraph(f"{unit}电子健康码平台应用自查情况报告", style="Title")
    for heading, body in (("一、基本情况", "我单位已完成自查。"), ("二、整改措施及完成时限", "已整改完毕。"),
                          ("三、其他需要说明的事项", "无。")):  # fmt: skip
        doc.add_heading(heading, level=1)
        doc.add_paragraph(body)
    doc.add_paragraph(f"报送单位（盖章）：{unit}")
    doc.add_paragraph("2024年7月9日")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def mail_with(attachments: list[tuple[str, bytes]], *, subject: str, sender: str, when: datetime) -> bytes:
    """A multipart message; filenames go out as RFC 2231 percent-encoded UTF-8 (any bytes survive)."""
    boundary = "b-" + hashlib.sha256(subject.encode() + sender.encode()).hexdigest()[:16]
    date = when.strftime("%a, %d %b %Y %H:%M:%S %z")
    b64 = base64.encodebytes
    lines = [f"Received: from mx.example by mail.gz.gov.cn; {date}", f"From: {sender}", "To: xxb@gz.gov.cn",
             f"Subject: =?utf-8?b?{base64.b64encode(subject.encode()).decode()}?=", f"Date: {date}",
             f"Message-ID: <{boundary}@test.example>", "MIME-Version: 1.0",
             f'Content-Type: multipart/mixed; boundary="{boundary}"', "", f"--{boundary}",
             "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "",
             b64("您好，附件是我单位的自查报告，请查收。".encode()).decode()]  # fmt: skip
    for name, data in attachments:
        disposition = f"attachment; filename*=UTF-8''{quote(name.encode('utf-8'), safe='')}"
        lines += [f"--{boundary}", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64",
                  f"Content-Disposition: {disposition}", "", b64(data).decode()]  # fmt: skip
    return "\r\n".join([*lines, f"--{boundary}--"]).encode()


def ingest_extra(config_path: Path, raw: bytes, when: datetime) -> int:
    with context(config_path) as ctx:
        return ingest_raw(ctx, raw, source="file", ref=f"extra-{hashlib.sha256(raw).hexdigest()[:8]}",
                          received_at=when).message_id  # fmt: skip


# -- review -------------------------------------------------------------------------------------


def test_review_lists_items_with_stable_ids_and_exact_csv_columns(cfg: Path) -> None:
    """GIVEN the ingested corpus WHEN review runs THEN CSV has the contract columns and IDs parse."""
    out = run(cfg, "review", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == "item,message_id,received_at,sender,subject,reason,suggestion"
    assert rows, "the corpus leaves items for review"
    for row in rows:
        assert re.fullmatch(r"\d+(:[\w/]+)?", row["item"])
        assert row["item"].split(":")[0] == row["message_id"]
        assert row["reason"]
    items = run_json(cfg, "review")
    assert [i["item"] for i in items] == [r["item"] for r in rows]
    assert all(isinstance(i["evidence"], list) for i in items)
    run(cfg, "reprocess", "--all")
    assert [i["item"] for i in run_json(cfg, "review")] == [r["item"] for r in rows], (
        "IDs survive reprocessing"
    )


# -- assign -------------------------------------------------------------------------------------


def test_assign_outranks_auto_survives_reprocess_and_undo_restores(cfg: Path) -> None:
    message_id, path, auto_name = only_report_of(cfg)
    target = other_institution(cfg, auto_name)
    row = next(i.row for i in load_roster(load_config(cfg).campaign) if i.name == target)
    before = statuses(cfg)

    out = run(cfg, "assign", f"{message_id}:{path}", str(row), "--note", "核对原件", "--by", "李文")
    assert target in out
    assert institutions_of(cfg, message_id) == [target]
    after = statuses(cfg)
    # The assigned item moves with its receipt time: the target's status follows from it and the deadline.
    moved = before[auto_name]["first_received_at"]
    assert moved and after[target]["first_received_at"] == moved and after[target]["submissions"] == 1
    deadline = load_config(cfg).campaign.deadline
    assert after[target]["status"] == ("on_time" if datetime.fromisoformat(moved) <= deadline else "late")
    assert after[auto_name]["status"] == "overdue"

    run(cfg, "reprocess", "--all")
    assert institutions_of(cfg, message_id) == [target], "a manual decision survives reprocessing"
    assert statuses(cfg)[target]["status"] == after[target]["status"]

    run(cfg, "assign", f"{message_id}:{path}", "--undo", "--by", "李文")
    assert institutions_of(cfg, message_id) == [auto_name]
    restored = statuses(cfg)
    assert {n: r["status"] for n, r in restored.items()} == {n: r["status"] for n, r in before.items()}
    run(cfg, "assign", f"{message_id}:{path}", "--undo", code=2)  # nothing left to undo


def test_assign_unrelated_and_whole_message(cfg: Path) -> None:
    message_id, path, name = only_report_of(cfg)
    run(cfg, "assign", f"{message_id}:{path}", "--unrelated", "--note", "是去年的报告")
    assert institutions_of(cfg, message_id) == []
    assert statuses(cfg)[name]["status"] == "overdue"
    run(cfg, "reprocess", str(message_id))
    assert institutions_of(cfg, message_id) == []
    run(cfg, "assign", f"{message_id}:{path}", "--undo")
    assert institutions_of(cfg, message_id) == [name]
    # The whole message ("12") can be decided too; it overrides every automatic item decision.
    run(cfg, "assign", str(message_id), "--unrelated")
    kinds = {r["message_id"]: r["kind"] for r in run_json(cfg, "messages")}
    assert kinds[message_id] == "unrelated"


def test_ambiguous_unknown_and_malformed_input_give_help_and_exit_2(cfg: Path) -> None:
    message_id, path, _ = only_report_of(cfg)
    out = run(cfg, "assign", f"{message_id}:{path}", "妇幼", code=2)
    assert "广东省妇幼保健院" in out and "广州市天河区妇幼保健院" in out, out
    assert "序号" in out
    out = run(cfg, "assign", f"{message_id}:{path}", "广东省妇幼保健医院", code=2)
    assert "是否指" in out and "广东省妇幼保健院" in out
    assert "没有" in run(cfg, "assign", "99999", "1", code=2)
    assert "条目" in run(cfg, "assign", f"{message_id}:77", "1", code=2)
    run(cfg, "assign", "abc", "1", code=2)
    assert "区卫健局" in run(cfg, "assign", f"{message_id}:{path}", "海珠区卫健局", code=2)
    run(cfg, "assign", f"{message_id}:{path}", code=2)  # neither an institution nor --unrelated
    assert institutions_of(cfg, message_id), "nothing changed after the failed attempts"


def test_confirming_a_sender_learns_it_but_never_bureau_or_commission_addresses(cfg: Path) -> None:
    """GIVEN reports from a personal mailbox, a bureau, a colleague and another unit's contact
    WHEN a clerk assigns them and then confirms each sender
    THEN assigning learns nothing; confirming shows and learns only the personal address."""
    when = datetime(2024, 7, 9, 10, 0, tzinfo=CST)
    target = other_institution(cfg)
    personal = mail_with(
        [("自查报告.docx", report_docx("本院"))], subject="自查报告", sender="someone@qq.example", when=when
    )
    bureau = mail_with([("自查报告.docx", report_docx("本院"))], subject="自查报告",
                       sender="王平 <wangping@panyu-wjj.example>", when=when)  # fmt: skip
    colleague = mail_with([("自查报告.docx", report_docx("本院"))], subject="转发：自查报告",
                          sender="同事 <colleague@gz.gov.cn>", when=when)  # fmt: skip
    # 中山大学肿瘤防治中心's address in contacts.csv:
    others = mail_with([("自查报告.docx", report_docx("本院"))], subject="自查报告",
                       sender="邝慧 <kuanghui@sysucc.example>", when=when)  # fmt: skip
    ids = [ingest_extra(cfg, raw, when) for raw in (personal, bureau, colleague, others)]
    outs = [run(cfg, "assign", f"{mid}:1", target) for mid in ids]
    assert all("intake confirm" in out and "已记住" not in out for out in outs), outs
    with context(cfg) as ctx, ctx.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(learned_contacts)).scalar_one() == 0
    outs = [run(cfg, "confirm", str(mid), "--yes") for mid in ids]
    assert "将记住地址 someone@qq.example" in outs[0] and "已记住发件地址 someone@qq.example" in outs[0]
    assert not [out for out in outs[1:] if "记住地址 " in out or "已记住" in out], (
        "bureau, commission and others' addresses are not learned"
    )
    with context(cfg) as ctx, ctx.db.connect() as conn:
        learned = [(r.institution, r.address) for r in conn.execute(select(learned_contacts))]
    assert learned == [(target, "someone@qq.example")]
    second = other_institution(cfg, target)
    run(cfg, "assign", f"{ids[0]}:1", second)  # a correction withdraws the confirmation and its lesson
    with context(cfg) as ctx, ctx.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(learned_contacts)).scalar_one() == 0
    run(cfg, "confirm", str(ids[0]), "--yes")
    with context(cfg) as ctx, ctx.db.connect() as conn:
        assert [(r.institution, r.address) for r in conn.execute(select(learned_contacts))] == [
            (second, "someone@qq.example")
        ]
    run(cfg, "confirm", str(ids[0]), "--undo")
    with context(cfg) as ctx, ctx.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(learned_contacts)).scalar_one() == 0


# -- reprocess ----------------------------------------------------------------------------------


def test_roster_change_and_reprocess_move_exactly_the_right_rows(cfg: Path) -> None:
    """GIVEN a report naming its unit by a name not on the roster WHEN the clerk adds it as an alias
    and reprocesses THEN that item, and only it, moves to the row, and the diff says so."""
    when = datetime(2024, 7, 9, 11, 0, tzinfo=CST)
    raw = mail_with([("报告.docx", report_docx("穗康互联网医院"))], subject="电子健康码平台应用自查情况报告",
                    sender="nobody@mail.example", when=when)  # fmt: skip
    message_id = ingest_extra(cfg, raw, when)
    assert institutions_of(cfg, message_id) == []
    target = other_institution(cfg)
    manual_id, manual_path, _ = only_report_of(cfg)
    manual_target = other_institution(cfg, target)
    run(cfg, "assign", f"{manual_id}:{manual_path}", manual_target)
    before = statuses(cfg)

    roster_csv = cfg.parent / "data" / "roster.csv"
    rows = list(csv.DictReader(io.StringIO(roster_csv.read_text(encoding="utf-8-sig"))))
    for r in rows:
        if r["name"] == target:
            r["aliases"] = ";".join(filter(None, [r["aliases"], "穗康互联网医院"]))
    with roster_csv.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    out = run(cfg, "reprocess", "--all")
    assert f"{message_id}：附件1 待人工核对 → 附件1 自查报告 {target}" in out
    after = statuses(cfg)
    moved = {n for n in after if after[n]["status"] != before[n]["status"]}
    assert moved == {target}
    assert after[target]["status"] == "on_time"
    assert institutions_of(cfg, message_id) == [target]
    assert institutions_of(cfg, manual_id) == [manual_target], "manual decisions are untouched"
    assert "归属没有变化" in run(cfg, "reprocess", "--all"), "a second run changes nothing"


def test_reprocess_selections(cfg: Path) -> None:
    review, mails = run_json(cfg, "review"), run_json(cfg, "messages")
    assert f"{len(mails)}/{len(mails)}" in run(cfg, "reprocess", "--all")
    needing = len({r["message_id"] for r in review})
    assert f"{needing}/{needing}" in run(cfg, "reprocess", "--needs-review")
    other = next(m["message_id"] for m in mails if m["message_id"] != review[0]["message_id"])
    assert "2/2" in run(cfg, "reprocess", review[0]["item"], str(other), str(other))
    late = len([m for m in mails if m["received_at"] >= "2024-07-11"])
    assert f"{late}/{late}" in run(cfg, "reprocess", "--since", "2024-07-11")
    for bad in ([], ["--since", "yesterday"], ["99999"], ["12:x:y"]):
        run(cfg, "reprocess", *bad, code=2)


def test_reprocess_concurrent_with_ingest_loses_nothing(
    cfg: Path, tmp_path: Path, corpus: SampleCorpus
) -> None:
    """Two processes on one data dir: the worker-like ingest of new mail and a clerk's reprocess."""
    extra = tmp_path / "incoming"
    extra.mkdir()
    for n in range(60):
        when = datetime(2024, 7, 11, 8, 0, tzinfo=CST) + timedelta(minutes=n)
        raw = mail_with([("报告.docx", report_docx(f"测试单位{n}"))], subject=f"第{n}份", sender=f"u{n}@x.example", when=when)  # fmt: skip
        (extra / f"{n:03d}.eml").write_bytes(raw)
    intake = str(Path(sys.executable).with_name("intake"))
    commands = (["ingest", str(extra)], ["reprocess", "--all"])
    procs = [subprocess.Popen([intake, *c, "-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "COLUMNS": "200"}) for c in commands]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, (out.decode(), err.decode())
    assert "新增 60 封" in results[0][0].decode()
    with context(cfg) as ctx, ctx.db.connect() as conn:
        count = conn.execute(select(func.count()).select_from(messages)).scalar_one()
        states = set(conn.execute(select(messages.c.parse_status)).scalars())
    assert count == len(corpus.mails) + 60 and "pending" not in states


# -- exempt -------------------------------------------------------------------------------------


def test_exempt_shows_everywhere_and_undo_restores(cfg: Path) -> None:
    name = other_institution(cfg)
    assert "原因" in run(cfg, "exempt", name, code=2), "a reason is required"
    run(cfg, "exempt", name, "--reason", "已撤并", "--by", "王科长")
    assert statuses(cfg)[name]["status"] == "exempt"
    assert "免报" in run(cfg, "status", "--as-of", AS_OF)
    with context(cfg) as ctx:
        book = build_workbook(ctx, datetime.fromisoformat(AS_OF), cfg.parent / "r.xlsx")
    sheet = pd.read_excel(book, sheet_name="报送情况")
    row = sheet[sheet["机构"] == name].iloc[0]
    assert row["状态"] == "免报" and row["核对原因"] == "已撤并"
    run(cfg, "exempt", name, "--undo")
    assert statuses(cfg)[name]["status"] == "overdue"
    run(cfg, "exempt", name, "--undo", code=2)
    assert "config.toml" in run(cfg, "exempt", "广州市卫生健康委员会", "--undo", code=2)


# -- export -------------------------------------------------------------------------------------

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?$", re.IGNORECASE)


def assert_safe_name(name: str) -> None:
    assert name and name not in (".", "..")
    assert not _UNSAFE.search(name), name
    assert not _RESERVED.match(name.strip()), name
    assert name == name.rstrip(". ") and name == name.lstrip(". "), name
    assert len(name.encode("utf-8")) <= 255 and len(name.encode("utf-16-le")) // 2 <= 255, name
    assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in name), name


def test_safe_names_for_every_roster_name_and_hostile_text() -> None:
    roster = load_roster(load_config(ROOT / "config.toml").campaign)
    when = datetime(2024, 7, 10, 23, 59, tzinfo=CST)
    for inst in roster:
        name = report_filename(inst.row, inst.name, when, "docx", tz=CST)
        assert_safe_name(name)
        assert name.startswith(f"{inst.row:02d}_") and name.endswith("_20240710.docx")
    hostile = ["../../etc/passwd", "a/b\\c", "CON", "con.docx", "COM1.txt", "LPT9", "NUL.", "  . ", "", ".",
               "x" * 300 + ".docx", "报" * 200, "a\x00b\x07c\x1b[31m", "evil\u202egpj.exe", "trail. . .",
               'q"u<o>t|e?s*:']  # fmt: skip
    for text_ in hostile:
        assert_safe_name(safe_filename(text_))
        assert_safe_name(report_filename(7, text_, when, "pdf", tz=CST))
    assert safe_filename("x" * 300 + ".docx").endswith(".docx")


def test_export_reports_safe_names_hostile_attachments_and_nothing_outside(cfg: Path, tmp_path: Path) -> None:
    when = datetime(2024, 7, 9, 12, 0, tzinfo=CST)
    hostile = ["../../../escape.docx", "..\\..\\win.docx", "CON.docx", "x" * 300 + ".docx", "bad\x01\x1fname.docx",
               "/abs/path.docx", "AUX", "a:b*c?.docx"]  # fmt: skip
    raw = mail_with([(n, report_docx(f"测试{i}")) for i, n in enumerate(hostile)], subject="自查报告",
                    sender="x@y.example", when=when)  # fmt: skip
    message_id = ingest_extra(cfg, raw, when)
    target = other_institution(cfg)
    for i in range(1, len(hostile) + 1):
        run(cfg, "assign", f"{message_id}:{i}", target)
    (tmp_path / "outside").mkdir()
    before = {p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts[:1]}
    to = tmp_path / "out" / "reports"
    out = run(cfg, "export-reports", "--to", str(to))
    assert "已导出" in out
    after = {p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts[:1]}
    new_outside = {p for p in after - before if "var" not in p.relative_to(tmp_path).parts}
    assert not new_outside, new_outside
    files = sorted(p.name for p in to.iterdir())
    assert all(p.is_file() and not p.is_symlink() for p in to.iterdir())
    for name in files:
        assert_safe_name(name)
    assert "00_报告清单.xlsx" in files
    row = next(i.row for i in load_roster(load_config(cfg).campaign) if i.name == target)
    mine = [f for f in files if f.startswith(f"{row:02d}_")]
    assert len(mine) == len(hostile) and all(f.endswith(".docx") for f in mine), mine
    assert all((to / f).read_bytes()[:2] == b"PK" for f in mine)
    index = pd.read_excel(to / "00_报告清单.xlsx")
    assert len(index[index["机构"] == target]) == len(hostile)
    assert set(index["序号"]) == {i.row for i in load_roster(load_config(cfg).campaign)}
    # Every roster name that has a report got a file whose name is safe (checked above) and starts with its row.
    reported = {r["institution"] for r in statuses(cfg).values() if r["submissions"]}
    assert len({f[:2] for f in files if f[:2].isdigit()}) >= len(reported) - 1


def test_export_one_institution_and_byte_identity(cfg: Path, tmp_path: Path) -> None:
    when = datetime(2024, 7, 9, 12, 0, tzinfo=CST)
    payload = report_docx("字节核对单位")
    message_id = ingest_extra(
        cfg, mail_with([("r.docx", payload)], subject="自查报告", sender="b@c.example", when=when), when
    )
    target = other_institution(cfg)
    run(cfg, "assign", f"{message_id}:1", target)
    to = tmp_path / "one"
    run(cfg, "export-reports", "--to", str(to), "--institution", target)
    files = [p for p in to.iterdir() if p.suffix == ".docx"]
    assert len(files) == 1 and files[0].read_bytes() == payload
    assert files[0].name.endswith("_20240709.docx")


# -- audit --------------------------------------------------------------------------------------


def test_audit_records_every_act_and_status_change(cfg: Path, tmp_path: Path) -> None:
    message_id, path, auto_name = only_report_of(cfg)
    target = other_institution(cfg, auto_name)
    item = f"{message_id}:{path}"
    run(cfg, "assign", item, target, "--note", "看过原件", "--by", "李文")
    run(cfg, "assign", item, "--unrelated", "--by", "李文")
    run(cfg, "assign", item, "--undo", "--note", "弄错了")
    run(cfg, "exempt", target, "--reason", "已撤并", "--by", "王科长")
    run(cfg, "exempt", target, "--undo", "--by", "王科长")
    run(cfg, "reprocess", str(message_id), "--by", "李文")
    run(cfg, "export-reports", "--to", str(tmp_path / "x"), "--institution", auto_name)
    trail = run_json(cfg, "audit")
    skip = ("status_change", "learn_contact")
    acts = [(r["action"], r["actor"], r["target"]) for r in trail if r["action"] not in skip]

    assert acts == [
        ("assign", "李文", item),
        ("mark_unrelated", "李文", item),
        ("undo", getpass.getuser(), item),
        ("exempt", "王科长", target),
        ("unexempt", "王科长", target),
        ("reprocess", "李文", str(message_id)),
        ("export_reports", getpass.getuser(), str((tmp_path / "x").resolve())),
    ]
    assign_row = next(r for r in trail if r["action"] == "assign")
    assert assign_row["reason"] == "看过原件" and assign_row["institution"] == target and assign_row["at"]
    changes = [r for r in trail if r["action"] == "status_change" and r["institution"] == target]
    moves = [(r["details"]["from"], r["details"]["to"]) for r in changes]
    assert ("exempt", "overdue") in moves and any(to == "exempt" for _, to in moves)
    only = run_json(cfg, "audit", "--institution", target)
    assert only and all(target in r["institution"].split(";") for r in only)
    csv_out = run(cfg, "audit", "--format", "csv")
    assert csv_out.splitlines()[0].startswith("at,actor,action,target,institution")
    assert "李文" in run(cfg, "audit")
    with context(cfg) as ctx:
        frame = audit_frame(fetch_trail(ctx), ctx.config.campaign.timezone)
        assert list(frame.columns)[:3] == ["时间", "操作人", "操作"] and len(frame) == len(trail)
        book = build_workbook(ctx, datetime.fromisoformat(AS_OF), tmp_path / "r.xlsx",
                              WorkbookExtras(sheets={"操作记录": frame}))  # fmt: skip
        assert "操作记录" in pd.ExcelFile(book).sheet_names
        assert record_status_changes(ctx, datetime.now(CST)) == 0, "nothing new to record"


# -- done when ---------------------------------------------------------------------------------


def test_clerk_empties_the_review_queue_with_these_commands_alone(cfg: Path, corpus: SampleCorpus) -> None:
    """The demo data's queue is settled with assign alone, using the truth a clerk would read in the mail."""
    by_sha = {hashlib.sha256(m.raw).hexdigest(): m for m in corpus.mails}
    with context(cfg) as ctx, ctx.db.connect() as conn:
        mail_of = {r.id: by_sha.get(r.sha256) for r in conn.execute(select(messages.c.id, messages.c.sha256))}
    queue = run_json(cfg, "review")
    assert queue, "the demo data has something to review"
    for entry in queue:
        mail = mail_of[entry["message_id"]]
        expected = set(mail.expected_institutions) if mail else set()
        already = set(institutions_of(cfg, entry["message_id"]))
        if not expected:
            run(cfg, "assign", entry["item"], "--unrelated", "--note", "不是自查报告")
        elif entry["suggestion"] in expected:
            run(cfg, "assign", entry["item"], entry["suggestion"], "--note", "核对无误")
        elif len(expected - already) == 1:
            run(cfg, "assign", entry["item"], (expected - already).pop(), "--note", "据原件")
        elif len(expected) == 1:
            run(cfg, "assign", entry["item"], next(iter(expected)), "--note", "据原件")
        else:
            run(cfg, "assign", entry["item"], "--unrelated", "--note", "汇总表，不是报告")
    assert run_json(cfg, "review") == []
    assert "没有待核对的条目" in run(cfg, "review")
    rows = statuses(cfg)
    assert not [n for n, r in rows.items() if r["needs_review"] == "true"]
    run(cfg, "reprocess", "--all")
    assert run_json(cfg, "review") == [], "settled items stay settled after reprocessing"


def test_unparsed_message_is_settled_as_a_whole(tmp_path: Path) -> None:
    """GIVEN a message stored but not parsed (too large) WHEN the clerk assigns the whole message
    THEN it leaves the queue and counts for the institution."""
    cfg_path = write_config(tmp_path, {"limits": {"max_message_bytes": 3000}})
    when = datetime(2024, 7, 9, 9, 0, tzinfo=CST)
    message_id = ingest_extra(cfg_path, mail_with([("r.docx", report_docx("大文件单位"))], subject="自查报告",
                                                  sender="big@x.example", when=when), when)  # fmt: skip
    queue = run_json(cfg_path, "review")
    assert [q["item"] for q in queue] == [str(message_id)] and "上限" in queue[0]["reason"]
    run(cfg_path, "assign", str(message_id), "广东省妇幼保健院", "--note", "打开原件核对")
    assert run_json(cfg_path, "review") == []
    assert statuses(cfg_path)["广东省妇幼保健院"]["status"] == "on_time"


def test_busy_database_is_reported_and_retried(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN the worker holding the lock longer than SQLite's busy timeout WHEN the clerk assigns
    THEN the clerk sees "数据库忙…正在重试" and the act completes once the lock is free."""
    import sqlite3
    import threading

    import storage.db

    monkeypatch.setattr(storage.db, "BUSY_TIMEOUT_S", 0.05)
    message_id, path, _ = only_report_of(cfg)
    target = other_institution(cfg)
    holder = sqlite3.connect(
        cfg.parent / "var" / "intake.sqlite3", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(1.0, holder.commit)
    timer.start()
    try:
        out = run(cfg, "assign", f"{message_id}:{path}", target)
    finally:
        timer.join()
        holder.close()
    assert "数据库忙" in out and "正在重试" in out
    assert institutions_of(cfg, message_id) == [target]


def test_an_idle_poll_recomputes_statuses_only_when_time_can_have_moved_them(ctx) -> None:
    """GIVEN statuses last recorded before the deadline WHEN asked at a moment still before it THEN nothing can
    have moved (an idle poll skips the O(mail) recount); past the deadline THEN pending rows may now be overdue;
    once recorded after the deadline THEN nothing moves by time again; never recorded THEN always."""
    from datetime import timedelta

    from pipeline.outputs.history import record_status_changes, statuses_may_have_moved

    deadline = ctx.config.campaign.deadline
    before, after = deadline - timedelta(hours=2), deadline + timedelta(hours=1)
    assert statuses_may_have_moved(ctx, before)
    record_status_changes(ctx, before, cause="test")
    assert not statuses_may_have_moved(ctx, before + timedelta(minutes=30))
    assert statuses_may_have_moved(ctx, after)
    assert record_status_changes(ctx, after, cause="test") > 0  # the pending rows became overdue
    assert not statuses_may_have_moved(ctx, after + timedelta(days=1))
