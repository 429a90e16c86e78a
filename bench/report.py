"""The one table `scripts/bench` prints (Markdown, so it can be pasted into the README as is)."""

from __future__ import annotations

from collections.abc import Callable

Row = tuple[str, str, str, str]  # measure, figure, target, verdict


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "**missed**")


def _pipeline_rows(label: str, p: dict) -> list[Row]:
    mode = {"isolated": ", parse sandbox on", "in_process": ", parse sandbox off", "as_configured": ""}[label]
    rows: list[Row] = [
        (f"1. Ingest{mode}: pipeline / bare baseline",
         f"{p['ingest_msgs_per_s']:.0f} / {p['baseline_msgs_per_s']:.0f} msg/s = **{p['ingest_ratio']:.2f}x** wall, "
         f"{_cpu(p, 'ingest')} CPU",
         "≤ 1.0x", _verdict(p["ingest_ratio"] <= 1.0)),
        (f"2. Reprocess{mode}: pipeline / bare baseline",
         f"{p['reprocess_msgs_per_s']:.0f} / {p['baseline_msgs_per_s']:.0f} msg/s = **{p['reprocess_ratio']:.2f}x** wall, "
         f"{_cpu(p, 'reprocess')} CPU",
         "≤ 1.0x", _verdict(p["reprocess_ratio"] <= 1.0)),
    ]  # fmt: skip
    if "baseline_no_ocr_s" in p:
        rows.append(("   bare baseline without OCR of the scans (reference)",
                     f"{p['messages'] / p['baseline_no_ocr_s']:.0f} msg/s; with it {p['baseline_msgs_per_s']:.0f} msg/s",
                     "", ""))  # fmt: skip
    if label != "in_process":
        rows.append(("   durable writes alone (raw fsync + row commit)",
                     f"{p['durable_writes_ms_per_msg']:.1f} ms/msg vs baseline {1000 / p['baseline_msgs_per_s']:.1f} ms/msg",
                     "", ""))  # fmt: skip
    return rows


def _cpu(p: dict, stage: str) -> str:
    value = p.get(f"{stage}_cpu_ratio")
    return "?" if value is None else f"**{value:.2f}x**"


def _arrival_rows(a: dict) -> list[Row]:
    if "skipped" in a:
        return [("7. Arrival → status", a["skipped"], "< 10 s with IDLE", "")]
    rows: list[Row] = []
    for mode in ("idle", "poll"):
        m = a.get(mode)
        if m:
            rows.append((f"7. Arrival → status and receipt, {mode} ({m['appends']} APPENDs)",
                         f"p50 {m['p50_s']:.1f} s, p95 {m['p95_s']:.1f} s",
                         "< 10 s" if mode == "idle" else "", _verdict(m["p50_s"] < 10) if mode == "idle" else ""))  # fmt: skip
    return rows


def _web_rows(w: dict) -> list[Row]:
    if "skipped" in w:
        return [("9. Console", w["skipped"], "", "")]
    rows: list[Row] = []
    for s in w["sets"] if isinstance(w["sets"], list) else []:
        for page, name in (("dashboard", "总览"), ("review_item", "review item"), ("review_list", "review list")):
            t = s.get(page)
            if t:
                rows.append((f"9. Console {name}, {s['set']}: first / cold p50, p95 / warm p50",
                             f"{t['first_ms']:,.0f} / {t['cold']['p50_ms']:,.0f}, {t['cold']['p95_ms']:,.0f} / "
                             f"{t['warm']['p50_ms']:,.0f} ms", "", ""))  # fmt: skip
    return rows


def _ocr_rows(o: dict) -> list[Row]:
    if "skipped" in o:
        return [("8. OCR", o["skipped"], "", "")]
    rows: list[Row] = []
    for engine in ("rapidocr", "tesseract"):
        e = o.get(engine, {})
        if "s_per_page" in e:
            threads = f", {e['threads']} thread{'s' if e['threads'] != 1 else ''}" if e.get("threads") else ""
            rows.append((f"8. OCR {engine}, {e['pages']} A4 pages at {e['dpi']} dpi{threads}",
                         f"{1 / e['s_per_page']:.2f} pages/s ({e['s_per_page'] * 1000:.0f} ms/page), accuracy "
                         f"{e['char_accuracy']:.1%} (worst {e['worst_page_accuracy']:.1%}), peak {e['peak_rss_mb']:.0f} MB",
                         "", ""))  # fmt: skip
    for key, scan in o.items():
        if key.startswith("scan_pdf_") and "seconds" in scan:
            rows.append((f"   scanned PDF of {scan['scan_pages']} pages read in full",
                         f"{scan['seconds']:.1f} s ({scan['s_per_page']:.1f} s/page), peak {scan['peak_rss_mb']:.0f} MB",
                         "< parse_memory_mb", ""))  # fmt: skip
    report = o.get("report_3_pages", {})
    if "seconds" in report:
        rows.append(("   mailed 3-page scanned report: ingest -> status row",
                     f"{report['seconds']:.1f} s, counted for {'、'.join(report['attributed_to']) or 'nobody'}",
                     "< 15 s", _verdict(report["seconds"] < 15 and len(report["attributed_to"]) == 1)))  # fmt: skip
    return rows


def _attribution_rows(a: dict) -> list[Row]:
    sizes = a["by_size"]
    figures = " / ".join(f"{int(k):,}: {v['us_per_message']:.0f}" for k, v in sizes.items())
    loads = " / ".join(f"{int(k):,}: {v['roster_load_s'] * 1000:.0f} ms" for k, v in sizes.items())
    return [
        ("3. Attribution per message (µs) by roster size", f"{figures}; **{a['ratio']:.2f}x**",
         "10k ≤ 2x 96", _verdict(a["ratio"] <= 2.0)),
        ("   roster load + name index build", loads, "", ""),
    ]  # fmt: skip


