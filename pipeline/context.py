"""The run context: loaded config, open database and raw store, passed to every stage."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import StorageError
from storage.db import Database, open_database
from storage.rawstore import RawStore


@dataclass
class Context:
    """Everything a job needs.  Built once per command or worker; the roster is loaded on first use."""

    config: Config
    db: Database
    raw: RawStore
    _roster: object | None = field(default=None, repr=False)
    _facts: object | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def roster(self):  # noqa: ANN201 - pipeline.domain.roster.Roster (imported lazily: roster imports config only)
        if self._roster is None:
            from pipeline.domain.roster import load_roster

            self._roster = load_roster(self.config.campaign)
        return self._roster

    def attribution_facts(self):  # noqa: ANN201 - pipeline.domain.attribution.AttributionFacts
        """Sender facts from contacts.csv and learned addresses; rebuilt after `forget_facts()`."""
        if self._facts is None:
            from pipeline.clerk.contacts import all_contacts, build_facts

            campaign = self.config.campaign
            self._facts = build_facts(
                all_contacts(self),
                self.roster,
                own_domains=campaign.own_domains,
                mailbox=campaign.mailbox_address,
                exempt=frozenset(campaign.exempt),
                authserv_id=self.config.authserv_id,
            )
        return self._facts

    def forget_facts(self) -> None:
        self._facts = None

    def close(self) -> None:
        self.db.dispose()


def ensure_data_dir(path: Path) -> Path:
    """Create the data dir (mode 0700: it holds other people's mail) and its standard folders."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sub in ("raw", "reports", "outbox"):
            (path / sub).mkdir(exist_ok=True, mode=0o700)
    except OSError as err:
        raise StorageError(f"cannot create data directory {path}: {err.strerror or err}") from err
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def open_context(config: Config) -> Context:
    data_dir = ensure_data_dir(config.data_dir)
    db = open_database(data_dir, config.storage.database_url)
    return Context(config=config, db=db, raw=RawStore(data_dir))
