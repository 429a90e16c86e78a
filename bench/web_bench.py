"""Console response times: dashboard and review-item page, p50 / p95, over real HTTP.

    python -m bench.web_bench                      # the demo corpus (real mail) and 96 rows / 500 mails
    python -m bench.web_bench --scale 10000 100000 # also 10,000 rows / 100,000 mails (slow to fill)

Each data set is served by `intake web` (uvicorn, the CLI's own start-up) on 127.0.0.1;
a logged-in client requests each page `--requests` times after one warm-up request, twice:
"cold" with a change written to the database before each request (as when the worker has
just stored a mail: the console's cached reads are recomputed) and "warm" (nothing changed:
what a polling dashboard or a second look costs).
The synthetic sets are filled like bench/scale.py (bulk rows, no raw mail), so their
review page shows an item whose raw mail is absent; the demo set has real mail, so
its review page includes re-parsing the message in the sandbox.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
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
from storage.audit import save_audit
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
        data = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"})
        with self.opener.open(self.base + "/login", data=data.encode(), timeout=600) as r:
            r.read()

    def time(self, path: str, requests: int, touch) -> dict:  # noqa: ANN001 - a callable
        self.get(path)  # warm-up (roster load, templates)
        result = {"requests": requests}
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
        queue = build_snapshot(ctx, datetime.fromisoformat(as_of)).review_items
        item = next((q.item for q in queue if q.message_id), "")
        counts = {"institutions": len(ctx.roster)}
        with ctx.db.connect() as conn:
            counts["messages"] = conn.exec_driver_sql("SELECT count(*) FROM messages").scalar()
    finally:
        ctx.close()
    writer = open_context(config)

    def touch() -> None:
        """A write like the worker's: one audit row (changes the console's change marker)."""
        with writer.db.begin() as conn:
            save_audit(conn, actor="bench", action="bench_touch")

    server = ConsoleServer(config_path, as_of)
    try:
        client = Client(server.url)
        client.login("bench")
        result = {"set": label, **counts, "review_items": len(queue), "dashboard": client.time("/", requests, touch)}
        if item:
            result["review_item"] = client.time("/review/item?id=" + urllib.parse.quote(item), requests, touch)
        result["review_list"] = client.time("/review", requests, touch)
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
    for name in ("bureaus.csv", "contacts.csv"):
        (data / name).write_bytes((ROOT / "data" / name).read_bytes())
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
