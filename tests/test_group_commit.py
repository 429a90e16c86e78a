"""Group commit: a batch's raw files are durable before its rows, its rows are one transaction,
and parsing is spread over parser processes without changing what is recorded."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
from sqlalchemy import event, func, select

import pipeline.inbound.group as group
import storage.batch as storage_batch
from parsers.types import ParsedMessage
from pipeline.campaign_data import load_campaign_data
from pipeline.context import Context
from pipeline.inbound import pool
from pipeline.inbound.ingest import Ingestor, ingest_paths
from pipeline.outputs.views import message_views
from storage.batch import put_raw_batch
from storage.schema import message_sources, messages

from .hostile import attachment, mail, text_part
from .test_ingest import sample_mail, write_folder


class Counter:
    """Counts BEGIN IMMEDIATE (write transactions), fsync and syncfs calls while active."""

    def __init__(self, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
        self.transactions = 0
        self.fsyncs: list[int] = []
        self.syncfs = 0
        real = os.fsync
        real_syncfs = storage_batch._syncfs

        def syncfs(path):  # noqa: ANN001, ANN202
            self.syncfs += 1
            return real_syncfs(path)

        monkeypatch.setattr(storage_batch, "_syncfs", syncfs)

        def fsync(fd: int) -> None:
            self.fsyncs.append(fd)
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

        @event.listens_for(ctx.db.engine, "before_cursor_execute")
        def _count(conn, cursor, statement, *args):  # noqa: ANN001, ANN002, ANN202
            if statement.strip().upper().startswith("BEGIN IMMEDIATE"):
                self.transactions += 1


def rows(ctx: Context, table) -> int:  # noqa: ANN001
    with ctx.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_batch_is_stored_with_one_transaction_after_its_files_are_fsynced(ctx: Context, monkeypatch) -> None:
    """GIVEN 20 new messages WHEN stored as one batch THEN every raw file is fsync'd once, each directory that
    changed is fsync'd once, and their 20 rows and sources are written in ONE transaction, after the files."""
    raws = [sample_mail(n) for n in range(20)]
    queue = [group.Queued(raw, "file", f"f/{n}", None, n) for n, raw in enumerate(raws)]
    counter = Counter(ctx, monkeypatch)
    order: list[str] = []
    real_put = group.put_raw_batch

    def put(store, datas):  # noqa: ANN001, ANN202
        result = real_put(store, datas)
        order.append(f"files durable, transactions so far {counter.transactions}")
        return result

    monkeypatch.setattr(group, "put_raw_batch", put)
    outcomes = group.store_batch(ctx, queue)
    assert order == ["files durable, transactions so far 0"]
    assert counter.transactions == 1
    # Each of the 20 files fsync'd, then ONE syncfs for every directory entry of the batch, then SQLite's
    # commit (WAL: at most the log and the database file).
    assert 20 <= len(counter.fsyncs) <= 22 and counter.syncfs == 1
    assert [(s.created, pending) for s, pending in outcomes] == [(True, True)] * 20
    assert rows(ctx, messages) == rows(ctx, message_sources) == 20
    assert [s.key for s, _ in outcomes] == list(range(20))


def test_copies_within_a_batch_and_already_stored_messages(ctx: Context) -> None:
    """GIVEN a batch with message A twice (two refs) and B already stored and still pending WHEN stored THEN A
    is one row with two sources, processed once; B gets its new source and is processed once."""
    a, b = sample_mail(1), sample_mail(2)
    [(stored_b, _)] = group.store_batch(ctx, [group.Queued(b, "file", "b1", None, "b1")])
    outcomes = group.store_batch(ctx, [group.Queued(a, "file", "a1", None, "a1"),
                                       group.Queued(a, "file", "a2", None, "a2"),
                                       group.Queued(b, "file", "b2", None, "b2"),
                                       group.Queued(b, "file", "b3", None, "b3")])  # fmt: skip
    got = [(s.key, s.created, pending) for s, pending in outcomes]
    assert got == [("a1", True, True), ("a2", False, False), ("b2", False, True), ("b3", False, False)]
    assert outcomes[0][0].message_id == outcomes[1][0].message_id
    assert outcomes[2][0].message_id == stored_b.message_id
    assert rows(ctx, messages) == 2 and rows(ctx, message_sources) == 5
    assert len(list((ctx.data_dir / "raw").rglob("*.eml"))) == 2


