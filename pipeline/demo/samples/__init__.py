"""Synthetic sample mail for the self-check campaign (demo data and test fixtures).

`generate_corpus` builds a deterministic mailbox with ground truth from the
data/*.csv files; `write_corpus` stores it as .eml files plus truth.json.
"""

from __future__ import annotations

from pipeline.demo.samples.corpus import SampleCorpus, SampleMail, generate_corpus, write_corpus

__all__ = ["SampleCorpus", "SampleMail", "generate_corpus", "write_corpus"]
