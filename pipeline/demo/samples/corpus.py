"""A whole synthetic mailbox for the self-check campaign, with its ground truth.

`generate_corpus` plays the campaign from the notice (2024-07-07) to the
as-of morning (default 2024-07-12 09:00 +08:00): direct submissions, district
bureau batches, forwards, resubmissions and a large share of unrelated mail,
each mail rendered to RFC 5322 bytes with the quirks of the client that sent
it.  The truth (`expected_status`, `expected_first_received`, each mail's
expected kind and institutions) is derived from the generated mails
themselves, so it cannot drift from what is in the mailbox.

The output is a pure function of the three CSV files, `seed` and `as_of`;
another seed changes which institutions are late or missing, the order,
wording, clients and encodings, so a held-out seed tests generalisation.
`write_corpus` stores it as ``NNNN-<channel>-<trap>.eml`` files + truth.json.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.demo.samples.campaign import assign_recipes, is_direct, plan_units
from pipeline.demo.samples.catalog import COMMISSION, load_catalog
from pipeline.demo.samples.common import DEADLINE, DEFAULT_AS_OF, Composed, Context
from pipeline.demo.samples.direct import direct_mails, two_institution_mail
from pipeline.demo.samples.districts import district_mails
from pipeline.demo.samples.noise import unrelated_mails

STATUSES = ("on_time", "late", "overdue", "exempt", "pending")


@dataclass(frozen=True)
class SampleMail:
    name: str  # stable file name like "0042-direct-abbrev.eml"
    raw: bytes  # the RFC 5322 bytes
    received_at: datetime  # commission server receipt time (aware, +08:00); the topmost Received: date
    expected_kind: str  # "report" (carries >= 1 report) or "unrelated"
    expected_institutions: tuple[str, ...]  # roster names (exact) whose reports the mail carries
    trap: str  # what this mail exercises; secondary aspects joined with "+"
    folder: str = "INBOX"  # or "垃圾邮件" (junk)


@dataclass(frozen=True)
class SampleCorpus:
    mails: tuple[SampleMail, ...]
    as_of: datetime  # default 2024-07-12T09:00+08:00
    deadline: datetime  # 2024-07-10T23:59:59+08:00
    # roster name -> on_time | late | overdue | exempt ("pending" only when as_of is before the deadline)
    expected_status: dict[str, str]
    expected_first_received: dict[str, datetime]


def generate_corpus(
    roster_csv: Path,
    bureaus_csv: Path,
    contacts_csv: Path,
    *,
    seed: int = 7,
    as_of: datetime | None = None,
) -> SampleCorpus:
    """The campaign's mailbox as seen at `as_of` (mails received later are left out).

    Rows linked by same_as count as one hospital: a report naming either row
    satisfies both, and both get the same status and first-received time.
    """
    catalog = load_catalog(Path(roster_csv), Path(bureaus_csv), Path(contacts_csv))
    rng = random.Random(seed)
    ctx = Context(catalog, rng)
    units = plan_units(ctx)
    assign_recipes(ctx, units)
    composed: list[Composed] = district_mails(ctx, units)
    for unit in units:
        if is_direct(unit) and unit.fate != "overdue":
            composed.extend(direct_mails(ctx, unit))
    composed.extend(two_institution_mail(ctx, units))
    reports = sum(mail.expected_kind == "report" for mail in composed)
    unrelated_so_far = len(composed) - reports
    # About 40-45% of the mailbox is unrelated: unrelated / reports ~ 0.75-0.85.
    wanted = max(20, round(reports * rng.uniform(0.75, 0.85)) - unrelated_so_far, 150 - len(composed))
    composed.extend(unrelated_mails(ctx, units, wanted))

    cutoff = as_of or DEFAULT_AS_OF
    kept = sorted(
        (mail for mail in composed if mail.received_at <= cutoff),
        key=lambda mail: mail.received_at,  # sorted() is stable: ties keep generation order
    )
    mails = tuple(
        SampleMail(
            name=f"{number:04d}-{mail.channel}-{_file_tag(mail)}.eml",
            raw=mail.raw,
            received_at=mail.received_at,
            expected_kind=mail.expected_kind,
            expected_institutions=mail.expected_institutions,
            trap=mail.trap,
            folder=mail.folder,
        )
        for number, mail in enumerate(kept, start=1)
    )

    first_received: dict[str, datetime] = {}
    for mail in mails:
        if mail.expected_kind != "report":
            continue
        for name in mail.expected_institutions:
            for member in catalog.same_hospital(catalog.by_name(name)):
                known = first_received.get(member.name)
                if known is None or mail.received_at < known:
                    first_received[member.name] = mail.received_at
    status: dict[str, str] = {}
    for institution in catalog.institutions:
        moment = first_received.get(institution.name)
        if institution.name == COMMISSION:
            status[institution.name] = "exempt"
        elif moment is None:
            status[institution.name] = "overdue" if cutoff > DEADLINE else "pending"
        else:
            status[institution.name] = "on_time" if moment <= DEADLINE else "late"
    ordered_first = {
        institution.name: first_received[institution.name]
        for institution in catalog.institutions
        if institution.name in first_received
    }
    return SampleCorpus(mails, cutoff, DEADLINE, status, ordered_first)


def _file_tag(mail: Composed) -> str:
    """The primary trap for the file name, without repeating the channel ("bureau-zip-gbk" -> "zip-gbk")."""
    tag = mail.trap.split("+")[0]
    return tag.removeprefix(f"{mail.channel}-")


def write_corpus(corpus: SampleCorpus, folder: Path) -> None:
    """Write every mail as ``folder/NNNN-*.eml`` and the truth as ``folder/truth.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for mail in corpus.mails:
        (folder / mail.name).write_bytes(mail.raw)
    truth = {
        "as_of": corpus.as_of.isoformat(),
        "deadline": corpus.deadline.isoformat(),
        "expected_status": corpus.expected_status,
        "expected_first_received": {
            name: moment.isoformat() for name, moment in corpus.expected_first_received.items()
        },
        "mails": [
            {
                "name": mail.name,
                "received_at": mail.received_at.isoformat(),
                "expected_kind": mail.expected_kind,
                "expected_institutions": list(mail.expected_institutions),
                "trap": mail.trap,
                "folder": mail.folder,
            }
            for mail in corpus.mails
        ],
    }
    (folder / "truth.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
