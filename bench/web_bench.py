"""Console response times: dashboard and review-item page, p50 / p95, over real HTTP.

    python -m bench.web_bench                      # the demo corpus (real mail) and 96 rows / 500 mails
    python -m bench.web_bench --scale 10000 100000 # also 10,000 rows / 100,000 mails (slow to fill)

Each data set is served by `intake web` (uvicorn, the CLI's own start-up) on 127.0.0.1;
a logged-in client requests each page: "first" once, right after the console started (it
reads all the stored mail), then `--requests` times "cold", with a change written to the
database before each request — a clerk's decision on one message, as when an item is settled
or the worker has just recorded a mail: the snapshot is rebuilt, the console's mail cache
re-reads that message — and `--requests` times "warm" (nothing changed: what a polling
dashboard or a second look costs).  The load average is recorded beside the figures.
The synthetic sets are filled like bench/scale.py (bulk rows, no raw mail), so their
review page shows an item whose raw mail is absent; the demo set has real mail, so
its review page includes re-parsing the message in the sandbox.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import itertools
import json
import os
import re
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.outputs.snapshot import build_snapshot
from pipeline.users import add_user
from pipeline.vocab import ItemPath, Kind
from storage.audit import save_audit
from storage.decisions import save_manual_decision
from storage.rows import Decision
from tests.browser import ConsoleServer

from .common import ROOT, write_config
from .rosters import campaign_of_size
from .scale import AS_OF, fill

PASSWORD = "bench password 1"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=600) as r:
            return r.read().decode("utf-8")

    def login(self, username: str) -> None:
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.get("/login")).group(1)
        # Land on a cheap page: "first" below must be the first request of each page.
        data = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token,
                                       "next": "/api/changes"})  # fmt: skip
        with self.opener.open(self.base + "/login", data=data.encode(), timeout=600) as r:
            r.read()

    def time(self, path: str, requests: int, touch) -> dict:  # noqa: ANN001 - a callable
        start = time.perf_counter()
        self.get(path)  # the first request of this page (the dashboard's: the console's first read of everything)
        result: dict = {"requests": requests, "first_ms": round((time.perf_counter() - start) * 1000, 1)}
        for mode in ("cold", "warm"):
            times = []
            for _ in range(requests):
                if mode == "cold":
                    touch()
                start = time.perf_counter()
                self.get(path)
                times.append(time.perf_counter() - start)
            result[mode] = {"p50_ms": round(_percentile(times, 0.5) * 1000, 1),
                            "p95_ms": round(_percentile(times, 0.95) * 1000, 1)}  # fmt: skip
        return result


def _measure(config_path: Path, requests: int, label: str, as_of: str) -> dict:
    config = load_config(config_path)
    ctx = open_context(config)
    try:
        add_user(ctx, "bench", "viewer", PASSWORD, by="bench")
        snap = build_snapshot(ctx, datetime.fromisoformat(as_of))
        queue = snap.review_items
        item = next((q.item for q in queue if q.message_id), "")
        counts = {"institutions": len(snap.statuses), "messages": len(snap.messages)}
        in_queue = {q.message_id for q in queue}
        # Messages a clerk "settles" before each cold request: unrelated ones, away from the item timed.
        spare = itertools.cycle([v.message.id for v in snap.messages if v.message.id not in in_queue and v.kind == "unrelated"])
    finally:
        ctx.close()
    writer = open_context(config)

    def touch() -> None:
        """A clerk's decision on one message (a new decision row and its audit entry), as `intake assign --unrelated`."""
        message_id = next(spare)
        with writer.db.begin() as conn:
            save_manual_decision(conn, message_id, Decision(ItemPath.MESSAGE, Kind.UNRELATED), by="bench")
            save_audit(conn, actor="bench", action="bench_touch", target=str(message_id))

    server = ConsoleServer(config_path, as_of)
    try:
        client = Client(server.url)
        client.login("bench")
        result = {"set": label, **counts, "review_items": len(queue), "load_before": os.getloadavg(),
                  "dashboard": client.time("/", requests, touch)}  # fmt: skip
        if item:
            result["review_item"] = client.time("/review/item?id=" + urllib.parse.quote(item), requests, touch)
        result["review_list"] = client.time("/review", requests, touch)
        result["load_after"] = os.getloadavg()
    finally:
        server.stop()
        writer.close()
    return result


def demo_set(work: Path, requests: int) -> dict:
    from pipeline.demo.run import run_demo

    config_path = write_config(work / "demo")
    run = run_demo(load_config(config_path))
    run.ctx.close()
    return _measure(config_path, requests, "demo corpus (real mail)", run.corpus.as_of.isoformat())


def synthetic_set(work: Path, institutions: int, mails: int, requests: int) -> dict:
    folder = work / f"scale-{institutions}"
    base = load_config(ROOT / "config.toml")
    campaign = campaign_of_size(base.campaign, institutions, folder / "rosters")
    data = folder / "data-src"
    data.mkdir(parents=True)
    for source in (ROOT / "data").glob("*.csv"):  # bureaus, contacts, holidays (the reminder preview needs them)
        (data / source.name).write_bytes(source.read_bytes())
    (data / "roster.csv").write_bytes(Path(campaign.roster).read_bytes())
    config_path = write_config(folder, data=data)
    ctx = open_context(load_config(config_path))
    try:
        fill(ctx, mails)
    finally:
        ctx.close()
    return _measure(config_path, requests, f"{institutions} rows / {mails} mails (synthetic)", AS_OF.isoformat())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--scale", type=int, nargs=2, metavar=("INSTITUTIONS", "MAILS"), action="append", default=[])
    parser.add_argument("--scale-requests", type=int, default=5)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="intake-web-bench-") as tmp:
        work = Path(tmp)
        results.append(demo_set(work, args.requests))
        results.append(synthetic_set(work, 96, 500, args.requests))
        for institutions, mails in args.scale:
            results.append(synthetic_set(work, institutions, mails, args.scale_requests))
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
