"""OCR engines on rendered Chinese report pages: accuracy, seconds per page, peak memory.

    python -m bench.ocr_bench [--pages 4] [--dpi 150]       # both engines, JSON on the last line
    python -m bench.ocr_bench --engine rapidocr --pages 4   # one engine in this process
    python -m bench.ocr_bench --scan 20                     # a 20-page scanned PDF, end to end
    python -m bench.ocr_bench --report 3                    # a mailed 3-page scan: ingest -> status row

`run(pages, dpi)` is what scripts/bench (bench.run) can call: it measures each engine in a fresh
child process (peak RSS of that engine alone) on the same pages: A4 at `dpi`, Noto Serif CJK,
rotated 1.2°, JPEG quality 55 — what a desk scanner sends.  Accuracy is per character:
1 - edit distance / length of the expected text, with whitespace removed (Tesseract spaces CJK).
Engines: RapidOCR (rapidocr-onnxruntime 1.4.4, PP-OCRv4 models in the wheel) and Debian's
tesseract-ocr with chi_sim (skipped when not installed).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import resource
import shutil
import subprocess
import time

from .common import peak_rss_mb, reset_peak_rss, run_child

# Lines as in the commission's reports: names, a title, section headings, body text, dates, stamp line.
PAGES_TEXT: tuple[tuple[str, ...], ...] = (
    ("广州市番禺区第二人民医院", "电子健康码平台应用自查情况报告", "番禺区卫生健康局：",
     "根据《关于开展电子健康码平台应用自查工作的通知》要求，", "我院高度重视，立即组织信息科、医务科开展自查。",
     "一、基本情况", "我院共有门诊诊室86间，已全部配备扫码终端。"),
    ("二、存在问题", "1．部分自助机未支持电子健康码，", "2．住院系统与平台对接尚未完成。",
     "三、整改措施及完成时限", "增配扫码终端20台，2024年6月30日前完成。"),
    ("四、其他需要说明的事项", "无。", "报送单位（盖章）：广州市番禺区第二人民医院",
     "联系人：陈伟明　联系电话：020-84512345", "2024年7月8日"),
    ("广州市越秀区疾病预防控制中心", "关于网络安全自查工作的情况报告", "一、自查范围",
     "本中心门户网站、预约挂号系统及内网办公系统。", "报送单位：广州市越秀区疾病预防控制中心"),
)  # fmt: skip


def pages(count: int, dpi: int) -> list[tuple[bytes, str]]:
    """`count` scanned pages as (JPEG bytes, expected text)."""
    from tests import scanfactory as scan

    scale = dpi / 150
    out = []
    for i in range(count):
        lines = list(PAGES_TEXT[i % len(PAGES_TEXT)])
        img = scan.page(lines, size=(int(1240 * scale), int(1754 * scale)), font_px=int(40 * scale))
        out.append((scan.jpeg(img, 55), "".join(lines)))
    return out


def accuracy(expected: str, got: str) -> float:
    a, b = "".join(expected.split()), "".join(got.split())
    if not a:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return max(0.0, 1 - previous[-1] / len(a))


def _ocr_threads() -> int:
    """The project's `[limits] ocr_threads`: the OCR lane reads pages on this many threads."""
    from .common import project_config

    return project_config().limits.ocr_threads


def _rapidocr(data: bytes) -> str:
    from PIL import Image

    from parsers.documents import ocr

    image = Image.open(io.BytesIO(data)).convert("RGB")
    return "\n".join(line.text for line in ocr.recognise(image, _ocr_threads()))


def _tesseract(data: bytes) -> str:
    proc = subprocess.run(["tesseract", "stdin", "stdout", "-l", "chi_sim", "--psm", "6"], input=data,
                          capture_output=True, timeout=300, check=True)  # fmt: skip
    return proc.stdout.decode("utf-8", "replace")