def test_a_message_the_database_refuses_fails_alone(ctx: Context, monkeypatch) -> None:
    """GIVEN a batch of 5 in which the database refuses message 3 WHEN stored THEN the 4 others are stored
    and processed, and message 3 carries the reason (nothing is lost silently)."""
    raws = [sample_mail(n) for n in range(5)]
    real_one = group.store_message

    def refuse_third(ctx, raw, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if raw == raws[2]:
            raise ValueError("value refused")
        return real_one(ctx, raw, **kwargs)

    def refuse_batch(conn, new):  # noqa: ANN001, ANN202
        raise ValueError("value refused")

    monkeypatch.setattr(group, "save_new_messages", refuse_batch)
    monkeypatch.setattr(group, "store_message", refuse_third)
    with Ingestor(ctx) as ingestor:
        for n, raw in enumerate(raws):
            ingestor.add(raw, source="file", ref=f"r{n}", key=n)
    assert [bool(s.error) for s in ingestor.stored] == [False, False, True, False, False]
    assert "value refused" in ingestor.stored[2].error
    assert rows(ctx, messages) == 4 and len(ingestor.results) == 4 and all(r.parse_ok for r in ingestor.results)


def test_nothing_is_durable_before_flush_and_everything_after(ctx: Context) -> None:
    """GIVEN an Ingestor with batches of 4 WHEN 6 messages are added THEN the first 4 are rows at once,
    the last 2 only after close; all 6 are processed."""
    with Ingestor(ctx, batch_size=4) as ingestor:
        for n in range(6):
            ingestor.add(sample_mail(n), source="file", ref=f"r{n}")
        assert rows(ctx, messages) == 4
    assert rows(ctx, messages) == 6 and len(ingestor.results) == 6


@pytest.mark.parametrize("syncfs", [True, False])
def test_raw_batch_leaves_no_temp_files_and_owner_only_modes(tmp_path, monkeypatch, syncfs) -> None:  # noqa: ANN001
    """GIVEN a batch with the same bytes twice (with syncfs, and without as on other systems, where each changed
    folder is fsync'd instead) THEN two files, mode 0600 in 0700 folders, no temp file left."""
    from storage.rawstore import RawStore

    fsynced_dirs: list[int] = []
    if not syncfs:
        monkeypatch.setattr(storage_batch, "_libc", None)
        monkeypatch.setattr(storage_batch, "fsync_dir", lambda path: fsynced_dirs.append(path))
    store = RawStore(tmp_path)
    stored = put_raw_batch(store, [b"one", b"two", b"one"])
    if not syncfs:  # the two leaf folders, the folders above them, and raw/ and the data dir (new too)
        assert len(fsynced_dirs) >= 4
    assert [s.created for s in stored] == [True, True, False]
    files = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert len(files) == 2 and all(not p.name.startswith(".tmp-") for p in files)
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in files)
    assert all(oct(d.stat().st_mode & 0o777) == "0o700" for d in (tmp_path / "raw").rglob("*") if d.is_dir())
    assert [s.created for s in put_raw_batch(store, [b"two"])] == [False]


def test_two_parser_processes_record_what_one_records(config, tmp_path) -> None:  # noqa: ANN001
    """GIVEN the same 30 messages WHEN ingested with parse_workers = 1 and = 2 THEN the recorded messages
    (kind, institutions, subject) are identical, and with 2 both parser processes did work."""
    from pipeline.context import open_context

    folder = tmp_path / "mail"
    write_folder(folder, 30)
    seen: dict[int, list] = {}
    for workers in (1, 2):
        cfg = replace(config, storage=replace(config.storage, data_dir=tmp_path / f"data{workers}"),
                      parse_workers=workers)  # fmt: skip
        ctx = open_context(cfg)
        try:
            assert pool.worker_count(cfg) == workers
            boxes = pool.parsers(cfg, workers)
            summary = ingest_paths(ctx, [folder])
            assert summary.new == 30
            views = message_views(ctx)
            seen[workers] = sorted((v.message.subject, v.kind, v.institutions) for v in views)
            assert all(box.pid is not None for box in boxes)  # each parser process was started and used
        finally:
            ctx.close()
    assert seen[1] == seen[2]


