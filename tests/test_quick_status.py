"""`intake status` reads with sqlite3 alone and gets exactly the snapshot's statuses (one status rule)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.outputs.quick_status import quick_statuses
from pipeline.outputs.snapshot import build_snapshot
from storage.confirmations import save_confirmation
from storage.decisions import save_manual_decision
from storage.exemptions import save_exemption
from storage.quick import KNOWN_MIGRATIONS
from storage.rows import Decision
from storage.schema import MIGRATIONS
from tests.conftest import write_config
from tests.smtp import record_report, simple_mail

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2024, 7, day, hour, tzinfo=TZ)


def test_the_quick_reader_knows_every_migration() -> None:
    """GIVEN storage.schema.MIGRATIONS WHEN a migration is added THEN storage/quick.py must know it too."""
    assert tuple(name for name, _ in MIGRATIONS) == KNOWN_MIGRATIONS


def test_quick_statuses_equal_the_snapshots(tmp_path: Path) -> None:
    """GIVEN on-time, late, unreadable, rejected-sender and overridden reports, a clerk's exemption and a
    config exemption WHEN statuses are read the quick way and through the snapshot, at several moments
    THEN the two lists are equal, row for row."""
    config = load_config(write_config(tmp_path, {"campaign": {"exempt": ["广州市皮肤病防治所"]}}))
    ctx = open_context(config)
    try:
        record_report(ctx, simple_mail(sender="a@sysu.example", subject="报告"), at(8), ("中山大学孙逸仙纪念医院",))
        record_report(ctx, simple_mail(sender="b@zoc.example", subject="报告"), at(12), ("中山大学中山眼科中心",))
        record_report(ctx, simple_mail(sender="c@x.example", subject="报告", attachment=("r.docx", b"PK\x03\x04")),
                      at(9), ("广州市胸科医院",), item_path="1", readable=False)  # fmt: skip
        rejected = record_report(ctx, simple_mail(sender="d@y.example", subject="报告"), at(9), ("广州市第一人民医院",))
        overridden = record_report(ctx, simple_mail(sender="e@z.example", subject="报告"), at(9), ("广东省人民医院",))
        with ctx.db.begin() as conn:
            save_confirmation(conn, rejected, address="d@y.example", institution="广州市第一人民医院",
                              verdict="rejected", learned_address="", by="李文")  # fmt: skip
            save_manual_decision(conn, overridden, Decision("message", "unrelated"), by="李文")
            save_exemption(conn, "广州市胸科医院", "已撤并", "李文")
        for moment in (at(7), at(9, 12), at(11), at(15)):
            quick = quick_statuses(config, moment)
            assert quick is not None
            assert quick == list(build_snapshot(ctx, moment).statuses)
        statuses = {r.institution.name: r.status for r in quick_statuses(config, at(15)) or []}
        assert statuses["中山大学孙逸仙纪念医院"] == "on_time" and statuses["中山大学中山眼科中心"] == "late"
        assert statuses["广州市胸科医院"] == statuses["广州市皮肤病防治所"] == "exempt"
        assert statuses["广州市第一人民医院"] == statuses["广东省人民医院"] == "overdue"
    finally:
        ctx.close()


def test_no_quick_read_of_a_missing_or_unmigrated_database(tmp_path: Path) -> None:
    """GIVEN no data dir, then a database missing a migration WHEN read quickly THEN None (the ordinary path
    then says what is wrong)."""
    config = load_config(write_config(tmp_path))
    assert quick_statuses(config, at(9)) is None
    open_context(config).close()
    assert quick_statuses(config, at(9)) is not None
    import sqlite3

    with sqlite3.connect(config.data_dir / "intake.sqlite3") as conn:
        conn.execute("DELETE FROM schema_migrations WHERE name = ?", (KNOWN_MIGRATIONS[-1],))
    assert quick_statuses(config, at(9)) is None


def test_intake_status_loads_neither_sqlalchemy_nor_pandas(tmp_path: Path) -> None:
    """GIVEN a data dir WHEN `intake status --format csv` runs THEN 96 rows and no SQLAlchemy or pandas import."""
    path = write_config(tmp_path)
    open_context(load_config(path)).close()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", "status", "--format", "csv",
                             "--config", str(path)], capture_output=True, text=True, cwd=ROOT, check=True)  # fmt: skip
    assert len(result.stdout.splitlines()) == 1 + 96
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("sqlalchemy", "pandas", "openpyxl", "xlsxwriter")}
