"""Rules of reminder planning: the schedule, the occasion due now, and who is chased at which address.

`reminder_schedule`, `due_occasion` and `plan_reminders` take a Context (config, database,
roster, contacts), so these tests give them a real one over a seven-row roster written
here, and record reports as a clerk would.  The mails themselves (SMTP, ledger) are
tested in test_reminders.py.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.config import load_config
from pipeline.context import Context, open_context
from pipeline.inbound.ingest import ingest_raw
from pipeline.outbound.reminders import (
    Occasion,
    ReminderPlan,
    due_occasion,
    plan_reminders,
    reminder_schedule,
)
from storage.decisions import save_manual_decision
from storage.ledger import save_address_status
from storage.rows import Decision
from tests.conftest import write_config
from tests.smtp import record_report, simple_mail

TZ = ZoneInfo("Asia/Shanghai")

EYE = "中山大学中山眼科中心"
TWIN_1 = "广州中医药大学一附院"
TWIN_2 = "广州中医药大学附属第一医院"  # same_as TWIN_1
PANYU_2 = "广州市番禺区第二人民医院"
PANYU_3 = "广州市番禺区第三人民医院"
PANYU_BUREAU = "广州市番禺区卫生健康局"
TIANHE_ROW = "广东省广州市天河区卫生健康局"  # a bureau that is itself a roster row
TIANHE_BUREAU = "广州市天河区卫生健康局"
COMMISSION = "广州市卫生健康委员会"

ROSTER = f"""row,name,district,channel,aliases,same_as,note
1,{EYE},,direct,,,
2,{TWIN_1},,direct,,,
3,{TWIN_2},,direct,,2,
4,{PANYU_2},番禺,bureau,,,
5,{PANYU_3},番禺,bureau,,,
6,{TIANHE_ROW},天河,direct,,,
7,{COMMISSION},,direct,,,
"""
BUREAUS = f"""district,name,aliases,roster_row
番禺,{PANYU_BUREAU},,
天河,{TIANHE_BUREAU},,6
"""
CONTACTS = {
    EYE: "xxk@zoc.example",
    TWIN_1: "xxk@gzucm1.example",
    TWIN_2: "bgs@gzucm1.example",
    PANYU_2: "hefeng@panyu-2y.example",
    PANYU_3: "luojing@panyu-3y.example",
    PANYU_BUREAU: "wjj@panyu-wjj.example",
    TIANHE_ROW: "bgs@tianhe-wjj.example",
    TIANHE_BUREAU: "wjj@tianhe-wjj.example",
    COMMISSION: "xxb@gz.gov.cn",
}


def at(day: int, hour: int = 9, minute: int = 5) -> datetime:
    return datetime(2024, 7, day, hour, minute, tzinfo=TZ)


def small_campaign(tmp_path: Path, **reminders: object) -> Context:
    """A context over the seven-row roster; the deadline is Wednesday 2024-07-10 23:59:59 unless overridden."""
    data = tmp_path / "small-data"
    data.mkdir(parents=True)
    (data / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (data / "bureaus.csv").write_text(BUREAUS, encoding="utf-8")
    contacts = "institution,address,person,role\n" + "".join(
        f"{k},{v},联系人,信息科\n" for k, v in CONTACTS.items()
    )
    (data / "contacts.csv").write_text(contacts, encoding="utf-8")
    shutil.copy(Path(__file__).resolve().parent.parent / "data" / "holidays.csv", data / "holidays.csv")
    campaign: dict[str, object] = {"exempt": [COMMISSION]}
    if "deadline" in reminders:
        campaign["deadline"] = reminders.pop("deadline")
    overrides = {"campaign": campaign, "reminders": reminders, "limits": {"isolate_parsing": False}}
    return open_context(load_config(write_config(tmp_path, overrides, data=data)))


def reported(ctx: Context, name: str, when: datetime) -> None:
    record_report(ctx, simple_mail(sender=CONTACTS[name], subject="自查报告"), when, (name,))


def plans_by_unit(
    ctx: Context, as_of: datetime, occasion: Occasion
) -> tuple[dict[str, ReminderPlan], list[str]]:
    plans, held = plan_reminders(ctx, as_of, occasion)
    by_unit = {p.unit: p for p in plans}
    assert len(by_unit) == len(plans), "two plans for one unit"
    return by_unit, held


BEFORE_1 = Occasion(date(2024, 7, 8), "before", 1)
OVERDUE_1 = Occasion(date(2024, 7, 11), "overdue", 1)


# ---------------------------------------------------------------- the schedule


def test_before_deadline_days_are_counted_in_working_days_back_from_the_deadline_day(tmp_path: Path) -> None:
    """GIVEN the deadline on Wednesday 07-10 and before_deadline_days [2, 0] WHEN the schedule is built
    THEN the friendly nudges fall on Monday 07-08 and on the deadline day."""
    ctx = small_campaign(tmp_path)
    before = [(o.day, o.round) for o in reminder_schedule(ctx) if o.phase == "before"]
    assert before == [(date(2024, 7, 8), 1), (date(2024, 7, 10), 2)]
    ctx.close()


def test_before_days_skip_the_weekend(tmp_path: Path) -> None:
    """GIVEN the deadline on Monday 07-15 and before_deadline_days [1] WHEN the schedule is built
    THEN the nudge is on Friday 07-12, not on Sunday."""
    ctx = small_campaign(tmp_path, deadline="2024-07-15T23:59:59+08:00", before_deadline_days=[1])
    assert [o.day for o in reminder_schedule(ctx) if o.phase == "before"] == [date(2024, 7, 12)]
    ctx.close()


def test_day_zero_on_a_rest_day_moves_to_the_last_working_day_before_it(tmp_path: Path) -> None:
    """GIVEN the deadline on Saturday 07-13 and before_deadline_days [0] WHEN the schedule is built
    THEN the deadline-day nudge is on Friday 07-12."""
    ctx = small_campaign(tmp_path, deadline="2024-07-13T23:59:59+08:00", before_deadline_days=[0])
    assert [o.day for o in reminder_schedule(ctx) if o.phase == "before"] == [date(2024, 7, 12)]
    ctx.close()


def test_overdue_rounds_start_the_next_working_day_and_repeat_every_n_working_days_at_most_m_times(
    tmp_path: Path,
) -> None:
    """GIVEN the deadline on Friday 07-12, every 3 working days, at most 2 WHEN the schedule is built
    THEN overdue rounds fall on Monday 07-15 and Thursday 07-18, numbered 1 and 2."""
    ctx = small_campaign(tmp_path, deadline="2024-07-12T23:59:59+08:00", overdue_every_working_days=3,
                         max_overdue_reminders=2)  # fmt: skip
    overdue = [(o.day, o.round) for o in reminder_schedule(ctx) if o.phase == "overdue"]
    assert overdue == [(date(2024, 7, 15), 1), (date(2024, 7, 18), 2)]
    ctx.close()


# ---------------------------------------------------------------- the occasion due now


def test_no_occasion_on_a_rest_day(tmp_path: Path) -> None:
    """GIVEN Saturday 07-13 after the first overdue day WHEN asked what is due THEN nothing, because of the day."""
    ctx = small_campaign(tmp_path)
    occasion, why = due_occasion(ctx, at(13, 10, 0))
    assert occasion is None and "不是工作日" in why
    ctx.close()


def test_no_occasion_in_quiet_hours(tmp_path: Path) -> None:
    """GIVEN 21:00 on a working day after reminders began WHEN asked what is due THEN nothing (quiet hours)."""
    ctx = small_campaign(tmp_path)
    occasion, why = due_occasion(ctx, at(11, 21, 0))
    assert occasion is None and "免打扰" in why
    ctx.close()


def test_no_occasion_before_the_first_reminder_time(tmp_path: Path) -> None:
    """GIVEN 08:59 on the first reminder day (remind_at 09:00) WHEN asked THEN nothing is due yet;
    at 09:00 exactly the first nudge is due."""
    ctx = small_campaign(tmp_path)
    occasion, why = due_occasion(ctx, at(8, 8, 59))
    assert occasion is None and "尚未到" in why
    assert due_occasion(ctx, at(8, 9, 0))[0] == BEFORE_1
    ctx.close()


def test_a_missed_run_acts_on_the_latest_occasion_only(tmp_path: Path) -> None:
    """GIVEN no run since 07-08 WHEN a run happens on Friday 07-12 (between overdue rounds on 07-11 and 07-15)
    THEN the due occasion is the latest one whose time has come: overdue round 1, not an earlier nudge."""
    ctx = small_campaign(tmp_path)
    assert due_occasion(ctx, at(12, 15, 0))[0] == OVERDUE_1
    ctx.close()


# ---------------------------------------------------------------- who is chased


def test_before_the_deadline_only_pending_institutions_are_chased(tmp_path: Path) -> None:
    """GIVEN EYE reported on 07-05 WHEN the 07-08 nudge is planned THEN EYE is not in any plan and every
    other non-exempt row is."""
    ctx = small_campaign(tmp_path)
    reported(ctx, EYE, at(5))
    plans, held = plans_by_unit(ctx, at(8), BEFORE_1)
    chased = {n for p in plans.values() for n in p.institutions}
    assert chased == {TWIN_1, TWIN_2, PANYU_2, PANYU_3, TIANHE_ROW} and held == []
    ctx.close()


def test_exempt_institutions_are_never_chased(tmp_path: Path) -> None:
    """GIVEN the commission exempt WHEN the nudge is planned THEN no plan names it or mails its address."""
    ctx = small_campaign(tmp_path)
    plans, _ = plans_by_unit(ctx, at(8), BEFORE_1)
    assert plans and all(COMMISSION not in p.institutions for p in plans.values())
    assert all(r.address != CONTACTS[COMMISSION] for p in plans.values() for r in (*p.to, *p.cc))
    ctx.close()


def test_after_the_deadline_only_overdue_institutions_are_chased_not_late_ones(tmp_path: Path) -> None:
    """GIVEN EYE reported on 07-11 (late) WHEN the first overdue round is planned THEN EYE is not chased."""
    ctx = small_campaign(tmp_path)
    reported(ctx, EYE, at(11, 8, 0))
    plans, _ = plans_by_unit(ctx, at(11), OVERDUE_1)
    assert EYE not in plans and TWIN_1 in plans and PANYU_BUREAU in plans
    assert "逾期未报" in plans[TWIN_1].reason
    ctx.close()


def test_direct_institution_gets_its_own_mail_at_its_own_contacts(tmp_path: Path) -> None:
    """GIVEN EYE reports directly WHEN the nudge is planned THEN one plan for EYE, To its contact, no Cc,
    with the ledger occasion reminder:<unit>:<day>."""
    ctx = small_campaign(tmp_path)
    plan = plans_by_unit(ctx, at(8), BEFORE_1)[0][EYE]
    assert (plan.channel, plan.institutions) == ("direct", (EYE,))
    assert [r.address for r in plan.to] == [CONTACTS[EYE]] and plan.cc == ()
    assert plan.occasion == f"reminder:{EYE}:2024-07-08" and plan.skipped == ""
    ctx.close()


def test_same_as_rows_get_one_mail_at_both_rows_contacts(tmp_path: Path) -> None:
    """GIVEN two rows that are one hospital WHEN the nudge is planned THEN one plan under the first row's name
    lists both rows and goes To both rows' contacts."""
    ctx = small_campaign(tmp_path)
    plans, _ = plans_by_unit(ctx, at(8), BEFORE_1)
    assert TWIN_2 not in plans
    plan = plans[TWIN_1]
    assert set(plan.institutions) == {TWIN_1, TWIN_2}
    assert {r.address for r in plan.to} == {CONTACTS[TWIN_1], CONTACTS[TWIN_2]}
    ctx.close()


