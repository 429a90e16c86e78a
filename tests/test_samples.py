"""The clerk data files and the sample-mail generator (pipeline.demo.samples).

The corpus is the fixture the rest of the test suite trusts, so it is checked
for determinism, parseability, truth consistency and that the quirks it
claims to exercise are really present in the bytes.
"""

from __future__ import annotations

import csv
import email
import io
import re
import zipfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from pipeline.demo.samples import SampleCorpus, generate_corpus, write_corpus

DATA = Path(__file__).resolve().parents[1] / "data"
ROSTER, BUREAUS, CONTACTS = DATA / "roster.csv", DATA / "bureaus.csv", DATA / "contacts.csv"
CST = timezone(timedelta(hours=8))
DISTRICTS = {"越秀", "海珠", "荔湾", "天河", "白云", "黄埔", "番禺", "花都", "南沙", "从化", "增城"}
COMMISSION = "广州市卫生健康委员会"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _normalise(name: str) -> str:
    """What the matcher is expected to do anyway: drop prefixes, spaces, bracket width."""
    name = re.sub(r"\s+", "", name).replace("（", "(").replace("）", ")")
    for prefix in ("广东省", "广州市"):
        name = name.replace(prefix, "")
    return name


@pytest.fixture(scope="module")
def roster() -> list[dict[str, str]]:
    return _rows(ROSTER)


@pytest.fixture(scope="module")
def corpus() -> SampleCorpus:
    return generate_corpus(ROSTER, BUREAUS, CONTACTS, seed=7)


# --------------------------------------------------------------------------- data files


def test_roster_shape(roster):
    assert list(roster[0].keys()) == ["row", "name", "district", "channel", "aliases", "same_as", "note"]
    assert len(roster) == 96
    assert [int(row["row"]) for row in roster] == list(range(1, 97))
    names = [row["name"] for row in roster]
    assert len(set(names)) == 96
    for odd in (
        "番禺健康管理中心I番禺康复医院",
        "广东省广州市天河区卫生健康局",
        "南方医科大学南方医院白云分院（广州市白云区人民医院）",
    ):
        assert odd in names
    assert {row["channel"] for row in roster} <= {"bureau", "direct"}
    assert {row["district"] for row in roster} <= DISTRICTS | {""}
    for row in roster:
        if row["channel"] == "bureau":
            assert row["district"], row["name"]


def test_roster_same_as_and_exemption(roster):
    by_row = {int(row["row"]): row for row in roster}
    linked = [row for row in roster if row["same_as"]]
    assert linked, "the two 广州中医药大学一附院 rows must be linked"
    for row in linked:
        target = int(row["same_as"])
        assert target in by_row and target < int(row["row"])
    assert {by_row[21]["name"], by_row[23]["name"]} == {"广州中医药大学一附院", "广州中医药大学附属第一医院"}
    commission = next(row for row in roster if row["name"] == COMMISSION)
    assert "免报" in commission["note"]


def test_roster_channels_follow_ownership(roster):
    channel = {row["name"]: row["channel"] for row in roster}
    assert channel["南方医科大学南方医院白云分院（广州市白云区人民医院）"] == "direct"
    assert channel["广州市番禺区第二人民医院"] == "bureau"
    assert channel["海珠健康家园"] == "bureau"
    assert channel["番禺健康管理中心I番禺康复医院"] == "bureau"
    assert channel["广州市第一人民医院"] == "direct"
    assert channel["广州市越秀区卫生健康局"] == "direct"


def test_aliases_never_collide_across_rows(roster):
    same = {}
    for row in roster:
        if row["same_as"]:
            same[int(row["row"])] = int(row["same_as"])
            same[int(row["same_as"])] = int(row["row"])
    terms = []  # (row, normalised text, is_alias)
    for row in roster:
        number = int(row["row"])
        terms.append((number, _normalise(row["name"]), False))
        for alias in filter(None, row["aliases"].split(";")):
            normalised = _normalise(alias)
            assert normalised != _normalise(row["name"]), f"trivial alias {alias!r}"
            terms.append((number, normalised, True))
    for number, alias, is_alias in terms:
        if not is_alias:
            continue
        for other, text, other_is_alias in terms:
            if other == number or same.get(number) == other:
                continue
            assert alias not in text, f"alias {alias!r} (row {number}) is inside {text!r} (row {other})"
            if other_is_alias:
                assert text not in alias, f"alias {text!r} (row {other}) is inside {alias!r} (row {number})"


def test_bureaus_file(roster):
    rows = _rows(BUREAUS)
    assert list(rows[0].keys()) == ["district", "name", "aliases", "roster_row"]
    assert {row["district"] for row in rows} == DISTRICTS
    names = {int(row["row"]): row["name"] for row in roster}
    linked = {row["district"] for row in rows if row["roster_row"]}
    assert linked == {"越秀", "南沙", "白云", "天河"}
    for row in rows:
        assert row["name"] == f"广州市{row['district']}区卫生健康局"
        if row["roster_row"]:
            assert _normalise(names[int(row["roster_row"])]) == _normalise(row["name"])


