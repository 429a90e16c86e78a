"""Who is acting: the name every manual act is recorded under in the audit trail.

Manual acts are recorded by the functions that perform them (assign, exempt,
reprocess, export) in the same transaction as the act; automatic status changes
by `pipeline.outputs.history.record_status_changes`.
"""

from __future__ import annotations

import getpass


def current_actor(by: str | None = None) -> str:
    """Who is acting: `--by`, else the OS user, else "unknown"."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in some containers and services
        return "unknown"
