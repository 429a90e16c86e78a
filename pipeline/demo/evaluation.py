"""Measure attribution against a sample corpus's ground truth: the figures the README reports.

- status accuracy: roster rows whose computed status equals the expected one;
- wrong attributions: a report counted for an institution the mail did not carry (must be zero);
- review share: messages sent to a human, over all messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.context import Context
from pipeline.demo.samples import SampleCorpus
from pipeline.domain.status import status_as_of
from pipeline.outputs.views import message_views


@dataclass
class Evaluation:
    rows: int = 0
    rows_right: int = 0
    messages: int = 0
    needs_review: int = 0
    wrong_attributions: list[str] = field(default_factory=list)
    missed_attributions: list[str] = field(default_factory=list)
    wrong_status: list[str] = field(default_factory=list)

    @property
    def status_accuracy(self) -> float:
        return self.rows_right / self.rows if self.rows else 0.0

    @property
    def review_share(self) -> float:
        return self.needs_review / self.messages if self.messages else 0.0


def evaluate(ctx: Context, corpus: SampleCorpus, sources: dict[str, int]) -> Evaluation:
    """Compare stored decisions with the corpus truth.  `sources` maps sample name -> message id."""
    result = Evaluation()
    roster = ctx.roster
    views = {v.message.id: v for v in message_views(ctx)}
    for mail in corpus.mails:
        view = views.get(sources.get(mail.name, -1))
        if view is None:
            result.missed_attributions.append(f"{mail.name}: not stored")
            continue
        result.messages += 1
        if view.kind == "needs_review":
            result.needs_review += 1
        expected = {name for inst in mail.expected_institutions for name in roster.group(inst)}
        got = {name for inst in view.institutions for name in roster.group(inst)}
        for name in sorted(got - expected):
            result.wrong_attributions.append(f"{mail.name} [{mail.trap}]: counted for {name}")
        for name in sorted(expected - got):
            result.missed_attributions.append(f"{mail.name} [{mail.trap}]: {name} not counted ({view.kind})")
    for row in status_as_of(ctx, corpus.as_of):
        expected_status = corpus.expected_status.get(row.institution.name)
        result.rows += 1
        if row.status == expected_status:
            result.rows_right += 1
        else:
            result.wrong_status.append(f"{row.institution.name}: {row.status}, expected {expected_status}")
    return result


def main(argv: list[str]) -> int:
    """Evaluate COUNT sample corpora from FIRST_SEED on, each in a scratch data dir; print the figures."""
    import tempfile
    from pathlib import Path

    from pipeline.config import load_config
    from pipeline.demo.run import run_demo

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
    import sys

    sys.exit(main(sys.argv[1:]))
