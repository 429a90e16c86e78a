"""Run every benchmark, print one table, write bench/results/latest.json.

    python -m bench.run [--rounds 3] [--skip imap,memory,...] [--imap-sync 2000]

Sections: corpus, pipeline (ingest + reprocess vs the bare baseline, with
[limits] isolate_parsing on and off when the sandbox exists), attribution (roster
growth), scale (status + workbook, in child processes), memory (25 MB attachment,
child processes), imap (bench/imap_bench.py, when present and Dovecot is installed),
arrival (bench/arrival_bench.py: APPEND → status and receipt, IDLE and polling), ocr
(bench.ocr_bench.run(): pages/s, accuracy, peak memory per page and for a 20-page scan).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime

from . import attribution_bench, cli_bench, memory, pipeline_bench
from .common import RESULTS, ROOT, progress, project_config, run_child
from .corpus import build_corpus
from .report import render_table

SECTIONS = ("cli", "pipeline", "attribution", "scale", "memory", "imap", "arrival", "ocr", "web")
SCALES = ((96, 500), (10_000, 100_000))


def _imap(sync: int, sync_runs: int, runs: int) -> dict:
    script = ROOT / "bench" / "imap_bench.py"
    if not script.exists():
        return {"skipped": "bench/imap_bench.py not present (IMAP worker issue)"}
    if os.geteuid() != 0 or shutil.which("dovecot") is None:
        return {"skipped": "needs root and Dovecot (scripts/setup --with-services)"}
    out = RESULTS / "imap_bench.json"
    out.unlink(missing_ok=True)
    args = [
        sys.executable,
        str(script),
        "--runs",
        str(runs),
        "--sync",
        str(sync),
        "--sync-runs",
        str(sync_runs),
    ]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    for line in proc.stdout.splitlines():
        if line.strip() and not line.startswith((" ", "{", "}", '"')):
            progress("imap: " + line.strip())
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"skipped": f"imap_bench.py failed ({proc.returncode}): " + " | ".join(tail)}
    return json.loads(out.read_text())


def _arrival(appends: int, poll_appends: int) -> dict:
    """Arrival → status with IDLE and with polling (bench/arrival_bench.py, needs root and Dovecot)."""
    if os.geteuid() != 0 or shutil.which("dovecot") is None:
        return {"skipped": "needs root and Dovecot (scripts/setup --with-services)"}
    try:
        return run_child("bench.arrival_bench", "--appends", str(appends), "--poll-appends", str(poll_appends),
                         timeout=3600)  # fmt: skip
    except RuntimeError as err:
        return {"skipped": str(err)}


def _web(scale: list[int]) -> dict:
    """Console response times (bench/web_bench.py): the demo corpus, 96 rows / 500 mails, and `scale`."""
    args = ["--requests", "10", "--scale-requests", "5"] + (["--scale", *map(str, scale)] if scale else [])
    try:
        return {"sets": run_child("bench.web_bench", *args, timeout=3600)}
    except RuntimeError as err:
        return {"skipped": str(err)}


def _ocr() -> dict:
    """OCR pages/s and memory per page: bench/ocr_bench.py from the formats issue, when it is on this branch."""
    if not (ROOT / "bench" / "ocr_bench.py").exists():
        return {"skipped": "bench/ocr_bench.py not present"}
    code = "import json; from bench.ocr_bench import run; print(json.dumps(run(), default=str))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {"skipped": "bench.ocr_bench failed: " + " | ".join((proc.stderr or "").strip().splitlines()[-3:])}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement (medians are reported)")
    parser.add_argument("--messages", type=int, default=2000, help="size of the benchmark corpus")
    parser.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    parser.add_argument("--imap-sync", type=int, default=2000, help="messages in the IMAP first-sync runs")
    parser.add_argument("--imap-sync-runs", type=int, default=3)
    parser.add_argument("--arrival-appends", type=int, default=20, help="APPENDs timed with IMAP IDLE")
    parser.add_argument("--arrival-poll-appends", type=int, default=5, help="APPENDs timed with polling only")
    parser.add_argument("--web-scale", type=int, nargs=2, default=[10000, 100000], metavar=("ROWS", "MAILS"),
                        help="the console's large data set (0 0: only the demo corpus and 96 rows / 500 mails)")
    parser.add_argument("--no-isolation-compare", action="store_true",
                        help="measure the pipeline only as configured (skip isolate_parsing on/off)")  # fmt: skip
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    started = time.perf_counter()
    config = project_config()
    results: dict = {
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "rounds": args.rounds,
        "git": _git_head(),
    }
    if "cli" not in skip:
        progress("CLI start-up: import typer / intake --help / intake status (repeated subprocesses)")
        results["cli"] = cli_bench.run(runs=max(9, 3 * args.rounds))
    progress("building the corpus (cached in bench/results/)")
    corpus = build_corpus(args.messages)
    results["corpus"] = corpus.describe()
    progress(f"corpus: {results['corpus']}")
    if "pipeline" not in skip:
        modes = [None]
        if pipeline_bench.isolation_supported() and not args.no_isolation_compare:
            modes = [True, False]
        results["pipeline"] = {}
        for mode in modes:
            label = {None: "as_configured", True: "isolated", False: "in_process"}[mode]
            progress(f"pipeline ({label})")
            results["pipeline"][label] = pipeline_bench.run_rounds(corpus, rounds=args.rounds, isolate=mode)
    if "attribution" not in skip:
        progress("attribution vs roster size")
        results["attribution"] = attribution_bench.run(corpus, config, rounds=args.rounds)
    del corpus
    if "scale" not in skip:
        results["scale"] = {}
        for institutions, count in SCALES:
            progress(f"status + workbook: {institutions:,} institutions / {count:,} messages (child process)")
            results["scale"][f"{institutions}/{count}"] = run_child(
                "bench.scale",
                "--institutions",
                str(institutions),
                "--messages",
                str(count),
                "--rounds",
                str(args.rounds),
            )
    if "memory" not in skip:
        results["memory"] = {}
        modes = [True, False] if pipeline_bench.isolation_supported() else [None]
        for mode in modes:
            label = {None: "as_configured", True: "isolated", False: "in_process"}[mode]
            progress(f"memory, one message with a 25 MB attachment ({label}, child processes)")
            results["memory"][label] = memory.run(args.rounds, isolate=mode)
    if "imap" not in skip:
        progress("IMAP poll figures (bench/imap_bench.py)")
        results["imap"] = _imap(args.imap_sync, args.imap_sync_runs, runs=max(7, args.rounds))
    if "arrival" not in skip:
        progress("arrival → status with IMAP IDLE and with polling (bench/arrival_bench.py)")
        results["arrival"] = _arrival(args.arrival_appends, args.arrival_poll_appends)
    if "ocr" not in skip:
        progress("OCR pages/s and memory per page (bench/ocr_bench.py)")
        results["ocr"] = _ocr()
    if "web" not in skip:
        progress("console response times (bench/web_bench.py, intake web over HTTP)")
        results["web"] = _web([n for n in args.web_scale if n] if all(args.web_scale) else [])
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n"
    )
    print(render_table(results))
    print(f"\n(elapsed {results['elapsed_s']:.0f} s; JSON in {(RESULTS / 'latest.json').relative_to(ROOT)})")


def _git_head() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               check=False).stdout.strip()  # fmt: skip
    except OSError:
        return ""
    return head + ("+dirty" if dirty else "")


if __name__ == "__main__":
    main()
