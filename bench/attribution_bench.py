"""Attribution cost per message as the roster grows (96 → 1,000 → 10,000 institutions).

The corpus is parsed once; then only `attribute_message` is timed, over every
message, against each roster (the real Annex 1 rows plus synthetic ones, loaded
from CSV the way the application loads its roster, with sender facts built from
contacts.csv).  Also times the roster load + name-index build.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from parsers.message import parse_message
from parsers.types import ParsedMessage
from pipeline.config import Config
from pipeline.domain.attribution import attribute_message
from pipeline.domain.contacts import build_facts, read_contacts
from pipeline.domain.recognition import Recognizer
from pipeline.domain.roster import Roster, load_roster

from .common import median, progress, timed
from .corpus import BenchCorpus
from .rosters import campaign_of_size

SIZES = (96, 1_000, 10_000)


def _facts(config: Config, roster: Roster):  # noqa: ANN202 - pipeline.domain.attribution.AttributionFacts
    campaign = config.campaign
    return build_facts(
        # As the worker reads them (pipeline.campaign_data): a line the enlarged roster makes ambiguous
        # ("番禺区第五人民医院" beside a synthetic namesake) is left out, the rest is used.
        list(read_contacts(config.reminders.contacts, roster).contacts),
        roster,
        own_domains=campaign.own_domains,
        mailbox=campaign.mailbox_address,
        exempt=frozenset(campaign.exempt),
    )


def _attribute_all(parsed: list[ParsedMessage], roster: Roster, facts, recognizer: Recognizer) -> int:  # noqa: ANN001
    reports = 0
    for message in parsed:
        reports += sum(d.kind == "report" for d in attribute_message(message, roster, facts, recognizer).decisions)
    return reports


def run(corpus: BenchCorpus, config: Config, *, rounds: int = 3, sizes: tuple[int, ...] = SIZES) -> dict:
    parse_s, parsed = timed(lambda: [parse_message(m.raw, limits=config.limits) for m in corpus.mails])
    progress(f"parsed {len(parsed)} messages once in {parse_s:.1f}s")
    recognizer = Recognizer(config.campaign.rules)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="intake-bench-roster-") as tmp:
        for size in sizes:
            campaign = campaign_of_size(config.campaign, size, Path(tmp))
            loads = []
            for _ in range(rounds):
                load_s, roster = timed(lambda campaign=campaign: load_roster(campaign))
                loads.append(load_s)
            facts = _facts(config, roster)
            _attribute_all(parsed[:50], roster, facts, recognizer)  # warm caches (regexes, group maps)
            times, reports = [], 0
            for _ in range(rounds):
                seconds, reports = timed(
                    lambda roster=roster, facts=facts: _attribute_all(parsed, roster, facts, recognizer)
                )
                times.append(seconds)
            results[str(size)] = {
                "institutions": len(roster),
                "roster_load_s": median(loads),
                "us_per_message": median(times) / len(parsed) * 1e6,
                "report_decisions": reports,
            }
            progress(
                f"roster {size}: load {median(loads):.2f}s, attribution {results[str(size)]['us_per_message']:.0f} µs/msg"
            )
    small, big = results[str(sizes[0])], results[str(sizes[-1])]
    return {
        "messages": len(parsed),
        "by_size": results,
        "ratio": big["us_per_message"] / small["us_per_message"],
    }
