"""Problem codes: every code has a Chinese label, and old English problems get a code once (0004)."""

from __future__ import annotations

import sqlite3

from sqlalchemy import select

from parsers.types import Problem, ProblemCode
from pipeline.labels import PROBLEM_LABELS, describe_problem
from storage.db import DB_FILENAME, open_database
from storage.schema import items


def test_every_code_has_a_chinese_label() -> None:
    """GIVEN every ProblemCode
    WHEN described for a clerk
    THEN each has its own label in Chinese, with no English reason text."""
    for code in ProblemCode:
        label = describe_problem(code, "some English detail")
        assert label == PROBLEM_LABELS[code], code
        assert "English" not in label and any("\u4e00" <= ch <= "\u9fff" for ch in label), code
    assert describe_problem(None) == "" and describe_problem("") == ""


def test_describe_accepts_a_problem_and_a_stored_code() -> None:
    """GIVEN a Problem object, and a code read back from the database as a string
    WHEN described
    THEN both give the code's label; an unknown stored code shows its detail in brackets."""
    assert describe_problem(Problem(ProblemCode.ENCRYPTED_ZIP)) == PROBLEM_LABELS[ProblemCode.ENCRYPTED_ZIP]
    assert describe_problem("scan_no_text", "x") == PROBLEM_LABELS[ProblemCode.SCAN_NO_TEXT]
    assert describe_problem("from_the_future", "detail") == "无法读取（detail）"


def test_migration_codes_old_item_problems(tmp_path) -> None:
    """GIVEN a database from before problem codes, whose items hold English reasons
    WHEN it is opened (migrations run)
    THEN items.problem_code is added and filled from the old text; the text is kept."""
    db = open_database(tmp_path)
    db.dispose()
    old = {
        "1": ("zip bomb: declared expanded size 3.1 GB exceeds limit", "zip_bomb"),
        "2": ("encrypted zip member", "encrypted_zip"),
        "3": ("pdf has no text layer (scan?)", "scan_no_text"),
        "4": ("legacy Word .doc (OLE2) cannot be read", "unsupported"),
        "5": ("not read: parsing took longer than 60 s: stopped", "parse_stopped"),
        "6": ("truncated docx: bad zip central directory (x)", "truncated"),
        "7": ("", ""),
    }
    con = sqlite3.connect(tmp_path / DB_FILENAME)
    con.execute("ALTER TABLE items DROP COLUMN problem_code")
    con.execute("DELETE FROM schema_migrations WHERE name = '0005_item_problem_codes'")
    for path, (problem, _) in old.items():
        con.execute(
            "INSERT INTO items (message_id, path, filename, content_type, kind, size, sha256, problem, text_chars)"
            " VALUES (1, ?, '', '', 'unreadable', 0, '', ?, 0)",
            (path, problem),
        )
    con.commit()
    con.close()
    db = open_database(tmp_path)
    with db.connect() as conn:
        rows = {r.path: (r.problem, r.problem_code) for r in conn.execute(select(items))}
    db.dispose()
    assert rows == {path: (problem, code) for path, (problem, code) in old.items()}
