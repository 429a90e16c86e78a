"""The words the database stores, defined once.

Every value written to a `kind`, `origin`, `parse_status`, `received_basis`,
`status` (ledger) or `action` (audit) column is a member of one of these enums.
They are StrEnums, so a stored value and its member compare equal and the
database holds plain text.  The storage layer owns them because it imports
nothing above it; `pipeline.vocab` re-exports them beside the pipeline's own
words, and `pipeline.labels_zh` gives each value its Chinese label.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a decision says about an item (or a message as a whole)."""

    REPORT = "report"  # a self-check report of the campaign, counted for `institution`
    UNRELATED = "unrelated"  # not a report of this campaign
    NEEDS_REVIEW = "needs_review"  # a clerk must look: the reason says why


class MessageKind(StrEnum):
    """A message's kind, derived from its active decisions and parse state."""

    REPORT = "report"
    UNRELATED = "unrelated"
    NEEDS_REVIEW = "needs_review"
    UNPROCESSED = "unprocessed"  # stored, not yet parsed


class Origin(StrEnum):
    """Who made a decision: the pipeline (replaced on reprocess) or a clerk (never replaced by code)."""

    AUTO = "auto"
    MANUAL = "manual"


class ParseState(StrEnum):
    """Where a stored message is in processing."""

    PENDING = "pending"  # bytes and row stored; parse and attribution still to do
    OK = "ok"  # parsed and attributed
    FAILED = "failed"  # the reason is on the row


class ReceivedBasis(StrEnum):
    """Where a message's receipt time came from, from most to least trustworthy."""

    INTERNALDATE = "internaldate"  # the commission's IMAP server
    RECEIVED = "received"  # the topmost Received: header
    DATE = "date"  # the sender's Date: header
    UNKNOWN = "unknown"


BASIS_RANK: dict[str, int] = {
    ReceivedBasis.UNKNOWN: 0,
    ReceivedBasis.DATE: 1,
    ReceivedBasis.RECEIVED: 2,
    ReceivedBasis.INTERNALDATE: 3,
}


class ItemPath(StrEnum):
    """The two item paths that are not attachments ("1", "2/3" address attachments)."""

    MESSAGE = "message"  # the message as a whole
    BODY = "body"  # the mail body read as a document


class DeliveryState(StrEnum):
    """An outgoing mail's state in the ledger: intent → sent | retry | failed, or dry_run."""

    INTENT = "intent"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    CANCELLED = "cancelled"


OPEN_DELIVERY_STATES = (DeliveryState.INTENT, DeliveryState.RETRY)  # to be (re)sent


class MailKind(StrEnum):
    """What an outgoing mail is."""

    REMINDER = "reminder"
    RECEIPT = "receipt"
    CORRECTION = "correction"
    DIGEST = "digest"


class Action(StrEnum):
    """An audit-log entry's action."""

    ASSIGN = "assign"
    MARK_UNRELATED = "mark_unrelated"
    UNDO = "undo"
    LEARN_CONTACT = "learn_contact"
    CONFIRM_SENDER = "confirm_sender"
    REJECT_SENDER = "reject_sender"
    EXEMPT = "exempt"
    UNEXEMPT = "unexempt"
    REPROCESS = "reprocess"
    EXPORT_REPORTS = "export_reports"
    STATUS_CHANGE = "status_change"
    USER_ADD = "user_add"  # console accounts (pipeline.users)
    USER_DISABLE = "user_disable"
    USER_ENABLE = "user_enable"
    USER_PASSWORD = "user_password"
    USER_ROLE = "user_role"
    SEND_REMINDERS = "send_reminders"  # a clerk ran the reminder pass from the console
    NOTE = "note"  # a clerk's note on a review item, no decision


class SenderTrust(StrEnum):
    """How far the sender of a counted report can be trusted (strongest first)."""

    VERIFIED = "verified"  # our server's SPF/DKIM pass aligned with From, and a contact of the unit
    KNOWN = "known"  # a contact of the unit, no authentication verdict
    UNKNOWN = "unknown"  # not a contact (personal mailboxes are common and legitimate)
    FAILED = "failed"  # our server says the sender failed authentication: never counted


class AddressHealth(StrEnum):
    """Whether mail to an address is delivered (a permanent bounce or 5xx refusal makes it failing)."""

    OK = "ok"
    FAILING = "failing"


class Refusal(StrEnum):
    """Why `intake ingest` refused a file as not being mail (table ingest_refusals)."""

    EMPTY = "empty"  # zero bytes, or only blanks
    DOCUMENT = "document"  # a known file type that is not mail (detail: the sniffed content type)
    NOT_MAIL = "not_mail"  # text or bytes without mail headers
    UNREADABLE = "unreadable"  # the file could not be read (detail: the OS error's name)
    DAMAGED_ENTRY = "damaged_entry"  # an mbox entry that could not be read
    STORE_FAILED = "store_failed"  # looked like mail, but could not be stored (detail: the error)