def test_district_run_institutions_are_grouped_into_one_mail_to_their_bureau(tmp_path: Path) -> None:
    """GIVEN two 番禺 institutions reporting through the bureau WHEN the nudge is planned THEN one plan for the
    bureau lists both, To the bureau's contact, the institutions' contacts in Cc; no plan per institution."""
    ctx = small_campaign(tmp_path)
    plans, _ = plans_by_unit(ctx, at(8), BEFORE_1)
    assert PANYU_2 not in plans and PANYU_3 not in plans
    plan = plans[PANYU_BUREAU]
    assert plan.channel == "bureau" and set(plan.institutions) == {PANYU_2, PANYU_3}
    assert [r.address for r in plan.to] == [CONTACTS[PANYU_BUREAU]]
    assert {r.address for r in plan.cc} == {CONTACTS[PANYU_2], CONTACTS[PANYU_3]}
    ctx.close()


def test_bureau_listed_on_the_roster_is_covered_by_its_bureau_mail(tmp_path: Path) -> None:
    """GIVEN 天河's bureau is itself roster row 6 WHEN the nudge is planned THEN the row is chased in a bureau
    plan under the bureau's name, To both the bureau's and the row's contacts."""
    ctx = small_campaign(tmp_path)
    plans, _ = plans_by_unit(ctx, at(8), BEFORE_1)
    assert TIANHE_ROW not in plans
    plan = plans[TIANHE_BUREAU]
    assert plan.channel == "bureau" and plan.institutions == (TIANHE_ROW,)
    assert {r.address for r in plan.to} == {CONTACTS[TIANHE_BUREAU], CONTACTS[TIANHE_ROW]} and plan.cc == ()
    ctx.close()


