"""Ingest and reprocess throughput on the benchmark corpus, each beside the bare baseline.

Wall and CPU time are both measured (CPU: this process, its parser processes and any
reaped child), so a ratio below 1 cannot come from hiding work in another process.
One round = bare baseline over the corpus bytes (scans OCR'd, see baseline.py; also timed
without OCR for reference), then a fresh data dir: ingest every
mail (an `Ingestor`, as `intake ingest` and the worker do, then one `record_status_changes` as
`ingest_paths` does), then `reprocess --all` from the raw store.  Ratios are taken
within a round; the report gives the median of the rounds.  A separate pass times
the durable writes alone (raw store put with its fsyncs + the row's commit) to show
the disk's share.
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from parsers.types import ParseLimits
from pipeline.clerk.reprocess import Selection, reprocess
from pipeline.inbound.ingest import Ingestor
from pipeline.inbound.pool import worker_count
from pipeline.outputs.history import record_status_changes
from storage.messages import save_new_message

from .baseline import run_baseline
from .common import cpu_timed, fresh_context, median, progress, project_config, timed
from .corpus import BenchCorpus

ISOLATION_KEY = "isolate_parsing"


def isolation_supported() -> bool:
    """Whether `[limits] isolate_parsing` exists (the hostile-mail sandbox, maybe not merged yet)."""
    if ISOLATION_KEY in {f.name for f in dataclasses.fields(ParseLimits)}:
        return True
    source = (Path(__file__).resolve().parent.parent / "pipeline" / "config.py").read_text(encoding="utf-8")
    return ISOLATION_KEY in source


def _ingest_all(ctx, raws: list[bytes]) -> None:  # noqa: ANN001 - pipeline.context.Context
    with Ingestor(ctx) as ingestor:  # as `intake ingest` and the IMAP poll do
        for n, raw in enumerate(raws):
            ingestor.add(raw, source="file", ref=f"bench/{n:05d}.eml")
    record_status_changes(ctx, datetime.now(UTC), cause="ingest")


def _durable_writes(ctx, raws: list[bytes]) -> None:  # noqa: ANN001
    for n, raw in enumerate(raws):
        stored = ctx.raw.put(raw)
        with ctx.db.begin() as conn:
            save_new_message(conn, sha256=stored.sha256, size=stored.size, raw_path=stored.relpath,
                             received_at=None, received_basis="unknown", source="file", ref=f"bench/{n}")  # fmt: skip


def load_config_for(overrides: dict | None):  # noqa: ANN201 - a pipeline.config.Config
    config = project_config()
    if overrides and "limits" in overrides:
        config = dataclasses.replace(config, **overrides["limits"])
    return config


def run_rounds(corpus: BenchCorpus, *, rounds: int = 3, isolate: bool | None = None) -> dict:
    """Rounds of baseline / ingest / reprocess; `isolate` sets [limits] isolate_parsing when not None."""
    raws = [m.raw for m in corpus.mails]
    n = len(raws)
    overrides = {"limits": {ISOLATION_KEY: isolate}} if isolate is not None else None
    per_round = []
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
        work = Path(tmp)
        for r in range(rounds):
            base_s, base_cpu, _ = cpu_timed(lambda: run_baseline(raws))
            no_ocr_s, _cpu, _ = cpu_timed(lambda: run_baseline(raws, ocr=False))
            ctx = fresh_context(work, overrides)
            try:
                ingest_s, ingest_cpu, _ = cpu_timed(lambda ctx=ctx: _ingest_all(ctx, raws))
                reprocess_s, reprocess_cpu, summary = cpu_timed(
                    lambda ctx=ctx: reprocess(ctx, Selection(all=True), by="bench")
                )
            finally:
                ctx.close()
            if summary.processed != n or summary.failed:
                raise RuntimeError(
                    f"reprocess: {summary.processed}/{n} processed, {len(summary.failed)} failed"
                )
            per_round.append({"baseline_s": base_s, "baseline_no_ocr_s": no_ocr_s, "ingest_s": ingest_s,
                              "reprocess_s": reprocess_s,
                              "ingest_ratio": ingest_s / base_s, "reprocess_ratio": reprocess_s / base_s,
                              "baseline_cpu_s": base_cpu, "ingest_cpu_s": ingest_cpu, "reprocess_cpu_s": reprocess_cpu,
                              "ingest_cpu_ratio": ingest_cpu / base_cpu,
                              "reprocess_cpu_ratio": reprocess_cpu / base_cpu})  # fmt: skip
            progress(
                f"round {r + 1}/{rounds}: baseline {base_s:.1f}s ingest {ingest_s:.1f}s reprocess {reprocess_s:.1f}s"
            )
        durable_s = float("nan")
        if isolate is not False:  # the disk's share does not depend on where parsing runs
            ctx = fresh_context(work, overrides)
            try:
                durable_s, _ = timed(lambda: _durable_writes(ctx, raws))
            finally:
                ctx.close()

    def med(key: str) -> float:
        return median([p[key] for p in per_round])

    return {
        "rounds": per_round,
        "messages": n,
        "baseline_s": med("baseline_s"),
        "baseline_no_ocr_s": med("baseline_no_ocr_s"),
        "ingest_s": med("ingest_s"),
        "reprocess_s": med("reprocess_s"),
        "baseline_msgs_per_s": n / med("baseline_s"),
        "ingest_msgs_per_s": n / med("ingest_s"),
        "reprocess_msgs_per_s": n / med("reprocess_s"),
        "ingest_ratio": med("ingest_ratio"),
        "reprocess_ratio": med("reprocess_ratio"),
        "ingest_cpu_ratio": med("ingest_cpu_ratio"),
        "reprocess_cpu_ratio": med("reprocess_cpu_ratio"),
        "parse_workers": worker_count(load_config_for(overrides)),
        "durable_writes_ms_per_msg": durable_s / n * 1000,
        "isolate_parsing": isolate,
    }
