"""Rules of `compute_status`, one test per rule.

The roster is built here (five rows, one bureau); decisions are real `DecisionRow`s.
Every expectation follows from the rule the test names, not from running the code.
The last tests show where "manual outranks automatic" is applied: in
`storage.decisions.fetch_decisions`, before `compute_status` sees the rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.roster import Bureau, Institution, Roster
from pipeline.domain.status import InstitutionStatus, compute_status
from pipeline.inbound.ingest import ingest_raw
from pipeline.outputs.snapshot import build_snapshot
from storage.decisions import replace_auto_decisions, save_manual_decision
from storage.rows import Decision, DecisionRow
from tests.conftest import write_config
from tests.smtp import simple_mail

TZ = ZoneInfo("Asia/Shanghai")
DEADLINE = datetime(2024, 7, 10, 23, 59, 59, tzinfo=TZ)
FULL = {"基本情况": True, "整改措施及完成时限": True, "其他需要说明的事项": True}

A = "中山大学中山眼科中心"
B = "南方医科大学珠江医院"
C = "广州中医药大学一附院"  # row 3
C_TWIN = "广州中医药大学附属第一医院"  # row 4, same_as 3: the same hospital listed twice
D = "广州市番禺区第二人民医院"  # reports through the 番禺 bureau


def small_roster() -> Roster:
    institutions = [
        Institution(1, A, "", "direct", ("中山眼科",), None, ""),
        Institution(2, B, "", "direct", ("珠江医院",), None, ""),
        Institution(3, C, "", "direct", (), None, ""),
        Institution(4, C_TWIN, "", "direct", (), 3, ""),
        Institution(5, D, "番禺", "bureau", (), None, ""),
    ]
    return Roster(institutions, [Bureau("番禺", "广州市番禺区卫生健康局", ("番禺区卫健局",), None)])


_ids = iter(range(1, 10_000))


def decision(
    message_id: int,
    institution: str,
    received_at: datetime | None,
    *,
    kind: str = "report",
    item_path: str = "1",
    readable: bool = True,
    sections: dict | None = None,
    reason: str = "",
    origin: str = "auto",
    sender: str = "xxk@hospital.example",
) -> DecisionRow:
    return DecisionRow(
        id=next(_ids),
        message_id=message_id,
        item_path=item_path,
        kind=kind,
        institution=institution,
        confidence=0.9,
        evidence=[],
        reason=reason,
        sections=FULL if sections is None else sections,
        readable=readable,
        via_bureau="",
        origin=origin,
        decided_by="",
        decided_at=datetime(2024, 7, 1, tzinfo=TZ),
        note="",
        active=True,
        received_at=received_at,
        sender_address=sender,
        subject="自查报告",
    )


def statuses(decisions: list[DecisionRow], *, as_of: datetime, exempt: dict[str, str] | None = None
             ) -> dict[str, InstitutionStatus]:  # fmt: skip
    rows = compute_status(small_roster(), decisions, deadline=DEADLINE, as_of=as_of, exempt=exempt or {})
    return {row.institution.name: row for row in rows}


LATER = DEADLINE + timedelta(days=5)


# ---------------------------------------------------------------- on time / late / overdue / pending


def test_report_received_exactly_at_the_deadline_is_on_time() -> None:
    """GIVEN a report received at the deadline instant WHEN status is computed THEN it is on_time."""
    rows = statuses([decision(1, A, DEADLINE)], as_of=LATER)
    assert rows[A].status == "on_time"


def test_report_received_one_second_after_the_deadline_is_late() -> None:
    """GIVEN a report received one second after the deadline WHEN status is computed THEN it is late."""
    rows = statuses([decision(1, A, DEADLINE + timedelta(seconds=1))], as_of=LATER)
    assert rows[A].status == "late"


def test_first_report_decides_timeliness_and_a_later_report_does_not_change_it() -> None:
    """GIVEN an on-time report and a late correction WHEN status is computed THEN the row stays on_time;
    GIVEN a late report then another even later THEN it stays late."""
    on_time = statuses([decision(1, A, DEADLINE - timedelta(hours=1)), decision(2, A, LATER)], as_of=LATER)
    assert on_time[A].status == "on_time"
    late = statuses([decision(3, B, DEADLINE + timedelta(hours=1)), decision(4, B, LATER)], as_of=LATER)
    assert late[B].status == "late"


def test_later_report_becomes_the_current_version() -> None:
    """GIVEN a first report with one section and a later one with all three WHEN status is computed
    THEN both are submissions in receipt order and the last one (the current version) is the later."""
    partial = {"基本情况": True, "整改措施及完成时限": False, "其他需要说明的事项": False}
    first = decision(7, A, DEADLINE - timedelta(days=2), sections=partial, sender="first@a.example")
    second = decision(3, A, DEADLINE - timedelta(days=1), sender="second@a.example")
    row = statuses([second, first], as_of=LATER)[A]  # given out of order on purpose
    assert [s.message_id for s in row.submissions] == [7, 3]
    assert row.first is not None and row.first.sections == partial
    assert row.last is not None and row.last.message_id == 3 and row.last.sections == FULL
    assert row.last.sender == "second@a.example"
    assert row.first_received_at == first.received_at and row.last_received_at == second.received_at


def test_no_report_after_the_deadline_is_overdue() -> None:
    """GIVEN no report WHEN status is computed one second after the deadline THEN the row is overdue."""
    rows = statuses([], as_of=DEADLINE + timedelta(seconds=1))
    assert rows[A].status == "overdue"


def test_no_report_up_to_and_at_the_deadline_is_pending() -> None:
    """GIVEN no report WHEN status is computed before and exactly at the deadline THEN the row is pending."""
    assert statuses([], as_of=DEADLINE - timedelta(days=1))[A].status == "pending"
    assert statuses([], as_of=DEADLINE)[A].status == "pending"


def test_as_of_excludes_mail_received_later() -> None:
    """GIVEN a report received after `as_of` WHEN status is computed as of that moment THEN it is not seen:
    no submission, and the row is pending (before the deadline) or overdue (after it)."""
    report = decision(1, A, DEADLINE + timedelta(days=1))
    before = statuses([report], as_of=DEADLINE - timedelta(days=1))[A]
    assert before.status == "pending" and before.submissions == ()
    after = statuses([report], as_of=DEADLINE + timedelta(hours=1))[A]
    assert after.status == "overdue" and after.submissions == ()
    seen = statuses([report], as_of=report.received_at)[A]  # received exactly at as_of: seen
    assert seen.status == "late" and len(seen.submissions) == 1


def test_as_of_excludes_a_needs_review_item_received_later() -> None:
    """GIVEN a needs_review decision for a message received after `as_of` WHEN status is computed
    THEN the institution is not flagged for review."""
    flagged = decision(1, A, LATER, kind="needs_review", reason="发件人与报告单位不一致")
    assert not statuses([flagged], as_of=DEADLINE)[A].needs_review
    assert statuses([flagged], as_of=LATER)[A].needs_review


# ---------------------------------------------------------------- exempt, same_as, grouping


def test_exempt_outranks_submissions() -> None:
    """GIVEN an exempt institution that also sent a report WHEN status is computed THEN it is exempt,
    with the reason kept and the submission still listed."""
    rows = statuses(
        [decision(1, A, DEADLINE - timedelta(days=1))], as_of=LATER, exempt={A: "配置文件设为免报"}
    )
    assert rows[A].status == "exempt" and rows[A].exempt_reason == "配置文件设为免报"
    assert [s.message_id for s in rows[A].submissions] == [1]


def test_exempt_outranks_overdue() -> None:
    """GIVEN an exempt institution without any report WHEN status is computed after the deadline
    THEN it is exempt, not overdue."""
    assert statuses([], as_of=LATER, exempt={B: "免报"})[B].status == "exempt"


def test_same_as_rows_share_submissions() -> None:
    """GIVEN two roster rows that are one hospital (row 4 same_as row 3) WHEN either row's report arrives
    THEN both rows have that submission and the same status."""
    for reported in (C, C_TWIN):
        rows = statuses([decision(1, reported, DEADLINE - timedelta(days=1))], as_of=LATER)
        assert [s.message_id for s in rows[C].submissions] == [1], reported
        assert [s.message_id for s in rows[C_TWIN].submissions] == [1], reported
        assert rows[C].status == rows[C_TWIN].status == "on_time"
    assert statuses([decision(1, C, DEADLINE)], as_of=LATER)[A].submissions == ()


def test_items_of_one_message_are_one_submission_with_the_most_complete_readable_item_first() -> None:
    """GIVEN one message with an unreadable scan, a partial document and a complete document for A
    WHEN status is computed THEN A has ONE submission listing the complete item first, and it is readable."""
    when = DEADLINE - timedelta(days=1)
    partial = {"基本情况": True, "整改措施及完成时限": False, "其他需要说明的事项": False}
    items = [
        decision(1, A, when, item_path="3", readable=False, sections={}),
        decision(1, A, when, item_path="2", sections=partial),
        decision(1, A, when, item_path="1", sections=FULL),
    ]
    row = statuses(items, as_of=LATER)[A]
    assert len(row.submissions) == 1
    submission = row.submissions[0]
    assert submission.item_paths == ("1", "2", "3") and submission.sections == FULL and submission.readable


def test_submissions_are_in_receipt_order_with_message_id_breaking_ties() -> None:
    """GIVEN three messages, two received at the same instant WHEN status is computed
    THEN submissions are ordered by receipt time, then by message id."""
    t = DEADLINE - timedelta(days=1)
    rows = statuses(
        [decision(9, A, t), decision(5, A, t), decision(2, A, t + timedelta(minutes=1))], as_of=LATER
    )
    assert [s.message_id for s in rows[A].submissions] == [5, 9, 2]


def test_one_row_per_roster_row_in_roster_order() -> None:
    """GIVEN a roster of five rows WHEN status is computed THEN five rows come back in roster order."""
    rows = compute_status(small_roster(), [], deadline=DEADLINE, as_of=LATER, exempt={})
    assert [r.institution.row for r in rows] == [1, 2, 3, 4, 5]


def test_decisions_without_institution_or_receipt_time_or_of_other_kinds_do_not_count() -> None:
    """GIVEN a report with no institution, a report with no receipt time and an `unrelated` decision
    naming A WHEN status is computed THEN no row has a submission or a review flag."""
    rows = statuses(
        [decision(1, "", DEADLINE), decision(2, A, None), decision(3, A, DEADLINE, kind="unrelated")],
        as_of=LATER,
    )
    assert all(r.submissions == () and not r.needs_review for r in rows.values()) and len(rows) == 5


# ---------------------------------------------------------------- review flags


def test_unreadable_report_item_flags_needs_review() -> None:
    """GIVEN a report whose only item could not be read WHEN status is computed THEN the institution has
    the submission (it counts for timeliness), marked unreadable, and needs_review with the reason."""
    row = statuses([decision(1, A, DEADLINE - timedelta(days=1), readable=False, sections={})], as_of=LATER)[
        A
    ]
    assert row.status == "on_time" and row.submissions[0].readable is False
    assert row.needs_review and row.review_reasons == ("附件无法读取，请人工核对文件",)


def test_readable_report_does_not_flag_needs_review() -> None:
    """GIVEN a readable report WHEN status is computed THEN the institution is not flagged for review."""
    row = statuses([decision(1, A, DEADLINE)], as_of=LATER)[A]
    assert not row.needs_review and row.review_reasons == ()


def test_needs_review_decision_attaches_to_its_institution_only() -> None:
    """GIVEN a needs_review decision naming A WHEN status is computed THEN A needs review with that reason
    and its status is unchanged (still overdue); B is not flagged."""
    rows = statuses(
        [decision(1, A, DEADLINE, kind="needs_review", reason="发件人与报告单位不一致")], as_of=LATER
    )
    assert rows[A].needs_review and rows[A].review_reasons == ("发件人与报告单位不一致",)
    assert rows[A].status == "overdue" and rows[A].submissions == ()
    assert not rows[B].needs_review


def test_needs_review_decision_attaches_to_every_same_as_row() -> None:
    """GIVEN a needs_review decision naming row 4 (same_as 3) WHEN status is computed THEN both rows need review."""
    rows = statuses([decision(1, C_TWIN, DEADLINE, kind="needs_review", reason="待核对")], as_of=LATER)
    assert rows[C].needs_review and rows[C_TWIN].needs_review


def test_review_reasons_are_listed_once_each_in_order() -> None:
    """GIVEN the same review reason twice and another one WHEN status is computed THEN each reason appears
    once, in the order the decisions came."""
    flags = [
        decision(n, A, DEADLINE, kind="needs_review", reason=r) for n, r in enumerate(("甲", "乙", "甲"), 1)
    ]
    assert statuses(flags, as_of=LATER)[A].review_reasons == ("甲", "乙")


# ---------------------------------------------------------------- manual decisions


def test_submission_made_by_a_clerk_is_marked_manual() -> None:
    """GIVEN one message with an automatic and a manual report item for A WHEN status is computed
    THEN the submission's origin is manual."""
    items = [
        decision(1, A, DEADLINE, item_path="1"),
        decision(1, A, DEADLINE, item_path="2", origin="manual"),
    ]
    assert statuses(items, as_of=LATER)[A].submissions[0].origin == "manual"
    assert statuses(items[:1], as_of=LATER)[A].submissions[0].origin == "auto"