def test_institution_with_mail_in_the_review_queue_is_held_back(tmp_path: Path) -> None:
    """GIVEN a message about PANYU_3 waiting for a clerk's review WHEN the nudge is planned THEN PANYU_3 is not
    chased and is listed as held with the review reason; PANYU_2 is still chased."""
    ctx = small_campaign(tmp_path)
    raw = simple_mail(sender="someone@qq.example", subject="材料")
    message_id = ingest_raw(ctx, raw, source="file", ref="review", received_at=at(5)).message_id
    with ctx.db.begin() as conn:
        save_manual_decision(conn, message_id, Decision("message", "needs_review", institution=PANYU_3,
                                                        reason="发件人无法确认"), by="test")  # fmt: skip
    plans, held = plans_by_unit(ctx, at(8), BEFORE_1)
    assert plans[PANYU_BUREAU].institutions == (PANYU_2,)
    assert len(held) == 1 and held[0].startswith(PANYU_3) and "发件人无法确认" in held[0]
    ctx.close()


def test_addresses_known_to_bounce_are_skipped_with_a_note(tmp_path: Path) -> None:
    """GIVEN PANYU_2's address marked failing WHEN the nudge is planned THEN it is not in Cc and the plan notes
    the skip; a unit whose only address fails is planned but skipped with the reason."""
    ctx = small_campaign(tmp_path)
    with ctx.db.begin() as conn:
        save_address_status(conn, CONTACTS[PANYU_2], "failing", error="550 5.1.1 user unknown")
        save_address_status(conn, CONTACTS[EYE], "failing", error="550 5.1.1 user unknown")
    plans, _ = plans_by_unit(ctx, at(8), BEFORE_1)
    panyu = plans[PANYU_BUREAU]
    assert [r.address for r in panyu.cc] == [CONTACTS[PANYU_3]]
    assert any(CONTACTS[PANYU_2] in note for note in panyu.notes) and panyu.skipped == ""
    assert plans[EYE].to == () and "没有可用的联系邮箱" in plans[EYE].skipped
    ctx.close()
