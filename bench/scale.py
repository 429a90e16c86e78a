"""Status and workbook at scale, run in a fresh interpreter so its peak RSS is its own.

    python -m bench.scale --institutions 10000 --messages 100000 [--rounds 3]

Writes a roster of that size (bench.rosters), fills the tables with synthetic
messages, items and decisions by bulk inserts into the storage layer's tables (no
mail is parsed), then times `build_snapshot` (every status) and `build_workbook` and prints one JSON
line: medians, peak RSS (ru_maxrss) and the row counts.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from pipeline.config import load_config
from pipeline.context import Context, open_context
from pipeline.domain.roster import load_roster
from pipeline.outputs.snapshot import build_snapshot
from pipeline.outputs.workbook import build_workbook
from storage.schema import audit_log, decisions, items, messages

from .common import ROOT, median, peak_rss_mb, timed, write_config
from .rosters import campaign_of_size

CAMPAIGN_START = datetime(2024, 7, 7, 9, 0, tzinfo=UTC) - timedelta(hours=8)
AS_OF = datetime(2024, 7, 12, 1, 0, tzinfo=UTC)  # 09:00 in Guangzhou, as in the sample corpus
CHUNK = 5_000


def _message_row(i: int, rng: random.Random, received: datetime, kind: str) -> dict:
    return {
        "id": i, "sha256": f"{i:064x}", "size": rng.randint(2_000, 400_000), "raw_path": f"raw/bench/{i}.eml",
        "received_at": received, "received_basis": "received", "message_id_header": f"<{i}@bench.example>",
        "sender_address": f"user{rng.randint(1, 30_000)}@example.cn", "sender_name": "办公室",
        "subject": f"关于电子健康码平台应用自查情况的报告（{i}）", "date_header": received, "parse_status": "ok",
        "parse_error": "", "problems": [], "kind": kind, "ingested_at": received, "processed_at": received,
    }  # fmt: skip


def _decision(i: int, path: str, kind: str, received: datetime, **values: object) -> dict:
    row = {
        "message_id": i, "item_path": path, "kind": kind, "institution": "", "confidence": 0.0, "evidence": [],
        "reason": "", "sections": {}, "readable": True, "via_bureau": "", "origin": "auto", "decided_by": "",
        "decided_at": received, "note": "", "active": True,
    }  # fmt: skip
    row.update(values)
    return row


def synthetic_rows(
    names: list[str], count: int, section_titles: tuple[str, ...], *, seed: int = 8
) -> tuple[list[dict], list[dict], list[dict]]:
    """Messages, items and decisions: ~45% reports (a .docx, sometimes its PDF too), ~10% review, rest unrelated."""
    rng = random.Random(seed)
    msgs, its, decs = [], [], []
    span = (AS_OF - CAMPAIGN_START).total_seconds()
    for i in range(1, count + 1):
        received = CAMPAIGN_START + timedelta(seconds=span * i / (count + 1))
        roll = rng.random()
        kind = "report" if roll < 0.45 else ("needs_review" if roll < 0.55 else "unrelated")
        msgs.append(_message_row(i, rng, received, kind))
        if kind == "unrelated":
            decs.append(_decision(i, "message", "unrelated", received, reason="不含本次自查报告"))
            continue
        name = rng.choice(names)
        files = [("1", f"{name}自查报告.docx", 38_000)]
        if rng.random() < 0.3:
            files.append(("2", f"{name}自查报告（盖章）.pdf", 120_000))
        for path, filename, size in files:
            its.append({"message_id": i, "path": path, "filename": filename, "content_type": "application/pdf"
                        if filename.endswith(".pdf") else "application/docx", "kind": "document", "size": size,
                        "sha256": f"{i:060x}{path:>04}", "problem": "", "text_chars": 3_000})  # fmt: skip
            evidence = [{"signal": "title", "institution": name, "weight": 6.0, "text": name}]
            if kind == "report":
                sections = {s: rng.random() < 0.9 for s in section_titles}
                decs.append(_decision(i, path, "report", received, institution=name, confidence=0.9,
                                      evidence=evidence, sections=sections))  # fmt: skip
            else:
                decs.append(_decision(i, path, "needs_review", received, institution=name, confidence=0.4,
                                      evidence=evidence, reason=f"证据不足：可能是 {name}（得分 2）"))  # fmt: skip
    return msgs, its, decs


def fill(ctx: Context, count: int) -> dict:
    names = [inst.name for inst in load_roster(ctx.config.campaign)]
    msgs, its, decs = synthetic_rows(names, count, ctx.config.campaign.rules.section_titles)
    audit = [{"at": AS_OF, "actor": "system", "action": "status_change", "target": n, "institution": n,
              "details": {"from": "pending", "to": "on_time"}, "reason": "ingest"} for n in names[:2_000]]  # fmt: skip
    with ctx.db.begin() as conn:
        for table, rows in ((messages, msgs), (items, its), (decisions, decs), (audit_log, audit)):
            for start in range(0, len(rows), CHUNK):
                conn.execute(insert(table), rows[start : start + CHUNK])
    return {"messages": len(msgs), "items": len(its), "decisions": len(decs)}


def run(institutions: int, count: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="intake-bench-scale-") as tmp:
        work = Path(tmp)
        base = load_config(ROOT / "config.toml")
        campaign = campaign_of_size(base.campaign, institutions, work / "rosters")
        data = work / "data-src"
        data.mkdir()
        for name in ("bureaus.csv", "contacts.csv"):
            (data / name).write_bytes((ROOT / "data" / name).read_bytes())
        (data / "roster.csv").write_bytes(Path(campaign.roster).read_bytes())
        ctx = open_context(load_config(write_config(work, data=data)))
        try:
            fill_s, counts = timed(lambda: fill(ctx, count))
            rss_after_fill = peak_rss_mb()
            status_times, book_times = [], []
            for _ in range(rounds):
                seconds, rows = timed(lambda: build_snapshot(ctx, AS_OF).statuses)
                status_times.append(seconds)
            for n in range(rounds):
                out = work / f"book{n}.xlsx"
                seconds, _ = timed(lambda out=out: build_workbook(ctx, AS_OF, out))
                book_times.append(seconds)
            book_mb = out.stat().st_size / 1e6
            backup = _time_backup(ctx.data_dir, work / "backup")
        finally:
            ctx.close()
    return {
        "backup": backup,
        "institutions": len(rows), **counts, "fill_s": fill_s, "rounds": rounds,
        "status_s": median(status_times), "workbook_s": median(book_times), "status_runs": status_times,
        "workbook_runs": book_times, "workbook_mb": book_mb, "peak_rss_mb": peak_rss_mb(),
        "rss_after_fill_mb": rss_after_fill,
    }  # fmt: skip


def _time_backup(data_dir: Path, dest: Path) -> dict:
    """The backup's time for this data set, when `storage.backup` (the ops issue) is on this branch."""
    try:
        from storage.backup import backup  # type: ignore[import-not-found]
    except ImportError:
        return {"skipped": "storage.backup not present (ops issue not merged): hook only"}
    seconds, _ = timed(lambda: backup(data_dir, dest))
    return {"backup_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--institutions", type=int, default=96)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.institutions, args.messages, args.rounds)))


if __name__ == "__main__":
    main()
