"""Files given to `intake ingest` that are not mail: named on the output in Chinese, recorded, never stored.

Each file is real: a PNG from Pillow, a PDF from pypdf, a zip from zipfile, a Word 97 file made by
LibreOffice (tests/fixtures/formats/report.doc), an Outlook .msg from tests/msgfactory.py.
"""

from __future__ import annotations

import io
import mailbox
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.inbound.ingest import ingest_paths
from pipeline.inbound.mailsniff import describe_refusal, judge
from pipeline.vocab import Refusal
from storage.refusals import fetch_refusals
from storage.schema import messages

from . import msgfactory as msgf
from .test_ingest import sample_mail

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
runner = CliRunner()


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(out, format="PNG")
    return out.getvalue()


def pdf_bytes() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("自查报告.txt", "报送单位：广州市第一人民医院")
    return out.getvalue()


def outlook_msg() -> bytes:
    return msgf.msg_bytes(subject="自查报告", sender_name="信息科", sender_address="it@gz1.example",
                          to=["wjw@gz.gov.cn"], body="附件是我院的自查报告。", attachments=[])  # fmt: skip


# What a clerk may drop into the folder beside the mail, and the reason each must get.
NOT_MAIL: dict[str, tuple[bytes, Refusal, str]] = {
    "空白.eml": (b"", Refusal.EMPTY, "空文件"),
    "只有空行.eml": (b"\r\n\r\n  \n", Refusal.EMPTY, "只有空白"),
    "扫描件.png": (png_bytes(), Refusal.DOCUMENT, "PNG 图片"),
    "照片冒充邮件.eml": (png_bytes(), Refusal.DOCUMENT, "PNG 图片"),
    "报告.pdf": (pdf_bytes(), Refusal.DOCUMENT, "PDF 文件"),
    "报告.zip": (zip_bytes(), Refusal.DOCUMENT, "ZIP 压缩包"),
    "报告.msg": ((FIXTURES / "report.doc").read_bytes(), Refusal.DOCUMENT, "Word 97-2003"),
    "乱码": (bytes(range(256)) * 8, Refusal.NOT_MAIL, "二进制数据"),
    "说明.txt": ("会议纪要：明天上午开会\n地点：三楼会议室\n".encode(), Refusal.NOT_MAIL, "文本文件"),
}


def write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, (data, _reason, _words) in NOT_MAIL.items():
        (folder / name).write_bytes(data)
    (folder / "0001.eml").write_bytes(sample_mail(1))
    (folder / "另存为文本.txt").write_bytes(sample_mail(2))  # mail under a text name: judged by its bytes
    (folder / "outlook.msg").write_bytes(outlook_msg())
    return folder


def test_only_mail_is_stored_and_every_other_file_is_refused_with_its_reason(ctx, tmp_path: Path) -> None:
    """GIVEN a folder with three mails (.eml, mail saved as .txt, an Outlook .msg) and nine files that are not
    mail (zero bytes, blanks, a PNG, a PNG named .eml, a PDF, a zip, a Word .doc named .msg, binary garbage, a
    text note) WHEN ingested THEN the three mails are stored, each other file is refused with its reason and
    recorded in ingest_refusals with its size and SHA-256, and no empty message row exists."""
    folder = write_folder(tmp_path / "收件")
    summary = ingest_paths(ctx, [folder])
    assert summary.new == 3
    got = {Path(p.ref).name: p for p in summary.unreadable_sources}
    assert {name: p.reason for name, p in got.items()} == {name: v[1] for name, v in NOT_MAIL.items()}
    for name, (_data, _reason, words) in NOT_MAIL.items():
        assert words in got[name].text, (name, got[name].text)
    with ctx.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(messages).where(messages.c.size == 0)).scalar_one() == 0
        rows = {Path(r.ref).name: r for r in fetch_refusals(conn)}
    import hashlib

    for name, (data, reason, _words) in NOT_MAIL.items():
        assert (rows[name].reason, rows[name].size, rows[name].sha256) == (reason, len(data),
                                                                          hashlib.sha256(data).hexdigest())  # fmt: skip


def test_a_rerun_counts_the_same_refused_file_once_more(ctx, tmp_path: Path) -> None:
    """GIVEN a refused file WHEN the folder is ingested again THEN one row whose count went to 2."""
    folder = tmp_path / "收件"
    folder.mkdir()
    (folder / "空白.eml").write_bytes(b"")
    ingest_paths(ctx, [folder])
    ingest_paths(ctx, [folder])
    with ctx.db.connect() as conn:
        (row,) = fetch_refusals(conn)
    assert (row.reason, row.times) == (Refusal.EMPTY, 2)


