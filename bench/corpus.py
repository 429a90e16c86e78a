"""The benchmark mailbox: ~2,000 generated campaign mails, ~70% carrying a Word or PDF report.

Built from `pipeline.demo.samples.generate_corpus` (about 160 realistic mails per seed,
each seed a different campaign run), seed after seed, keeping report-carrying
mails until `doc_share` of the corpus has a .docx/.pdf attachment (directly or in
a zip) and filling the rest with the other mails in generation order.  Distinct
bytes only (ingest would dedup repeats).  Cached under bench/results/ keyed by the
generator's source, the data files and the parameters.
"""

from __future__ import annotations

import email
import hashlib
import io
import pickle
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.policy import compat32

from .common import RESULTS, ROOT

DATA = ROOT / "data"
SEEDS_PER_ROUND = 4


@dataclass(frozen=True, slots=True)
class BenchMail:
    raw: bytes
    received_at: datetime
    has_document: bool  # a .docx or .pdf attachment, directly or inside a zip
    seed: int


@dataclass(frozen=True)
class BenchCorpus:
    mails: tuple[BenchMail, ...]
    seeds: int

    @property
    def total_bytes(self) -> int:
        return sum(len(m.raw) for m in self.mails)

    @property
    def document_share(self) -> float:
        return sum(m.has_document for m in self.mails) / len(self.mails)

    def describe(self) -> dict:
        sizes = sorted(len(m.raw) for m in self.mails)
        return {
            "messages": len(self.mails),
            "seeds": self.seeds,
            "with_docx_or_pdf": round(self.document_share, 3),
            "total_mb": round(self.total_bytes / 1e6, 1),
            "size_kb_min_median_max": [
                round(sizes[0] / 1e3, 1),
                round(sizes[len(sizes) // 2] / 1e3, 1),
                round(sizes[-1] / 1e3, 1),
            ],  # fmt: skip
        }


def _magic_document(data: bytes, depth: int = 0) -> bool:
    if data[:5] == b"%PDF-":
        return True
    if data[:4] != b"PK\x03\x04" or depth > 2:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if "word/document.xml" in names:
                return True
            return any(
                _magic_document(zf.read(info), depth + 1)
                for info in zf.infolist()
                if not info.is_dir() and info.file_size < 20_000_000
            )
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return False


def has_document(raw: bytes) -> bool:
    """Whether a mail carries a .docx or .pdf (by magic bytes, zips opened), top-level or forwarded."""
    message = email.message_from_bytes(raw, policy=compat32)
    for part in message.walk():
        if part.is_multipart():
            continue
        try:
            data = part.get_payload(decode=True) or b""
        except Exception:  # noqa: BLE001 - a broken part simply carries no document
            continue
        if _magic_document(data):
            return True
    return False


def _generate(seed: int) -> list[BenchMail]:
    from pipeline.demo.samples import generate_corpus

    corpus = generate_corpus(DATA / "roster.csv", DATA / "bureaus.csv", DATA / "contacts.csv", seed=seed)
    return [BenchMail(m.raw, m.received_at, has_document(m.raw), seed) for m in corpus.mails]


def _cache_key(count: int, doc_share: float) -> str:
    digest = hashlib.sha256(f"{count}:{doc_share}:v1".encode())
    for path in sorted((ROOT / "pipeline" / "samples").glob("*.py")) + sorted(DATA.glob("*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_corpus(count: int = 2000, doc_share: float = 0.70, *, use_cache: bool = True) -> BenchCorpus:
    """`count` distinct mails, `doc_share` of them carrying a .docx/.pdf, in receipt order."""
    cache = RESULTS / f"corpus-{_cache_key(count, doc_share)}.pickle"
    if use_cache and cache.exists():
        return pickle.loads(cache.read_bytes())
    wanted_docs = round(count * doc_share)
    docs: list[BenchMail] = []
    others: list[BenchMail] = []
    seen: set[bytes] = set()
    seed = 0
    with ProcessPoolExecutor(max_workers=2) as pool:
        while len(docs) < wanted_docs or len(others) < count - wanted_docs:
            if seed > 200:
                raise RuntimeError("the sample generator gives too few report mails")
            seeds = range(seed + 1, seed + 1 + SEEDS_PER_ROUND)
            seed += SEEDS_PER_ROUND
            for batch in pool.map(_generate, seeds):
                for mail in batch:
                    digest = hashlib.sha256(mail.raw).digest()
                    if digest in seen:
                        continue
                    seen.add(digest)
                    (docs if mail.has_document else others).append(mail)
    chosen = docs[:wanted_docs] + others[: count - wanted_docs]
    used_seeds = max(m.seed for m in chosen)
    ordered = tuple(sorted(chosen, key=lambda m: (m.received_at, m.seed)))
    corpus = BenchCorpus(ordered, used_seeds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in RESULTS.glob("corpus-*.pickle"):
        old.unlink()
    cache.write_bytes(pickle.dumps(corpus, protocol=pickle.HIGHEST_PROTOCOL))
    return corpus
