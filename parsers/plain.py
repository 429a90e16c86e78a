"""`parsers.types` to and from plain values (dicts, lists, str, int, float, bool, None) — no pickle.

The parse sandbox's child reads hostile files, so its answer is data that must not be able to
name code: it crosses the process boundary as JSON of plain values and is rebuilt here field by
field, each value checked for its type.  A malformed answer raises `PlainError`; nothing in it
can choose a class or a callable.

    data = message_to_plain(parsed)        # JSON-ready
    parsed == message_from_plain(data)     # round trip

`dumps`/`loads` are the wire form: UTF-8 JSON, with lone surrogates (from undecodable bytes)
passed through unchanged.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any

from parsers.types import (
    Address,
    DocumentText,
    LinkedFile,
    Paragraph,
    ParsedMessage,
    ParseLimits,
    Part,
    PartKind,
    Problem,
    ProblemCode,
)

MAX_NESTING = 200  # parts inside parts/messages; the parser's own limits stay far below this


class PlainError(ValueError):
    """Raised when plain data does not have the shape of the type it should rebuild."""


def dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def loads(data: bytes) -> Any:  # noqa: ANN401 - plain JSON values
    return json.loads(data.decode("utf-8", "surrogatepass"))


# -- to plain -----------------------------------------------------------------------------------


def message_to_plain(m: ParsedMessage) -> dict:
    return {
        "message_id": m.message_id,
        "subject": m.subject,
        "sender": _address_out(m.sender),
        "from_count": m.from_count,
        "reply_to": [_address_out(a) for a in m.reply_to],
        "to": [_address_out(a) for a in m.to],
        "cc": [_address_out(a) for a in m.cc],
        "date": _dt_out(m.date),
        "received_at": _dt_out(m.received_at),
        "text_body": m.text_body,
        "html_body": m.html_body,
        "attachments": [_part_out(p) for p in m.attachments],
        "headers": [[k, v] for k, v in m.headers],
        "auto_reply": m.auto_reply,
        "authentication_results": list(m.authentication_results),
        "problems": [_problem_out(p) for p in m.problems],
        "header_bytes": m.header_bytes,
        "linked_files": [[f.path, f.filename, f.url, f.expires, f.size, f.provider] for f in m.linked_files],
    }


def _part_out(p: Part) -> dict:
    return {
        "path": p.path,
        "filename": p.filename,
        "content_type": p.content_type,
        "declared_type": p.declared_type,
        "size": p.size,
        "sha256": p.sha256,
        "kind": p.kind.value,
        "document": _document_out(p.document) if p.document is not None else None,
        "message": message_to_plain(p.message) if p.message is not None else None,
        "children": [_part_out(c) for c in p.children],
        "problem": _problem_out(p.problem) if p.problem is not None else None,
        "warnings": [_problem_out(w) for w in p.warnings],
        "inline": p.inline,
    }


def _document_out(d: DocumentText) -> dict:
    return {
        "paragraphs": [[p.text, p.style, p.where, p.bold, p.centered] for p in d.paragraphs],
        "tables": [[list(row) for row in table] for table in d.tables],
        "title": d.title,
    }


def _problem_out(p: Problem) -> list[str]:
    return [p.code.value, p.detail]


def _address_out(a: Address) -> list[str]:
    return [a.name, a.address]


def _dt_out(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def limits_to_plain(limits: ParseLimits) -> dict:
    return {f.name: getattr(limits, f.name) for f in fields(ParseLimits)}


# -- from plain ---------------------------------------------------------------------------------


def message_from_plain(data: object, _depth: int = 0) -> ParsedMessage:
    if _depth > MAX_NESTING:
        raise PlainError("nested too deeply")
    d = _dict(data)
    return ParsedMessage(
        message_id=_str(d, "message_id"),
        subject=_str(d, "subject"),
        sender=_address_in(d.get("sender")),
        from_count=_int(d, "from_count"),
        reply_to=tuple(_address_in(a) for a in _list(d.get("reply_to"))),
        to=tuple(_address_in(a) for a in _list(d.get("to"))),
        cc=tuple(_address_in(a) for a in _list(d.get("cc"))),
        date=_dt_in(d.get("date")),
        received_at=_dt_in(d.get("received_at")),
        text_body=_str(d, "text_body"),
        html_body=_str(d, "html_body"),
        attachments=tuple(_part_in(p, _depth + 1) for p in _list(d.get("attachments"))),
        headers=tuple(_pair(h) for h in _list(d.get("headers"))),
        auto_reply=_str(d, "auto_reply"),
        authentication_results=_strs(d.get("authentication_results")),
        problems=tuple(_problem_in(p) for p in _list(d.get("problems"))),
        header_bytes=_int(d, "header_bytes"),
        linked_files=tuple(LinkedFile(*_strs(_list(f, size=6))) for f in _list(d.get("linked_files", []))),
    )


def _part_in(data: object, depth: int) -> Part:
    if depth > MAX_NESTING:
        raise PlainError("nested too deeply")
    d = _dict(data)
    try:
        kind = PartKind(_str(d, "kind"))
    except ValueError as err:
        raise PlainError(f"unknown part kind {d.get('kind')!r}") from err
    document, message, problem = d.get("document"), d.get("message"), d.get("problem")
    return Part(
        path=_str(d, "path"),
        filename=_str(d, "filename"),
        content_type=_str(d, "content_type"),
        declared_type=_str(d, "declared_type"),
        size=_int(d, "size"),
        sha256=_str(d, "sha256"),
        kind=kind,
        document=_document_in(document) if document is not None else None,
        message=message_from_plain(message, depth + 1) if message is not None else None,
        children=tuple(_part_in(c, depth + 1) for c in _list(d.get("children"))),
        problem=_problem_in(problem) if problem is not None else None,
        warnings=tuple(_problem_in(w) for w in _list(d.get("warnings"))),
        inline=_bool(d, "inline"),
    )


def _document_in(data: object) -> DocumentText:
    d = _dict(data)
    paragraphs = []
    for item in _list(d.get("paragraphs")):
        text, style, where, bold, centered = _list(item, size=5)
        if not (isinstance(text, str) and isinstance(style, str) and isinstance(where, str)
                and isinstance(bold, bool) and isinstance(centered, bool)):  # fmt: skip
            raise PlainError("bad paragraph")
        paragraphs.append(Paragraph(text, style, where, bold, centered))
    tables = tuple(tuple(_strs(row) for row in _list(table)) for table in _list(d.get("tables")))
    return DocumentText(tuple(paragraphs), tables, _str(d, "title"))


def _problem_in(data: object) -> Problem:
    code, detail = _list(data, size=2)
    if not (isinstance(code, str) and isinstance(detail, str)):
        raise PlainError("bad problem")
    try:
        return Problem(ProblemCode(code), detail)
    except ValueError as err:
        raise PlainError(f"unknown problem code {code!r}") from err


def _address_in(data: object) -> Address:
    name, address = _list(data, size=2)
    if not (isinstance(name, str) and isinstance(address, str)):
        raise PlainError("bad address")
    return Address(name, address)


def _pair(data: object) -> tuple[str, str]:
    key, value = _list(data, size=2)
    if not (isinstance(key, str) and isinstance(value, str)):
        raise PlainError("bad header")
    return key, value


def _dt_in(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PlainError("bad date")
    try:
        return datetime.fromisoformat(value)
    except ValueError as err:
        raise PlainError("bad date") from err


def limits_from_plain(data: object) -> ParseLimits:
    d = _dict(data)
    values: dict[str, Any] = {}
    for f in fields(ParseLimits):
        value = d.get(f.name)
        if (not isinstance(value, bool)) if f.type == "bool" else (isinstance(value, bool) or not isinstance(value, int | float)):
            raise PlainError(f"bad limit {f.name}")
        values[f.name] = value
    return ParseLimits(**values)


def _dict(data: object) -> dict:
    if not isinstance(data, dict):
        raise PlainError(f"expected an object, got {type(data).__name__}")
    return data


def _list(data: object, *, size: int | None = None) -> list:
    if not isinstance(data, list) or (size is not None and len(data) != size):
        raise PlainError("expected a list" + (f" of {size}" if size is not None else ""))
    return data


def _str(d: dict, key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise PlainError(f"{key}: expected text")
    return value


def _strs(data: object) -> tuple[str, ...]:
    items = _list(data)
    if not all(isinstance(x, str) for x in items):
        raise PlainError("expected a list of text")
    return tuple(items)


def _int(d: dict, key: str) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlainError(f"{key}: expected a whole number")
    return value


def _bool(d: dict, key: str) -> bool:
    value = d.get(key)
    if not isinstance(value, bool):
        raise PlainError(f"{key}: expected true/false")
    return value