def test_a_slow_message_does_not_hold_back_the_ones_behind_it(ctx: Context) -> None:
    """GIVEN a message that takes 3 s to parse (as an OCR'd scan does) followed by 5 text messages WHEN processed
    THEN the 5 text messages are recorded before the slow one, while it is still being parsed, and then it is too."""
    from pipeline.inbound.sandbox import parse_stoppable

    scan = mail(99, body="扫描件", parts=[attachment(b"\xff\xd8\xff\xe0fakejpeg", "扫描.jpg", "image/jpeg")])
    texts = [mail(n, body=f"正文 {n}", parts=[text_part(f"附件 {n}")]) for n in range(5)]
    finished: dict[str, float] = {}

    def slow_parse(config, raw):  # noqa: ANN001, ANN202
        time.sleep(3)
        outcome: tuple[ParsedMessage | None, str] = parse_stoppable(config, raw)
        finished["slow"] = time.monotonic()
        return outcome

    def scan_not_done_yet() -> None:
        assert "slow" not in finished  # the text messages did not wait for it

    ids, text_done, results = _through_an_ocr_lane(ctx, [scan, *texts], slow_parse, before_close=scan_not_done_yet)
    # Recorded in order, the last text one at close (one parse is always in flight); the scan last of all.
    assert text_done == ids[1:5]
    assert [r.message_id for r in results][-2:] == [ids[5], ids[0]]
    assert len(results) == 6 and all(r.parse_ok for r in results)


def _through_an_ocr_lane(ctx: Context, raws: list[bytes], slow_parse, *, before_close=lambda: None):  # noqa: ANN001, ANN202
    """Store `raws` as one batch and process them on one parser process with an OCR lane (`slow_parse`).
    Returns their message ids, the results recorded before the processor closed, and all results."""
    queue = [group.Queued(raw, "file", f"r{n}", None, n) for n, raw in enumerate(raws)]
    outcomes = group.store_batch(ctx, queue)
    boxes = pool.parsers(ctx.config, 1)
    with pool.Pipelined(ctx, load_campaign_data(ctx), boxes, slow=pool.needs_ocr, slow_parse=slow_parse) as processing:
        for (stored, _pending), item in zip(outcomes, queue, strict=True):
            processing.push(stored.message_id, raw=item.raw)
        early = [r.message_id for r in processing.results]
        before_close()
    return [stored.message_id for stored, _pending in outcomes], early, processing.results


def _blank_pdf() -> bytes:
    """A one-page PDF with no text layer (what a scanner sends, minus the ink)."""
    import io

    from pypdf import PdfWriter

    writer, out = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=595, height=842)
    writer.write(out)
    return out.getvalue()


def _zipped(name: str, data: bytes) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(name, data)
    return out.getvalue()


def test_a_parse_with_deferred_ocr_says_which_messages_need_it() -> None:
    """GIVEN a zip holding a textless PDF WHEN parsed with defer_ocr THEN no OCR runs and the message says it
    needs OCR; parsed normally it does not say so; a text message never says so."""
    from parsers.message import parse_message
    from parsers.types import ParseLimits

    zipped = mail(1, parts=[attachment(_zipped("扫描件.pdf", _blank_pdf()), "报告.zip", "application/zip")])
    assert not pool.needs_ocr(zipped)  # the headers do not show the scan
    assert parse_message(zipped, limits=ParseLimits(defer_ocr=True)).ocr_deferred
    assert not parse_message(zipped, limits=ParseLimits()).ocr_deferred
    assert not parse_message(mail(2, parts=[text_part("只有文字")]), limits=ParseLimits(defer_ocr=True)).ocr_deferred


def test_a_scan_the_headers_do_not_show_goes_to_the_ocr_lane(ctx: Context) -> None:
    """GIVEN a zip holding a scanned (textless) PDF, which the MIME headers call a zip, followed by 5 text
    messages WHEN processed with an OCR lane THEN the zip's message is parsed again on the OCR lane, the text
    messages are recorded before it, and what is recorded for it is the OCR lane's parse, not the deferred one."""
    from pipeline.inbound.sandbox import parse_stoppable
    from storage.messages import fetch_message

    zipped = mail(99, body="扫描件见附件", parts=[attachment(_zipped("扫描件.pdf", _blank_pdf()), "报告.zip", "application/zip")])
    assert not pool.needs_ocr(zipped)
    texts = [mail(n, body=f"正文 {n}", parts=[text_part(f"附件 {n}")]) for n in range(5)]
    on_ocr_lane: list[bytes] = []

    def slow_parse(config, raw):  # noqa: ANN001, ANN202
        on_ocr_lane.append(raw)
        time.sleep(2)
        outcome: tuple[ParsedMessage | None, str] = parse_stoppable(config, raw)
        return outcome

    ids, text_done, results = _through_an_ocr_lane(ctx, [zipped, *texts], slow_parse)
    assert on_ocr_lane == [zipped]
    zip_id = ids[0]
    assert zip_id not in text_done and text_done  # the text messages did not wait for the OCR lane
    assert [r.message_id for r in results][-1] == zip_id
    assert len(results) == 6 and all(r.parse_ok for r in results)
    with ctx.db.connect() as conn:
        row = fetch_message(conn, zip_id)
    assert row is not None
    assert not any("ocr_deferred" in problem for problem in row.problems)


