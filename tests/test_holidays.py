"""Working days you can trust: the clerk-maintained holiday table, its validation, and held reminders.

The shipped data/holidays.csv is checked day by day against chinesecalendar (which produced it);
a year neither knows holds reminders (nothing goes to the real SMTP server) and the digest says why.
"""

from __future__ import annotations

import email
import email.policy
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.workdays import LIBRARY_ONLY, CalendarGapError, add_workdays
from pipeline.errors import DataFileError
from pipeline.holidays import load_calendar, parse_holidays
from pipeline.outbound.digest import send_digest
from pipeline.outbound.reminders import STATE_REMINDER_HOLD, run_reminders
from storage.imapstate import fetch_state
from storage.ledger import fetch_ledger
from tests.conftest import ROOT, write_config
from tests.smtp import SmtpServer, smtp_config

TZ = ZoneInfo("Asia/Shanghai")
HEADER = "date,kind,name\n"


def _year_2027() -> str:
    """A full (made-up, for the test) 2027 arrangement: 30 days off and two make-up weekend days."""
    spans = [("元旦", date(2027, 1, 1), 3), ("春节", date(2027, 2, 5), 9), ("清明节", date(2027, 4, 3), 3),
             ("劳动节", date(2027, 5, 1), 5), ("端午节", date(2027, 6, 9), 3), ("国庆节", date(2027, 10, 1), 7)]  # fmt: skip
    rows = [f"{(start + timedelta(days=n)).isoformat()},休,{name}\n" for name, start, length in spans for n in range(length)]
    rows += ["2027-02-14,班,春节\n", "2027-10-09,班,国庆节\n"]  # a Sunday and a Saturday
    return "".join(rows)


def _ctx(tmp_path: Path, holidays: str | None, server: SmtpServer | None = None, **campaign: object):
    overrides = smtp_config(server) if server is not None else {}
    overrides.setdefault("campaign", {}).update(campaign)
    overrides["digest"] = {"to": ["clerk@gz.gov.cn"]}
    cfg_path = write_config(tmp_path, overrides)
    if holidays is not None:
        (tmp_path / "data" / "holidays.csv").write_text(holidays, encoding="utf-8")
    return open_context(load_config(cfg_path))


# ---------------------------------------------------------------- the table


def test_shipped_table_matches_the_library_for_every_day_it_covers() -> None:
    """GIVEN data/holidays.csv as shipped WHEN asked about every day of 2024-2026 THEN it answers as chinesecalendar."""
    calendar = load_calendar(ROOT / "data" / "holidays.csv")
    assert calendar.table_years == {2024, 2025, 2026}
    day = date(2024, 1, 1)
    while day.year < 2027:
        assert calendar.is_workday(day) == LIBRARY_ONLY.is_workday(day), day
        day += timedelta(days=1)
    assert not calendar.is_workday(date(2026, 10, 1)) and calendar.is_workday(date(2026, 10, 10))  # Saturday 班


def test_table_overrides_and_extends_the_library(tmp_path: Path) -> None:
    """GIVEN an extra day off in 2024 and a full 2027 WHEN asking THEN the table wins and 2027 is known."""
    path = tmp_path / "holidays.csv"
    path.write_text("\ufeff" + HEADER + "2024-07-08,休,台风停课\n2024-07-13,班,补班\n" + _year_2027(), encoding="utf-8")
    calendar = load_calendar(path)
    assert LIBRARY_ONLY.is_workday(date(2024, 7, 8)) and not calendar.is_workday(date(2024, 7, 8))
    assert not LIBRARY_ONLY.is_workday(date(2024, 7, 13)) and calendar.is_workday(date(2024, 7, 13))
    assert calendar.is_workday(date(2024, 7, 9))  # other 2024 days still come from the library
    assert not calendar.is_workday(date(2024, 10, 1))
    assert not calendar.is_workday(date(2027, 1, 1)) and calendar.is_workday(date(2027, 1, 4))
    assert calendar.is_workday(date(2027, 2, 14)) and not calendar.is_workday(date(2027, 2, 8))
    assert add_workdays(date(2026, 12, 31), 1, calendar) == date(2027, 1, 4)
    assert calendar.gaps(date(2026, 12, 20), 30) == []


def test_a_year_nobody_knows_raises_instead_of_guessing() -> None:
    with pytest.raises(CalendarGapError) as caught:
        LIBRARY_ONLY.is_workday(date(2027, 1, 4))  # a Monday: Monday-Friday would say "working day"
    assert "2027 年的节假日安排未知" in str(caught.value)
    assert LIBRARY_ONLY.gaps(date(2026, 12, 15), 30) == [2027]
    assert LIBRARY_ONLY.gaps(date(2026, 11, 1), 30) == []


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("day,kind,name\n2027-01-01,休,元旦\n", 1, "表头"),
        (HEADER + "2027/01/01,休,元旦\n", 2, "格式不对"),
        (HEADER + "2026-02-30,休,春节\n", 2, "不存在"),
        (HEADER + "2026-02-16,放假,春节\n", 2, "只能是“休”"),
        (HEADER + "2026-02-16,休,\n", 2, "缺少名称"),
        (HEADER + "2026-02-16,休,春节,多余\n", 2, "应有 3 列"),
        (HEADER + "# 注释\n2026-02-13,班,春节\n", 3, "星期五"),
        (HEADER + "2026-02-16,休,春节\n2026-02-16,休,春节\n", 3, "重复（第 2 行已有）"),
        (HEADER + "2026-01-01,休,元旦\n2027-01-01,休,元旦\n2027-01-02,休,元旦\n", 3, "2027 年只有 2 天"),
    ],
)
def test_bad_lines_are_refused_in_chinese_naming_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        load_calendar(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path} 第 {line} 行：") and words in str(caught.value)


