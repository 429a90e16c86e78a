"""The status of every roster row, read without SQLAlchemy: what `intake status` prints.

`quick_statuses(config, as_of)` reads the same facts as `build_snapshot` needs for its statuses
(active decisions, items, exemptions, sender confirmations; storage/quick.py, sqlite3 read-only)
and computes them with the same domain function, `pipeline.domain.status.compute_status`, with
the same inputs: so the rows are the snapshot's `statuses`, exactly.  It returns None when the
quick read cannot be taken (an external database, a missing or differently migrated file):
the caller then builds the snapshot, which also raises the proper error.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pipeline.config import Config
from pipeline.domain.roster import load_roster
from pipeline.domain.status import InstitutionStatus, compute_status
from pipeline.vocab import SenderTrust
from storage.rows import REJECTED

CONFIG_EXEMPT_REASON = "配置文件设为免报"
DB_FILENAME = "intake.sqlite3"  # storage.db.DB_FILENAME (importing storage.db would load SQLAlchemy)


def exempt_reasons(config_exempt: tuple[str, ...], clerk_exempt: dict[str, str]) -> dict[str, str]:
    """Exempt rows: from config.toml, then clerks' `intake exempt` decisions (which carry their reason)."""
    return {**dict.fromkeys(config_exempt, CONFIG_EXEMPT_REASON), **clerk_exempt}


def sender_verdicts(verdicts: Iterable[tuple[int, str]]) -> dict[int, SenderTrust]:
    """(message id, clerk's verdict) oldest first -> the trust it gives that message's sender."""
    return {message_id: SenderTrust.FAILED if verdict == REJECTED else SenderTrust.KNOWN
            for message_id, verdict in verdicts}  # fmt: skip


def quick_statuses(config: Config, as_of: datetime) -> list[InstitutionStatus] | None:
    """Every roster row's status as of `as_of`, or None when the ordinary path must be taken."""
    from storage.quick import open_quick, quick_decisions, quick_exemptions, quick_items, quick_verdicts

    if config.storage.database_url or not config.data_dir.is_dir():
        return None
    conn = open_quick(config.data_dir / DB_FILENAME)
    if conn is None:
        return None
    try:
        decisions = quick_decisions(conn)
        items = quick_items(conn)
        clerk_exempt = quick_exemptions(conn)
        verdicts = sender_verdicts(quick_verdicts(conn))
    except Exception:  # noqa: BLE001 - any surprise in the file: the ordinary path reads it (and says what is wrong)
        return None
    finally:
        conn.close()
    roster = load_roster(config.campaign)
    campaign = config.campaign
    return compute_status(roster, decisions, deadline=campaign.deadline, as_of=as_of,
                          exempt=exempt_reasons(roster.exempt_names, clerk_exempt), items=items,
                          confirmations=verdicts)  # fmt: skip