# ---------------------------------------------------------------- manual outranks automatic (storage + status)
# compute_status takes the decisions it is given; the rule lives in fetch_decisions, so these tests
# store real decisions in SQLite and read status through the campaign snapshot.


def _stored_message(tmp_path: Path, received_at: datetime):  # noqa: ANN202 - (Context, message id)
    ctx = open_context(load_config(write_config(tmp_path, {"limits": {"isolate_parsing": False}})))
    raw = simple_mail(sender="xxk@zoc.example", subject="转发：材料", body="请查收。")
    message_id = ingest_raw(ctx, raw, source="file", ref="manual-test", received_at=received_at).message_id
    return ctx, message_id


def test_manual_decision_on_an_item_outranks_the_automatic_one(tmp_path: Path) -> None:
    """GIVEN an automatic decision giving item 1 to A and a clerk's decision giving item 1 to B
    WHEN status is computed THEN B has the submission (origin manual) and A has none."""
    ctx, message_id = _stored_message(tmp_path, DEADLINE - timedelta(days=1))
    with ctx.db.begin() as conn:
        replace_auto_decisions(conn, message_id, [Decision("1", "report", institution=A, sections=FULL)])
    assert {r.institution.name: r for r in build_snapshot(ctx, LATER).statuses}[
        A
    ].status == "on_time"  # the auto one counts
    with ctx.db.begin() as conn:
        save_manual_decision(
            conn, message_id, Decision("1", "report", institution=B, sections=FULL), by="clerk"
        )
    rows = {r.institution.name: r for r in build_snapshot(ctx, LATER).statuses}
    assert rows[A].status == "overdue" and rows[A].submissions == ()
    assert rows[B].status == "on_time" and rows[B].submissions[0].origin == "manual"
    ctx.close()


def test_manual_decision_on_the_whole_message_outranks_every_automatic_item(tmp_path: Path) -> None:
    """GIVEN automatic decisions (a report of A on item 1, a review flag for B on item 2) and a clerk's
    decision that the whole message is unrelated WHEN status is computed THEN neither A nor B is affected."""
    ctx, message_id = _stored_message(tmp_path, DEADLINE - timedelta(days=1))
    auto = [Decision("1", "report", institution=A, sections=FULL),
            Decision("2", "needs_review", institution=B, reason="发件人与报告单位不一致")]  # fmt: skip
    with ctx.db.begin() as conn:
        replace_auto_decisions(conn, message_id, auto)
    before = {r.institution.name: r for r in build_snapshot(ctx, LATER).statuses}
    assert before[A].status == "on_time" and before[B].needs_review
    with ctx.db.begin() as conn:
        save_manual_decision(conn, message_id, Decision("message", "unrelated"), by="clerk")
    rows = {r.institution.name: r for r in build_snapshot(ctx, LATER).statuses}
    assert rows[A].status == "overdue" and rows[A].submissions == ()
    assert not rows[B].needs_review
    ctx.close()