def test_missing_or_empty_table_is_a_data_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="节假日表文件不存在"):
        load_calendar(tmp_path / "nope.csv")
    with pytest.raises(DataFileError, match="节假日表是空的"):
        parse_holidays("# only a comment\n", "h.csv")


# ---------------------------------------------------------------- reminders and the digest


def test_reminder_in_an_unknown_year_is_held_recorded_and_reported(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """GIVEN the shipped table (to 2026) and a deadline in January 2027 WHEN reminders run on Monday 2027-01-04
    THEN nothing is sent, the hold is recorded with its reason, and the digest that day says why."""
    ctx = _ctx(tmp_path, None, smtp_server, deadline="2027-01-08T23:59:59+08:00")
    as_of = datetime(2027, 1, 4, 9, 30, tzinfo=TZ)
    summary = run_reminders(ctx, as_of)
    assert summary.occasion is None and summary.plans == []
    assert summary.why_none.startswith("催报暂停：2027 年的节假日安排未知")
    assert smtp_server.captured == []
    with ctx.db.connect() as conn:
        assert [r for r in fetch_ledger(conn) if r.kind == "reminder"] == []
        held = fetch_state(conn, STATE_REMINDER_HOLD)
    assert held is not None and "催报暂停" in held.value and held.value.startswith(as_of.isoformat())

    workbook = tmp_path / "报表.xlsx"
    workbook.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: the digest only attaches it
    digest = send_digest(ctx, datetime(2027, 1, 4, 10, 0, tzinfo=TZ), workbook, dry_run=True)
    assert digest.delivery is not None and not digest.skipped
    mail = email.message_from_bytes((ctx.data_dir / digest.delivery.eml_path).read_bytes(), policy=email.policy.default)
    body = mail.get_body(("plain",)).get_content()
    assert "催报暂停：2027 年的节假日安排未知" in body and "节假日表未覆盖 2027 年" in body
    ctx.close()


def test_reminders_before_a_gap_still_go_out_and_adding_the_year_releases_the_hold(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """GIVEN a deadline on 2026-12-31 WHEN the before-deadline reminder runs on 12-29 THEN it is sent although the
    overdue phase reaches unknown 2027; WHEN 2027 is added to the table THEN the overdue reminder goes out."""
    ctx = _ctx(tmp_path / "a", None, smtp_server, deadline="2026-12-31T23:59:59+08:00")
    before = run_reminders(ctx, datetime(2026, 12, 29, 9, 30, tzinfo=TZ))
    assert before.occasion is not None and before.occasion.phase == "before" and before.sent
    sent_before = len(smtp_server.captured)
    assert sent_before > 0
    held = run_reminders(ctx, datetime(2027, 1, 4, 9, 30, tzinfo=TZ))
    assert held.occasion is None and held.why_none.startswith("催报暂停")
    assert len(smtp_server.captured) == sent_before
    ctx.close()

    shipped = (ROOT / "data" / "holidays.csv").read_text(encoding="utf-8")
    ctx = _ctx(tmp_path / "b", shipped + _year_2027(), smtp_server, deadline="2026-12-31T23:59:59+08:00")
    released = run_reminders(ctx, datetime(2027, 1, 4, 9, 30, tzinfo=TZ))
    assert released.occasion is not None and released.occasion.phase == "overdue"
    assert released.occasion.day == date(2027, 1, 4) and released.sent
    assert len(smtp_server.captured) > sent_before
    with ctx.db.connect() as conn:
        assert fetch_state(conn, STATE_REMINDER_HOLD).value == ""
    ctx.close()


def test_a_broken_table_stops_reminders_not_intake(tmp_path: Path) -> None:
    """GIVEN a holiday table with a bad line WHEN mail is ingested THEN it is stored; reminders refuse with the error
    and the digest still goes out, saying why."""
    from pipeline.inbound.ingest import ingest_raw
    from tests.smtp import simple_mail

    ctx = _ctx(tmp_path, HEADER + "2026-13-01,休,元旦\n")
    result = ingest_raw(ctx, simple_mail(sender="a@example.com", subject="自查报告"), source="file", ref="t",
                        received_at=datetime(2026, 12, 1, 9, 0, tzinfo=TZ))  # fmt: skip
    assert result is not None
    with pytest.raises(DataFileError, match=r"holidays\.csv 第 2 行：日期 '2026-13-01' 不存在"):
        run_reminders(ctx, datetime(2026, 12, 1, 9, 30, tzinfo=TZ))
    workbook = tmp_path / "报表.xlsx"
    workbook.write_bytes(b"PK\x05\x06" + bytes(18))
    digest = send_digest(ctx, datetime(2026, 12, 1, 10, 0, tzinfo=TZ), workbook, dry_run=True)
    mail = email.message_from_bytes((ctx.data_dir / digest.delivery.eml_path).read_bytes(), policy=email.policy.default)
    assert "节假日表有错误，催报暂停" in mail.get_body(("plain",)).get_content()
    ctx.close()