def test_empty_entries_of_a_maildir_and_an_mbox_are_refused_too(ctx, tmp_path: Path) -> None:
    """GIVEN a Maildir holding a mail and an empty file, and an mbox holding a mail and an entry of garbage
    WHEN ingested THEN two mails stored, the empty and the garbage entry refused."""
    md = mailbox.Maildir(tmp_path / "Maildir")
    md.add(sample_mail(10))
    (tmp_path / "Maildir" / "new" / "1700000000.empty.host").write_bytes(b"")
    box = mailbox.mbox(tmp_path / "inbox.mbox")
    box.add(sample_mail(11))
    box.add(b"\x00\x01\x02 not a mail \xff\xfe\x00")
    box.close()
    summary = ingest_paths(ctx, [tmp_path / "Maildir", tmp_path / "inbox.mbox"])
    assert summary.new == 2
    assert sorted(p.reason for p in summary.unreadable_sources) == [Refusal.EMPTY, Refusal.NOT_MAIL]
    assert sorted(re.sub(r".*#", "", p.ref).split(":")[0] for p in summary.unreadable_sources) == ["maildir", "mbox"]


def test_intake_ingest_names_each_refused_file_in_chinese_and_exits_1(config_path: Path, tmp_path: Path) -> None:
    """GIVEN the folder above WHEN `intake ingest` runs THEN each refused file is on the output with its Chinese
    reason (no English), the summary counts them, the exit code is 1; `intake refused` lists them later."""
    folder = write_folder(tmp_path / "收件")
    result = runner.invoke(app, ["ingest", str(folder), "--config", str(config_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("未导入 ")]
    assert len(lines) == len(NOT_MAIL)
    for name in NOT_MAIL:
        (line,) = [line for line in lines if f"/{name}：" in line]
        reason = line.split("：", 1)[1]
        assert "不是邮件" in reason and "未导入" in reason, line
        # English only in product and header names (Word, PNG, From:), never a sentence or an error's text
        assert set(re.findall(r"[A-Za-z]{3,}", reason)) <= {"Word", "WPS", "doc", "wps", "PNG", "PDF", "ZIP", "From",
                                                            "Subject"}, line  # fmt: skip
    assert "新增 3 封" in result.output and f"未导入 {len(NOT_MAIL)} 个文件" in result.output
    listed = runner.invoke(app, ["refused", "--format", "csv", "--config", str(config_path)])
    assert listed.exit_code == 0, listed.output
    body = listed.output.splitlines()
    assert body[0] == "last_seen_at,ref,reason,description,size,sha256,times,first_seen_at"
    assert len(body) == 1 + len(NOT_MAIL)
    assert any("报告.pdf,document,这是 PDF 文件，不是邮件" in line for line in body)


def test_a_folder_of_mail_only_exits_0(config_path: Path, tmp_path: Path) -> None:
    """GIVEN only mail WHEN ingested THEN exit 0 and nothing said about refused files."""
    (tmp_path / "a.eml").write_bytes(sample_mail(1))
    result = runner.invoke(app, ["ingest", str(tmp_path / "a.eml"), "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "未导入" not in result.output


@pytest.mark.parametrize(
    ("data", "named_as_mail", "mail"),
    [
        (b"Received: from mx\r\nFrom: a@b.cn\r\n\r\nx", False, True),
        (b"From MAILER-DAEMON Thu Jul 11 09:00:00 2024\nFrom: a@b.cn\nSubject: x\n\nx", False, True),
        (b"X-Note: 1\n\nbody", True, True),  # a header-shaped first line is enough for a name like mail
        (b"X-Mailer: Foxmail\nFrom: a@b.cn\n\nbody", False, True),  # X- headers are well known
        (b"Note: 1\n\nbody", False, False),  # an arbitrary "word:" line in a .txt is prose
        (b"Date: tomorrow\nwe meet at three", False, False),
        (b"%PDF-1.7\n", True, False),
    ],
)
def test_the_sniff(data: bytes, named_as_mail: bool, mail: bool) -> None:
    """GIVEN the first bytes of a file WHEN judged THEN mail only when headers start it."""
    assert judge(data, named_as_mail=named_as_mail).is_mail is mail


def test_every_refusal_has_chinese_wording() -> None:
    """GIVEN every refusal reason THEN its wording is Chinese and never shows the detail it was given."""
    for reason in Refusal:
        text = describe_refusal(reason, "SomeEnglishDetail")
        assert re.search(r"[\u4e00-\u9fff]", text) and "SomeEnglishDetail" not in text
