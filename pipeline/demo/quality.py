"""Held-out quality figures behind `scripts/quality`: status accuracy, wrong attributions, review share.

Usage: python -m pipeline.demo.quality [FIRST_SEED] [COUNT]  (default seeds 100..119, never used while tuning)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pipeline.config import load_config
from pipeline.demo.evaluation import Evaluation
from pipeline.demo.run import run_demo


def main(argv: list[str]) -> int:
    """Evaluate COUNT sample corpora from FIRST_SEED on, each in a scratch data dir; print the figures."""
    first, count = (int(argv[0]), int(argv[1])) if len(argv) >= 2 else (100, 20)
    totals = Evaluation()
    print(f"{'seed':>6} {'mails':>6} {'status right':>13} {'wrong':>6} {'review':>7}")
    with tempfile.TemporaryDirectory(prefix="intake-quality-") as scratch:
        for seed in range(first, first + count):
            cfg = load_config(Path("config.toml"), data_dir=Path(scratch) / str(seed))
            run = run_demo(cfg, seed=seed)
            run.ctx.close()
            ev = run.evaluation
            print(f"{seed:>6} {ev.messages:>6} {ev.rows_right:>6}/{ev.rows:<6} {len(ev.wrong_attributions):>6} {ev.needs_review:>7}")
            for line in ev.wrong_attributions + ev.wrong_status + ev.missed_attributions:
                print(f"        {line}")
            totals.rows += ev.rows
            totals.rows_right += ev.rows_right
            totals.messages += ev.messages
            totals.needs_review += ev.needs_review
            totals.wrong_attributions += ev.wrong_attributions
    print(
        f"total: {count} corpora, {totals.messages} mails; status right {totals.rows_right}/{totals.rows} "
        f"({totals.status_accuracy:.2%}); wrong attributions {len(totals.wrong_attributions)}; "
        f"sent to review {totals.needs_review} ({totals.review_share:.2%})"
    )
    return 1 if totals.wrong_attributions or totals.status_accuracy < 0.97 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
