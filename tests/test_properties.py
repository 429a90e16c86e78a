"""Property-based tests of the parsing boundary: whatever bytes arrive, nothing raises and a row is stored.

Inputs: arbitrary bytes, and real sample messages (docx, pdf, xlsx, zip, attached mail) mutated
the way damaged or hostile mail is — bit flips, truncation, duplicated or missing boundaries,
inserted and removed headers, spliced garbage.  Example counts are bounded to keep the module
at about twenty seconds.
"""

from __future__ import annotations

import functools
import re
from email.header import Header

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.message import parse_message
from parsers.types import ParsedMessage
from pipeline.context import Context
from pipeline.demo.samples import generate_corpus
from pipeline.inbound.ingest import ingest_raw
from storage.messages import fetch_message

from .conftest import ROOT
from .docfactory import pdf_bytes, xlsx_bytes, zip_bytes
from .hostile import attached_message_chain, attachment, mail, report_docx

INSERTED_HEADERS = [
    b'Content-Type: multipart/mixed; boundary=""',
    b"Content-Type: multipart/mixed",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Type: message/rfc822",
    b'Content-Type: text/plain; charset="x-\xff\xfe"',
    b"Content-Disposition: attachment; filename*=utf-8''%FF%FE%00..%2F..%2Fx",
    b"From: =?utf-8?B?====?= <@@>",
    b"Subject: =?gb2312?Q?=FF=FE=?=",
    b"Received: from x by y; Feb 30 9999 99:99:99 +9999",
]


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """Real messages to mutate: sample mail of several kinds and a few hand-built structures."""
    corpus = generate_corpus(
        ROOT / "data" / "roster.csv", ROOT / "data" / "bureaus.csv", ROOT / "data" / "contacts.csv"
    )
    picked: list[bytes] = []
    for marker in (b"application/zip", b"wordprocessingml", b"application/pdf", b"spreadsheetml", b"message/rfc822",
                   b"text/html", b"gb2312"):  # fmt: skip
        found = next((m.raw for m in corpus.mails if marker in m.raw and len(m.raw) < 200_000), None)
        if found is not None:
            picked.append(found)
    name = "广州市第一人民医院"
    picked.append(mail(1, parts=[attachment(zip_bytes({"报告.docx": report_docx(name)}), "报告.zip"),
                                 attachment(pdf_bytes([["自查报告", name]]), "报告.pdf"),
                                 attachment(xlsx_bytes({"表": [["机构", name]]}), "表.xlsx")]))  # fmt: skip
    picked.append(
        mail(2, parts=[attached_message_chain(2, mail(3, parts=[attachment(report_docx(name), "r.docx")]))])
    )
    return tuple(picked)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "boundary", "header", "delete", "splice", "crlf"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "boundary":
            boundaries = re.findall(rb"\n(--[^\r\n]{1,80})\r?\n", bytes(data))
            if boundaries:
                line = draw(st.sampled_from(boundaries))
                data[at:at] = b"\r\n" + line + draw(st.sampled_from([b"", b"--"])) + b"\r\n"
        elif op == "header":
            data[at:at] = b"\r\n" + draw(st.sampled_from(INSERTED_HEADERS)) + b"\r\n"
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 5000))]
        elif op == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=200))
        elif op == "crlf":
            data = bytearray(
                bytes(data).replace(b"\r\n", b"\n") if b"\r\n" in data else bytes(data).replace(b"\n", b"\r")
            )
    return bytes(data)


def test_seeds_are_real_messages() -> None:
    parsed = [parse_message(raw) for raw in seeds()]
    assert len(parsed) >= 6 and all(p.attachments or p.text_body for p in parsed)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_message(raw), ParsedMessage)


@settings(
    max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(mutated())
def test_mutated_messages_never_raise(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    for part in parsed.walk_parts():
        assert part.problem or part.document is not None or part.children or part.message is not None


@pytest.fixture
def store(ctx: Context) -> Context:
    return ctx


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(raw=st.one_of(mutated(), st.binary(max_size=2048)))
def test_every_input_becomes_a_stored_row(store: Context, raw: bytes) -> None:
    """GIVEN any bytes WHEN ingested (parsed in the sandbox, attributed, saved) THEN a row exists for them,
    parsed or failed with a reason, never pending, and its raw file holds exactly these bytes."""
    result = ingest_raw(store, raw, source="file", ref="hypothesis")
    with store.db.connect() as conn:
        row = fetch_message(conn, result.message_id)
    assert row is not None and row.parse_status in ("ok", "failed")
    assert row.parse_status == "ok" or row.parse_error
    assert store.raw.get(row.raw_path, row.sha256) == raw


def _base64_part(payload: str, encoding: str = "base64"):  # noqa: ANN202 - an email.message.Message
    from email.message import Message

    part = Message()
    part["Content-Type"] = "application/octet-stream"
    part["Content-Transfer-Encoding"] = Header(encoding) if encoding.startswith("=?") else encoding
    part.set_payload(payload)
    return part


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="AQZaz09+/=\r\n \t*", max_size=40),
       st.sampled_from(["base64", "BASE64", "base64 ", "=?gbk?B?YmFzZTY0?=", "quoted-printable", "\udcff"]))
def test_the_one_step_base64_decode_agrees_with_the_stdlib(payload: str, encoding: str) -> None:
    """GIVEN any base64-ish payload (stray padding, blanks, short quanta) under any transfer-encoding header
    WHEN the one-step decoder takes it THEN its bytes are the stdlib's and the stdlib saw no defect in it;
    otherwise it leaves it to the stdlib."""
    from parsers.message import _plain_base64

    fast = _plain_base64(_base64_part(payload, encoding))
    if fast is not None:
        stdlib = _base64_part(payload, encoding)
        assert stdlib.get_payload(decode=True) == fast
        assert not stdlib.defects


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["\n", "\r\n", ""]))
def test_what_mail_clients_write_is_decoded_in_one_step(data: bytes, newline: str) -> None:
    import base64

    from parsers.message import _plain_base64

    encoded = base64.encodebytes(data).decode().replace("\n", newline or "\n")
    if not newline:
        encoded = base64.b64encode(data).decode()
    assert _plain_base64(_base64_part(encoded)) == data
