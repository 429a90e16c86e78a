"""Measure attribution against a sample corpus's ground truth: the figures the README reports.

- status accuracy: roster rows whose computed status equals the expected one;
- wrong attributions: a report counted for an institution the mail did not carry (must be zero);
- review share: messages sent to a human, over all messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.context import Context
from pipeline.demo.samples import SampleCorpus
from pipeline.outputs.snapshot import build_snapshot
from pipeline.outputs.views import message_views
from pipeline.vocab import MessageKind


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
    snapshot = build_snapshot(ctx, corpus.as_of)
    roster = snapshot.roster
    views = {v.message.id: v for v in message_views(ctx)}
    for mail in corpus.mails:
        view = views.get(sources.get(mail.name, -1))
        if view is None:
            result.missed_attributions.append(f"{mail.name}: not stored")
            continue
        result.messages += 1
        if view.kind == MessageKind.NEEDS_REVIEW:
            result.needs_review += 1
        expected = {name for inst in mail.expected_institutions for name in roster.group(inst)}
        got = {name for inst in view.institutions for name in roster.group(inst)}
        for name in sorted(got - expected):
            result.wrong_attributions.append(f"{mail.name} [{mail.trap}]: counted for {name}")
        for name in sorted(expected - got):
            result.missed_attributions.append(f"{mail.name} [{mail.trap}]: {name} not counted ({view.kind})")
    for row in snapshot.statuses:
        expected_status = corpus.expected_status.get(row.institution.name)
        result.rows += 1
        if row.status == expected_status:
            result.rows_right += 1
        else:
            result.wrong_status.append(f"{row.institution.name}: {row.status}, expected {expected_status}")
    return result