def measure(engine: str, count: int, dpi: int) -> dict:
    """Run one engine over the pages in this process."""
    work = pages(count, dpi)
    started = time.perf_counter()
    if engine == "rapidocr":
        from parsers.documents import ocr

        ocr.engine(_ocr_threads())
    startup = time.perf_counter() - started
    read = _rapidocr if engine == "rapidocr" else _tesseract
    seconds, scores = [], []
    for data, expected in work:
        t = time.perf_counter()
        got = read(data)
        seconds.append(time.perf_counter() - t)
        scores.append(accuracy(expected, got))
    return {
        "engine": engine,
        "threads": _ocr_threads() if engine == "rapidocr" else None,
        "pages": count,
        "dpi": dpi,
        "startup_s": round(startup, 2),
        "s_per_page": round(sum(seconds) / len(seconds), 2),
        "char_accuracy": round(sum(scores) / len(scores), 4),
        "worst_page_accuracy": round(min(scores), 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    } | ({"tesseract_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
         if engine == "tesseract" else {})  # fmt: skip


def measure_scan(count: int) -> dict:
    """A `count`-page scanned PDF read as an attachment with a page budget of `count` (in this process)."""
    from dataclasses import replace

    from parsers.documents import read_attachment
    from parsers.types import DEFAULT_LIMITS
    from tests import scanfactory as scan

    images = [scan.page(list(PAGES_TEXT[i % 2 + 1])) for i in range(count)]  # no title+unit: no early stop
    data = scan.scanned_pdf(images)
    del images
    gc.collect()
    reset_peak_rss()  # the page images drawn above are the benchmark's, not the reader's
    limits = replace(DEFAULT_LIMITS, max_ocr_pages=count, ocr_timeout_s=3600, max_message_ocr_s=3600,
                     ocr_threads=_ocr_threads())  # fmt: skip
    started = time.perf_counter()
    part = read_attachment(data, filename="scan.pdf", declared_type="", path="1", limits=limits)
    seconds = time.perf_counter() - started
    return {
        "scan_pages": count,
        "pdf_bytes": len(data),
        "seconds": round(seconds, 1),
        "s_per_page": round(seconds / count, 2),
        "paragraphs": len(part.document.paragraphs) if part.document else 0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def measure_report(count: int) -> dict:
    """A `count`-page scanned report mailed from an unknown address with a subject naming nobody, taken in
    end to end as the worker does (`ingest_raw`: raw store, the parse sandbox with OCR, attribution,
    status row), in a fresh data dir with the project's config.  The unit is named only on the scan."""
    import email.message
    import tempfile
    from datetime import UTC, datetime
    from pathlib import Path

    from pipeline.inbound.ingest import ingest_raw
    from pipeline.outputs.snapshot import build_snapshot
    from tests import scanfactory as scan

    from .common import fresh_context

    texts = [list(PAGES_TEXT[0]), list(PAGES_TEXT[1])] + [["（续）"] + list(PAGES_TEXT[1][:3])] * max(0, count - 3)
    texts.append(list(PAGES_TEXT[2]))
    images = [scan.page(lines, stamp="广州市番禺区第二人民医院" if n == len(texts) - 1 else "")
              for n, lines in enumerate(texts[:count])]  # fmt: skip
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "xinxike2019@163.com", "xxb@gz.gov.cn", "材料"
    msg["Date"] = "Mon, 08 Jul 2024 10:00:00 +0800"
    msg.set_content("请查收。")
    msg.add_attachment(scan.scanned_pdf(images), maintype="application", subtype="pdf", filename="扫描件.pdf")
    raw = msg.as_bytes()
    with tempfile.TemporaryDirectory(prefix="intake-ocr-bench-") as tmp:
        ctx = fresh_context(Path(tmp))
        try:
            started = time.perf_counter()
            ingest_raw(ctx, raw, source="file", ref="bench/scan.eml")
            seconds = time.perf_counter() - started
            rows = build_snapshot(ctx, datetime.now(UTC)).statuses
            counted = [r.institution.name for r in rows if r.last is not None]
        finally:
            ctx.close()
    return {"report_pages": count, "seconds": round(seconds, 1), "attributed_to": counted}


def run(count: int = 4, dpi: int = 150, scan_pages: int = 20) -> dict:
    """Both engines, each in a fresh child interpreter, and a `scan_pages` scanned PDF end to end.

    The children run with MALLOC_ARENA_MAX=2, as the parse sandbox runs its worker.
    """
    os.environ["MALLOC_ARENA_MAX"] = "2"
    results = {"rapidocr": run_child("bench.ocr_bench", "--engine", "rapidocr", "--pages", str(count),
                                     "--dpi", str(dpi), timeout=900)}  # fmt: skip
    if shutil.which("tesseract"):
        results["tesseract"] = run_child("bench.ocr_bench", "--engine", "tesseract", "--pages", str(count),
                                         "--dpi", str(dpi), timeout=900)  # fmt: skip
    else:
        results["tesseract"] = {"skipped": "tesseract not installed (apt-get install tesseract-ocr-chi-sim)"}
    for pages in (1, scan_pages):
        results[f"scan_pdf_{pages}_pages"] = run_child("bench.ocr_bench", "--scan", str(pages), timeout=1800)
    results["report_3_pages"] = run_child("bench.ocr_bench", "--report", "3", timeout=900)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("rapidocr", "tesseract"))
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--scan", type=int, default=0, help="read an N-page scanned PDF end to end")
    parser.add_argument("--report", type=int, default=0, help="ingest a mailed N-page scanned report end to end")
    args = parser.parse_args()
    if args.report:
        print(json.dumps(measure_report(args.report), ensure_ascii=False))
    elif args.scan:
        print(json.dumps(measure_scan(args.scan)))
    elif args.engine:
        print(json.dumps(measure(args.engine, args.pages, args.dpi)))
    else:
        print(json.dumps(run(args.pages, args.dpi), ensure_ascii=False))


if __name__ == "__main__":
    main()
