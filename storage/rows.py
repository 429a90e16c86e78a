"""The rows the stages pass around: plain frozen dataclasses, no database and no I/O.

`storage.decisions` and `storage.messages` read and write them; `pipeline.domain` (pure rules)
takes them without importing anything that touches a database (tests/test_layout.py checks this
module imports nothing but the standard library).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# A clerk's verdict on the sender of a message (table sender_confirmations).
CONFIRMED = "confirmed"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision about one item (or the message as a whole: item_path "message")."""

    item_path: str
    kind: str  # report | unrelated | needs_review
    institution: str = ""
    confidence: float = 0.0
    evidence: list[dict] = field(default_factory=list)
    reason: str = ""
    sections: dict = field(default_factory=dict)
    readable: bool = True
    via_bureau: str = ""
    sender_trust: str = ""  # SenderTrust of a report's sender ("" when not judged)


@dataclass(frozen=True, slots=True)
class DecisionRow:
    id: int
    message_id: int
    item_path: str
    kind: str
    institution: str
    confidence: float
    evidence: list[dict]
    reason: str
    sections: dict
    readable: bool
    via_bureau: str
    origin: str
    decided_by: str
    decided_at: datetime
    note: str
    active: bool
    received_at: datetime | None  # of the message, for status computations
    sender_address: str
    subject: str
    sender_trust: str = ""  # SenderTrust as judged when the decision was made


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: int
    sha256: str
    size: int
    raw_path: str
    received_at: datetime | None
    received_basis: str
    message_id_header: str
    sender_address: str
    sender_name: str
    subject: str
    date_header: datetime | None
    parse_status: str
    parse_error: str
    problems: list[str]
    ingested_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ItemRow:
    path: str
    filename: str
    content_type: str
    kind: str
    size: int
    sha256: str
    problem: str  # the parser's code and English detail, readable in the database
    text_chars: int
    problem_code: str = ""  # parsers.types.ProblemCode value; "" when the item is fine