def test_contacts_cover_everyone_with_fake_domains(roster):
    rows = _rows(CONTACTS)
    assert list(rows[0].keys()) == ["institution", "address", "person", "role"]
    per_institution = Counter(row["institution"] for row in rows)
    for name in [row["name"] for row in roster] + [row["name"] for row in _rows(BUREAUS)]:
        assert 1 <= per_institution[name] <= 2, name
    addresses = [row["address"] for row in rows]
    assert len(addresses) == len(set(addresses))
    for row in rows:
        assert row["address"] == "xxb@gz.gov.cn" or row["address"].endswith(".example"), row["address"]
        assert row["role"] in {"信息科", "办公室", "联系人"}
        assert 2 <= len(row["person"]) <= 4


# --------------------------------------------------------------------------- corpus


def test_corpus_is_deterministic_and_seed_sensitive(corpus):
    again = generate_corpus(ROSTER, BUREAUS, CONTACTS, seed=7)
    assert [mail.raw for mail in again.mails] == [mail.raw for mail in corpus.mails]
    assert again.expected_status == corpus.expected_status
    other = generate_corpus(ROSTER, BUREAUS, CONTACTS, seed=8)
    assert [mail.name for mail in other.mails] != [mail.name for mail in corpus.mails]
    assert other.expected_status != corpus.expected_status


def test_corpus_size_and_mix(corpus):
    kinds = Counter(mail.expected_kind for mail in corpus.mails)
    assert set(kinds) == {"report", "unrelated"}
    assert 140 <= len(corpus.mails) <= 260
    assert 0.3 <= kinds["unrelated"] / len(corpus.mails) <= 0.55
    assert len({mail.name for mail in corpus.mails}) == len(corpus.mails)
    assert [mail.received_at for mail in corpus.mails] == sorted(mail.received_at for mail in corpus.mails)
    assert {mail.folder for mail in corpus.mails} == {"INBOX", "垃圾邮件"}


def test_expected_institutions_are_roster_names(corpus, roster):
    names = {row["name"] for row in roster}
    assert corpus.mails
    for mail in corpus.mails:
        assert set(mail.expected_institutions) <= names, mail.name
        if mail.expected_kind == "report":
            assert mail.expected_institutions, mail.name
        else:
            assert not mail.expected_institutions, mail.name


def _walk_everything(message) -> int:
    parts = 0
    for part in message.walk():
        parts += 1
        str(part.get("subject", ""))
        str(part.get("from", ""))
        part.get_filename()
        if not part.is_multipart() and part.get_content_type() != "message/rfc822":
            part.get_payload(decode=True)
            part.get_content()
    return parts


def test_every_mail_parses_with_the_standard_library(corpus):
    for mail in corpus.mails:
        message = email.message_from_bytes(mail.raw, policy=policy.default)
        assert _walk_everything(message) >= 1, mail.name
        assert not [defect for defect in message.defects if "Boundary" in type(defect).__name__], mail.name


def _topmost_received_date(raw: bytes) -> datetime:
    headers = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    match = re.search(r"^Received:(.*?)(?=^\S)", headers + "\nX:", re.M | re.S)
    assert match, "no Received header"
    stamp = match.group(1).rsplit(";", 1)[1]
    stamp = re.sub(r"\(.*?\)", "", stamp).strip()
    return parsedate_to_datetime(stamp)


def test_received_at_is_the_topmost_received_date(corpus):
    assert corpus.mails
    for mail in corpus.mails:
        assert mail.received_at.utcoffset() == timedelta(hours=8), mail.name
        assert _topmost_received_date(mail.raw) == mail.received_at, mail.name
        assert mail.received_at <= corpus.as_of


def test_statuses_match_first_receipts(corpus, roster):
    status = corpus.expected_status
    assert set(status) == {row["name"] for row in roster}
    assert status[COMMISSION] == "exempt"
    for name, value in status.items():
        first = corpus.expected_first_received.get(name)
        if value in ("on_time", "late"):
            assert first is not None
            assert (first <= corpus.deadline) == (value == "on_time"), name
        elif name != COMMISSION:
            assert value == "overdue" and first is None, name
    tally = Counter(status.values())
    assert 4 <= tally["overdue"] <= 8
    assert 6 <= tally["late"] <= 10
    assert status["广州中医药大学一附院"] == status["广州中医药大学附属第一医院"]
    assert corpus.expected_first_received.get("广州中医药大学一附院") == corpus.expected_first_received.get(
        "广州中医药大学附属第一医院"
    )
    for mail in corpus.mails:
        for name in mail.expected_institutions:
            assert corpus.expected_first_received[name] <= mail.received_at