def _scale_rows(scale: dict) -> list[Row]:
    rows: list[Row] = []
    for key, s in scale.items():
        institutions, messages = (int(n) for n in key.split("/"))
        big = institutions > 1000
        status_limit, book_limit = (5.0, 60.0) if big else (1.0, 3.0)
        where = f"{institutions:,} inst. / {messages:,} msgs"
        rows.append((f"4. Status, {where}", f"{s['status_s']:.2f} s", f"< {status_limit:g} s",
                     _verdict(s["status_s"] < status_limit)))  # fmt: skip
        rows.append((f"4. Workbook, {where}", f"{s['workbook_s']:.2f} s ({s['workbook_mb']:.1f} MB)",
                     f"< {book_limit:g} s", _verdict(s["workbook_s"] < book_limit)))  # fmt: skip
        if big:
            rows.append((f"4. Peak RSS, {where}", f"{s['peak_rss_mb']:.0f} MB", "< 2048 MB",
                         _verdict(s["peak_rss_mb"] < 2048)))  # fmt: skip
            backup = s.get("backup", {})
            figure = f"{backup['backup_s']:.1f} s" if "backup_s" in backup else backup.get("skipped", "—")
            rows.append((f"4. Backup, {where}", figure, "", ""))
    return rows


def _memory_rows(memory: dict) -> list[Row]:
    rows: list[Row] = []
    for label, cases in memory.items():
        mode = {"isolated": "sandbox on", "in_process": "sandbox off", "as_configured": "as configured"}[
            label
        ]
        for case, m in cases.items():
            if not isinstance(m, dict):
                continue
            if m["isolated"]:
                figure = f"{m['total_peak_mb']:.0f} MB (ingest {m['ingest_peak_mb']:.0f} + parser {m['parser_peak_mb']:.0f})"
            else:
                figure = f"{m['total_peak_mb']:.0f} MB"
            rows.append((f"5. Peak RSS, 1 msg + 25 MB .{case} ({mode})", figure, "< 400 MB",
                         _verdict(m["total_peak_mb"] < 400)))  # fmt: skip
    return rows


def _imap_rows(imap: dict) -> list[Row]:
    if "skipped" in imap:
        return [("6. IMAP poll figures", f"skipped: {imap['skipped']}", "", "")]
    rows: list[Row] = []
    idle = {int(k): v for k, v in imap.get("idle_poll_ms", {}).items()}
    if idle:
        small, big = min(idle), max(idle)
        ratio = idle[big] / idle[small]
        rows.append((f"6. Idle poll, {small:,} / {big:,}-message mailbox", f"{idle[small]:.1f} / {idle[big]:.1f} ms; {ratio:.2f}x",
                     "< 100 ms, ≤ 1.3x", _verdict(idle[big] < 100 and ratio <= 1.3)))  # fmt: skip
    if "poll_command_ms" in imap:
        rows.append((f"   the whole `intake poll` command, {max(idle):,}-message mailbox", f"{imap['poll_command_ms']} ms",
                     "", ""))  # fmt: skip
    sync = imap.get("first_sync")
    if sync:
        rows.append((f"6. First sync, {sync['messages']:,} messages: IMAP / plain ingest",
                     f"{sync['imap_msgs_per_s']:.0f} / {sync['ingest_msgs_per_s']:.0f} msg/s",
                     "speed of ingest", _verdict(sync["imap_vs_ingest"] >= 0.9)))  # fmt: skip
    return rows


def _cli_rows(c: dict) -> list[Row]:
    return [
        ("0. CLI start: `intake --help` / `import typer`",
         f"{c['help_s'] * 1000:.0f} / {c['typer_s'] * 1000:.0f} ms = **{c['help_ratio']:.2f}x**", "≤ 1.5x",
         _verdict(c["help_ratio"] <= 1.5)),
        ("   `intake status`, 96 rows / `import typer`",
         f"{c['status_s'] * 1000:.0f} / {c['typer_s'] * 1000:.0f} ms = **{c['status_ratio']:.2f}x**", "≤ 3x",
         _verdict(c["status_ratio"] <= 3)),
    ]  # fmt: skip


# Each section of the results and its rows, in the order of the table.
_SECTION_ROWS: tuple[tuple[str, Callable[[dict], list[Row]]], ...] = (
    ("cli", _cli_rows),
    ("pipeline", lambda modes: [row for label, p in modes.items() for row in _pipeline_rows(label, p)]),
    ("attribution", _attribution_rows),
    ("scale", _scale_rows),
    ("memory", _memory_rows),
    ("imap", _imap_rows),
    ("arrival", _arrival_rows),
    ("ocr", _ocr_rows),
    ("web", _web_rows),
)


def render_table(results: dict) -> str:
    corpus = results.get("corpus", {})
    rows = [row for key, section_rows in _SECTION_ROWS if key in results for row in section_rows(results[key])]
    head = (f"Measured {results['measured_at']} on {results['machine']['cpus']} CPUs, Python "
            f"{results['machine']['python']} (git {results.get('git', '?')}); medians of {results['rounds']} runs.\n"
            f"Corpus: {corpus.get('messages', 0):,} generated mails, {corpus.get('with_docx_or_pdf', 0):.0%} with a "
            f".docx/.pdf, {corpus.get('total_mb', 0)} MB, sizes (min/median/max KB) {corpus.get('size_kb_min_median_max')}.\n")  # fmt: skip
    widths = [max(len(r[i]) for r in [("Measure", "Figure", "Target", ""), *rows]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(("Measure", "Figure", "Target", ""), widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return head + "\n" + "\n".join(lines)
