"""Peak memory while ingesting one message with a 25 MB attachment, each case in a fresh interpreter.

Cases: a .docx with large embedded scans, a .pdf with large page images, and a
.zip of five such .docx files.  The parent builds the mail (so building it does not
count) and runs `python -m bench.memory --mail FILE`, which opens a fresh data dir,
ingests the one message and prints its peak RSS (ru_maxrss) and what was found.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

from .common import median, peak_rss_mb, reset_peak_rss, rss_mb, run_child

TARGET_BYTES = 25_000_000
TITLE = "关于电子健康码平台应用自查情况的报告"
UNIT = "广州市第一人民医院"


def _noise_png(pixels: int, seed: int) -> bytes:
    """An incompressible PNG (random pixels) of about 3 bytes per pixel: a stand-in for a colour scan."""
    from PIL import Image

    side = int(pixels**0.5)
    noise = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _report_lines() -> list[str]:
    return [TITLE, f"报送单位：{UNIT}", "一、基本情况", "我院电子健康码相关系统已完成自查。" * 8,
            "二、整改措施及完成时限", "已完成账号权限清理与日志审计。" * 8, "三、其他需要说明的事项", "无。",
            UNIT, "2024年7月9日"]  # fmt: skip


def big_docx(size: int, seed: int = 1) -> bytes:
    import docx
    from docx.shared import Cm

    document = docx.Document()
    for line in _report_lines():
        document.add_paragraph(line)
    images = 2
    for n in range(images):
        document.add_picture(io.BytesIO(_noise_png(size // images // 3, seed + n)), width=Cm(15))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def big_pdf(size: int, seed: int = 1) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    pages = 3
    for page in range(pages):
        pdf.setFont("STSong-Light", 12)
        for n, line in enumerate(_report_lines()):
            pdf.drawString(60, 800 - 18 * n, line[:40])
        # reportlab stores images ASCII85-encoded (x1.25): aim below `size` so the file is about `size`.
        scan = ImageReader(io.BytesIO(_noise_png(int(size * 0.8) // pages // 3, seed + page)))
        pdf.drawImage(scan, 60, 80, width=470, height=470)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def big_zip(size: int, seed: int = 1) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for n in range(5):
            zf.writestr(f"{UNIT}自查报告{n + 1}.docx", big_docx(size // 5, seed + 10 * n))
    return out.getvalue()


CASES = {"docx": (big_docx, "application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
         "pdf": (big_pdf, "application", "pdf"), "zip": (big_zip, "application", "zip")}  # fmt: skip


def mail_with(case: str, size: int = TARGET_BYTES) -> tuple[bytes, int]:
    build, maintype, subtype = CASES[case]
    data = build(size)
    message = EmailMessage()
    message["From"] = f"{UNIT} <xxk@gzhospital.example.cn>"
    message["To"] = "xxb@gz.gov.cn"
    message["Subject"] = f"{UNIT}{TITLE}"
    message["Date"] = "Tue, 09 Jul 2024 10:00:00 +0800"
    message["Message-ID"] = f"<bench-{case}@gzhospital.example.cn>"
    message.set_content("您好，附件是我院的自查报告，请查收。\n\n信息科")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=f"{UNIT}自查报告.{case}")
    return message.as_bytes(), len(data)


def run(
    rounds: int = 3, cases: tuple[str, ...] = ("docx", "pdf", "zip"), *, isolate: bool | None = None
) -> dict:
    """Each case `rounds` times, each time in a fresh interpreter; medians of the peaks."""
    results: dict = {}
    flags = () if isolate is None else ("--isolate", "on" if isolate else "off")
    with tempfile.TemporaryDirectory(prefix="intake-bench-mem-") as tmp:
        for case in cases:
            raw, attachment = mail_with(case)
            path = Path(tmp) / f"{case}.eml"
            path.write_bytes(raw)
            del raw
            runs = [run_child("bench.memory", "--mail", str(path), *flags) for _ in range(rounds)]
            results[case] = {
                **{k: median([r[k] for r in runs]) for k in ("total_peak_mb", "ingest_peak_mb", "parser_peak_mb",
                                                             "rss_before_mb", "ingest_s")},
                "attachment_mb": attachment / 1e6, "message_mb": path.stat().st_size / 1e6,
                "kind": runs[-1]["kind"], "isolated": runs[-1]["isolated"],
            }  # fmt: skip
    results["max_total_peak_mb"] = max(r["total_peak_mb"] for r in results.values())
    return results


def _parser_peak_mb(config) -> float | None:  # noqa: ANN001 - pipeline.config.Config
    """VmHWM of every parser process this ingest started (the text lane's and the OCR lane's,
    pipeline.inbound.pool), added up; None when parsing is not isolated."""
    if not getattr(config, "isolate_parsing", False):
        return None
    from pipeline.inbound import pool, sandbox

    boxes = [*pool._text_lane, *pool._ocr_lane, *([sandbox._shared] if sandbox._shared is not None else [])]
    peaks = []
    for pid in (box.pid for box in boxes):
        if pid is None:
            continue
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return sum(peaks) if peaks else None


def child(mail: Path, isolate: bool | None = None) -> dict:
    """In a fresh interpreter: ingest one message into a fresh data dir and report the peaks.

    `ingest_peak_mb` is this process; `parser_peak_mb` the parser processes' (their peaks are
    reached while this process waits, holding the raw bytes); `total_peak_mb` their sum.
    """
    from pipeline.inbound.ingest import ingest_raw

    from .common import fresh_context

    overrides = {"limits": {"isolate_parsing": isolate}} if isolate is not None else None
    with tempfile.TemporaryDirectory(prefix="intake-bench-mem1-") as tmp:
        ctx = fresh_context(Path(tmp), overrides)
        raw = mail.read_bytes()
        before = rss_mb()
        reset_peak_rss()
        start = time.perf_counter()
        result = ingest_raw(ctx, raw, source="file", ref=str(mail))
        seconds = time.perf_counter() - start
        ingest_peak = peak_rss_mb()
        parser_peak = _parser_peak_mb(ctx.config)
        ctx.close()
    processed = result.processed
    return {"ingest_peak_mb": ingest_peak, "parser_peak_mb": parser_peak or 0.0,
            "total_peak_mb": ingest_peak + (parser_peak or 0.0), "isolated": parser_peak is not None,
            "rss_before_mb": before, "ingest_s": seconds, "kind": processed.kind if processed else "",
            "institutions": list(processed.institutions) if processed else []}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mail", type=Path, help="ingest this one message (child mode)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--isolate", choices=("on", "off"), help="set [limits] isolate_parsing")
    args = parser.parse_args()
    isolate = None if args.isolate is None else args.isolate == "on"
    print(json.dumps(child(args.mail, isolate) if args.mail else run(args.rounds, isolate=isolate)))


if __name__ == "__main__":
    main()