def test_traps_are_all_exercised(corpus):
    tags = Counter(tag for mail in corpus.mails for tag in mail.trap.split("+"))
    required = {
        "abbrev", "prefix-variant", "spaced-name", "bracket-width", "partner-mention", "template-placeholder",
        "pdf-only", "docx-and-pdf", "inline-report", "unreadable-rar", "unreadable-doc", "scan-pdf",
        "personal-mailbox", "colleague-forward-rfc822", "colleague-forward-inline", "resubmission",
        "resubmission-corrected", "wrong-date", "deadline-edge", "forgot-attachment", "resend-after-forgot",
        "same-hospital-pair", "two-institutions", "bureau-bypass", "summary-table", "pending-list",
        "bureau-followup", "bureau-zip-gbk", "bureau-zip-utf8", "bureau-forward-rfc822", "bureau-multi",
        "bureau-one-by-one", "bureau-summary-only", "other-campaign-selfcheck", "template-question",
        "auto-reply", "bounce", "newsletter", "spam", "gbk-subject", "duplicate-send", "acknowledgement",
    }  # fmt: skip
    assert required <= set(tags), required - set(tags)
    for tag in ("abbrev", "personal-mailbox", "resubmission", "other-campaign-selfcheck", "spam"):
        assert tags[tag] >= 2, tag


def test_deadline_edges_straddle_midnight(corpus):
    edges = [mail.received_at for mail in corpus.mails if mail.trap.split("+")[0] == "deadline-edge"]
    assert any(corpus.deadline - timedelta(minutes=2) < moment <= corpus.deadline for moment in edges)
    assert any(corpus.deadline < moment < corpus.deadline + timedelta(minutes=2) for moment in edges)
    for mail in corpus.mails:
        if mail.trap.split("+")[0] == "wrong-date":
            claimed = email.message_from_bytes(mail.raw, policy=policy.default)["date"].datetime
            assert claimed < corpus.deadline < mail.received_at


def test_gbk_quirks_are_in_the_bytes(corpus):
    blob = [mail.raw for mail in corpus.mails]
    raw_filename = re.compile(rb'filename="[^"\r\n]*?[\x81-\xfe][\x40-\xfe]')
    assert any(raw_filename.search(raw) for raw in blob), "no raw 8-bit GBK file name"
    # An encoded-word labelled gb2312 whose bytes need GBK (喆 is outside GB2312).
    assert any("喆".encode("gbk") in _decoded_gb2312_words(raw) for raw in blob)
    gbk_zip = utf8_zip = False
    for mail in corpus.mails:
        for part in email.message_from_bytes(mail.raw, policy=policy.default).walk():
            payload = part.get_payload(decode=True) if not part.is_multipart() else None
            if payload and payload[:4] == b"PK\x03\x04" and (part.get_filename() or "").endswith(".zip"):
                for info in zipfile.ZipFile(io.BytesIO(payload)).infolist():
                    if info.flag_bits & 0x800:
                        utf8_zip = True
                    elif not info.filename.isascii():
                        gbk_zip = True
                        assert info.filename.encode("cp437").decode("gbk")
    assert gbk_zip and utf8_zip


def _decoded_gb2312_words(raw: bytes) -> bytes:
    import base64

    chunks = re.findall(rb"=\?gb2312\?B\?([A-Za-z0-9+/=]+)\?=", raw, re.I)
    return b"|".join(base64.b64decode(chunk) for chunk in chunks)


def test_unreadable_stand_ins_have_magic_numbers(corpus):
    magics = set()
    for mail in corpus.mails:
        for part in email.message_from_bytes(mail.raw, policy=policy.default).walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            if payload.startswith(bytes.fromhex("D0CF11E0A1B11AE1")):
                magics.add("ole2")
            if payload.startswith(b"Rar!\x1a\x07\x00"):
                magics.add("rar")
    assert magics == {"ole2", "rar"}


def test_earlier_as_of_truncates_and_leaves_pending():
    as_of = datetime(2024, 7, 9, 12, 0, tzinfo=CST)
    early = generate_corpus(ROSTER, BUREAUS, CONTACTS, seed=7, as_of=as_of)
    assert early.mails and all(mail.received_at <= as_of for mail in early.mails)
    assert set(early.expected_status.values()) <= {"on_time", "pending", "exempt"}


def test_write_corpus(tmp_path, corpus):
    import json

    write_corpus(corpus, tmp_path)
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == len(corpus.mails)
    assert files[0].read_bytes() == corpus.mails[0].raw
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert truth["deadline"] == "2024-07-10T23:59:59+08:00"
    assert len(truth["mails"]) == len(corpus.mails)
    assert truth["expected_status"] == corpus.expected_status

