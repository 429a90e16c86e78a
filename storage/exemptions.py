"""Save and fetch exemptions decided by clerks (config.toml's [campaign] exempt is the other source)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from .schema import exemptions, now_utc


@dataclass(frozen=True, slots=True)
class Exemption:
    institution: str
    reason: str
    decided_by: str
    decided_at: datetime


def fetch_exemptions(conn: Connection) -> dict[str, Exemption]:
    rows = conn.execute(select(exemptions))
    return {r.institution: Exemption(r.institution, r.reason, r.decided_by, r.decided_at) for r in rows}


def save_exemption(conn: Connection, institution: str, reason: str, by: str) -> None:
    conn.execute(delete(exemptions).where(exemptions.c.institution == institution))
    conn.execute(insert(exemptions).values(institution=institution, reason=reason, decided_by=by, decided_at=now_utc()))


def delete_exemption(conn: Connection, institution: str) -> bool:
    return conn.execute(delete(exemptions).where(exemptions.c.institution == institution)).rowcount > 0