def test_ocr_candidates_are_guessed_from_the_headers() -> None:
    """Images go to the OCR lane at once; PDFs (most have a text layer) and text do not."""
    assert pool.needs_ocr(mail(1, parts=[attachment(b"\x89PNG", "page1.png", "image/png")]))
    assert not pool.needs_ocr(mail(2, parts=[text_part("只有文字")]))
    assert not pool.needs_ocr(mail(3, parts=[attachment(_blank_pdf(), "报告.pdf", "application/pdf")]))


def test_the_text_lane_loads_no_ocr_library_and_defers_every_scan(config) -> None:  # noqa: ANN001
    """GIVEN a text-lane parser process WHEN asked to parse a scanned PDF *without* defer_ocr THEN it defers
    OCR anyway, and neither onnxruntime nor pdfium was ever imported in it; the OCR lane's process has them."""
    from parsers.types import ParseLimits
    from pipeline.inbound.sandbox import ParseSandbox

    scan = mail(1, parts=[attachment(_blank_pdf(), "扫描件.pdf", "application/pdf")])
    text_lane = ParseSandbox(timeout_s=60, memory_mb=config.parse_memory_mb, ocr=False)
    ocr_lane = ParseSandbox(timeout_s=60, memory_mb=config.parse_memory_mb)
    try:
        assert text_lane.parse(scan, ParseLimits()).ocr_deferred
        loaded = "tests.hostile:is_loaded"
        assert not text_lane.call(loaded, "onnxruntime") and not text_lane.call(loaded, "pypdfium2")
        assert not ocr_lane.parse(scan, ParseLimits()).ocr_deferred
        assert ocr_lane.call(loaded, "pypdfium2")
    finally:
        text_lane.close()
        ocr_lane.close()


def test_a_failing_record_still_collects_every_parse(ctx: Context, monkeypatch) -> None:
    """GIVEN two parser processes with parses in flight WHEN recording fails (disk full) THEN the error reaches
    the caller, every parser process is free again (none left holding an answer: the process can exit), and the
    unrecorded rows stay pending for the next run."""
    from pipeline.errors import StorageError
    from pipeline.inbound import process
    from pipeline.vocab import ParseState

    cfg = replace(ctx.config, parse_workers=2)
    ctx = replace(ctx, config=cfg)
    outcomes = group.store_batch(ctx, [group.Queued(sample_mail(n), "file", f"r{n}", None, n) for n in range(5)])

    def disk_full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise StorageError("数据库写入失败（磁盘已满或不可写？）")

    monkeypatch.setattr(process, "_record", disk_full)
    boxes = pool.parsers(cfg, 2)
    with pytest.raises(StorageError), pool.Pipelined(ctx, load_campaign_data(ctx), boxes) as processing:
        for stored, _pending in outcomes:
            processing.push(stored.message_id)
    for box in boxes:
        assert box is not None and box._lock.acquire(timeout=5)  # free: nobody waits on an answer
        box._lock.release()
    with ctx.db.connect() as conn:
        states = conn.execute(select(messages.c.parse_status)).scalars().all()
    assert states == [ParseState.PENDING] * 5


def test_the_ocr_lane_starts_its_second_process_only_while_the_first_is_busy(config) -> None:  # noqa: ANN001
    """GIVEN an OCR lane of two parser processes WHEN scans come one after another THEN they all go to the
    first (the second is never started); WHEN two come at once THEN both processes work."""
    import threading

    from parsers.message import parse_message

    used: list[str] = []
    gate = threading.Barrier(2, timeout=10)

    class Box:
        def __init__(self, name: str, *, wait: bool = False) -> None:
            self.name, self.wait = name, wait

        def submit(self, raw: bytes, limits):  # noqa: ANN001, ANN202
            used.append(self.name)
            if self.wait:
                gate.wait()  # holds this process busy until the other one has started too
            parsed = parse_message(raw, limits=limits)

            class Pending:
                def result(self):  # noqa: ANN202
                    return parsed

            return Pending()

    raw = mail(1, parts=[text_part("正文")])
    lane = pool.OcrLane([Box("first"), Box("second")])  # type: ignore[list-item]
    for _ in range(3):
        assert lane.parse(config, raw)[0] is not None
    assert used == ["first"] * 3
    used.clear()
    busy = pool.OcrLane([Box("first", wait=True), Box("second", wait=True)])  # type: ignore[list-item]
    threads = [threading.Thread(target=busy.parse, args=(config, raw)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(used) == ["first", "second"]
