"""The domain's words, defined once: import them from here.

The persisted words live in `storage.vocab` (storage imports nothing above it);
the pipeline's own words are defined below.  Chinese labels for every value are
in `pipeline.labels_zh`.
"""

from __future__ import annotations

from enum import StrEnum

from storage.vocab import (
    BASIS_RANK,
    OPEN_DELIVERY_STATES,
    Action,
    AddressHealth,
    DeliveryState,
    ItemPath,
    Kind,
    MailKind,
    MessageKind,
    Origin,
    ParseState,
    ReceivedBasis,
    Refusal,
    SenderTrust,
)

__all__ = [
    "BASIS_RANK",
    "OPEN_DELIVERY_STATES",
    "Action",
    "AddressHealth",
    "Channel",
    "DeliveryOutcome",
    "DeliveryState",
    "ItemPath",
    "Kind",
    "MailKind",
    "MessageKind",
    "Origin",
    "Refusal",
    "ParseState",
    "ReceivedBasis",
    "ReminderPhase",
    "SenderTrust",
    "Status",
]


class Status(StrEnum):
    """An institution's status as of a moment."""

    ON_TIME = "on_time"  # first report received by the deadline
    LATE = "late"  # first report received after the deadline
    OVERDUE = "overdue"  # nothing received, deadline passed
    PENDING = "pending"  # nothing received, deadline not yet passed
    EXEMPT = "exempt"  # need not report


class Channel(StrEnum):
    """How an Annex 1 institution reports: directly, or through its district health bureau."""

    DIRECT = "direct"
    BUREAU = "bureau"


class DeliveryOutcome(StrEnum):
    """What one run did with an occasion's mail (a ledger state, or why nothing was sent now)."""

    SENT = "sent"
    DRY_RUN = "dry_run"
    RETRY = "retry"
    FAILED = "failed"
    ALREADY = "already"  # handled by an earlier run
    WAITING = "waiting"  # to be resent, but this run is a dry run
    CANCELLED = "cancelled"


class ReminderPhase(StrEnum):
    """When a reminder goes out: before the deadline (to pending units) or after it (to overdue ones)."""

    BEFORE = "before"
    OVERDUE = "overdue"
