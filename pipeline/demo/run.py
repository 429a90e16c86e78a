"""The demo: generate a realistic sample mailbox, ingest it into a scratch data dir, evaluate.

`intake demo` (what scripts/demo runs) and the attribution quality tests share this.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.campaign_data import load_campaign_data
from pipeline.config import Config
from pipeline.context import Context, open_context
from pipeline.demo.evaluation import Evaluation, evaluate
from pipeline.demo.samples import SampleCorpus, generate_corpus, write_corpus
from pipeline.inbound.ingest import ingest_raw
from pipeline.outputs.history import record_status_changes


@dataclass
class DemoRun:
    ctx: Context
    corpus: SampleCorpus
    sources: dict[str, int]  # sample name -> message id
    evaluation: Evaluation
    mailbox_dir: Path


def corpus_for(config: Config, *, seed: int) -> SampleCorpus:
    campaign = config.campaign
    return generate_corpus(campaign.roster, campaign.bureaus, config.reminders.contacts, seed=seed)


def run_demo(config: Config, *, seed: int = 7, fresh: bool = True,
             on_progress: Callable[[int, int], None] | None = None) -> DemoRun:  # fmt: skip
    """Generate the corpus, write it as .eml files, ingest it in receipt order and evaluate."""
    data_dir = config.data_dir
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    corpus = corpus_for(config, seed=seed)
    ctx = open_context(config)
    mailbox_dir = data_dir / "sample-mailbox"
    write_corpus(corpus, mailbox_dir)
    sources: dict[str, int] = {}
    data = load_campaign_data(ctx)
    ordered = sorted(corpus.mails, key=lambda m: m.received_at)
    for index, mail in enumerate(ordered, start=1):
        sources[mail.name] = ingest_raw(ctx, mail.raw, source="file", ref=str(mailbox_dir / mail.name), data=data).message_id
        if on_progress is not None:
            on_progress(index, len(ordered))
    record_status_changes(ctx, corpus.as_of, cause="demo", roster=data.roster)
    return DemoRun(ctx, corpus, sources, evaluate(ctx, corpus, sources), mailbox_dir)
