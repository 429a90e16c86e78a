"""The workbook as a clerk prints it: LibreOffice turns it into a PDF and we count the pages of every sheet.

Reproduces issue 15's "the workbook does not print": 53 portrait pages, names and headers missing
from later pages, no rates, an autofilter over blank headers, microseconds, pandas' date format.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from pipeline.config import load_config
from pipeline.demo.run import run_demo
from pipeline.outputs.workbook import build_workbook

from .conftest import ROOT, write_config

SHEETS = ["汇总", "未报送名单", "报送情况", "来信明细", "待人工核对", "发件人待确认", "操作记录"]


@pytest.fixture(scope="module")
def demo_book(tmp_path_factory) -> tuple[Path, str]:
    """The demo campaign's workbook, with a contacts.csv that has the new phone column."""
    tmp = tmp_path_factory.mktemp("book")
    data = tmp / "data"
    shutil.copytree(ROOT / "data", data)
    with (ROOT / "data" / "contacts.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    with (data / "contacts.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0].keys(), "phone"])
        writer.writeheader()
        for n, row in enumerate(rows):
            writer.writerow({**row, "phone": f"020-8{n:07d}"})
    config = load_config(write_config(tmp, data=data))
    run = run_demo(config, seed=7)
    try:
        path = build_workbook(run.ctx, run.corpus.as_of, tmp / "book.xlsx")
    finally:
        run.ctx.close()
    return path, config.campaign.name


def test_every_sheet_is_set_up_to_print(demo_book):
    """GIVEN the demo workbook THEN every sheet is landscape A4, one page wide, header row repeated (汇总: one
    page), with the campaign name and page numbers in header/footer, and no autofilter over a blank header."""
    path, campaign = demo_book
    book = openpyxl.load_workbook(path)
    assert [ws.title for ws in book.worksheets if ws.sheet_state == "visible"] == SHEETS
    for ws in book.worksheets:
        if ws.sheet_state != "visible":
            continue
        setup = ws.page_setup
        assert setup.orientation == "landscape" and str(setup.paperSize) == "9", ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert setup.fitToWidth in (1, None), ws.title  # None is Excel's default of 1
        if ws.title == "汇总":
            assert setup.fitToHeight in (1, None), ws.title  # one page tall
        else:
            assert setup.fitToHeight == 0, ws.title  # as many pages tall as needed
        assert campaign in ws.oddHeader.left.text and "&A" in ws.oddHeader.right.text, ws.title
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text, ws.title
        if ws.title != "汇总":
            assert ws.print_title_rows == "$1:$1", ws.title
        if ws.auto_filter.ref:
            assert all(str(c.value or "").strip() for c in ws[1]), ws.title


def test_dates_are_real_excel_dates_shown_to_the_minute(demo_book):
    """GIVEN the workbook THEN every date cell is a datetime formatted yyyy-mm-dd hh:mm, without microseconds."""
    path, _ = demo_book
    book = openpyxl.load_workbook(path)
    seen = 0
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, datetime):
                    seen += 1
                    assert cell.number_format == "yyyy-mm-dd hh:mm", (ws.title, cell.coordinate, cell.number_format)
                    assert cell.value.microsecond == 0
    assert seen > 100
    facts = {r[0]: r[1] for r in book["汇总"].iter_rows(values_only=True) if r and r[0]}
    assert isinstance(facts["生成时间"], datetime)


def test_summary_has_rates_and_a_native_chart(demo_book):
    """GIVEN the workbook THEN 汇总 gives 上报率 and 及时率 overall, by district and by channel, computed from the
    status sheet's rows, and carries a native Excel chart."""
    path, _ = demo_book
    book = openpyxl.load_workbook(path)
    status = list(book["报送情况"].iter_rows(values_only=True))
    head = status[0]
    rows = [dict(zip(head, r, strict=True)) for r in status[1:]]
    must = [r for r in rows if r["状态"] != "免报"]
    reported = [r for r in must if r["状态"] in ("按时报送", "逾期报送")]
    on_time = [r for r in must if r["状态"] == "按时报送"]
    summary = list(book["汇总"].iter_rows(values_only=True))
    facts = {r[0]: r[1] for r in summary if r and r[0]}
    assert facts["上报率"] == pytest.approx(len(reported) / len(must))
    assert facts["及时率"] == pytest.approx(len(on_time) / len(must))
    at = next(i for i, r in enumerate(summary) if r[0] == "按区统计") + 1
    cols = summary[at]
    for line in summary[at + 1 :]:
        if line[0] is None:
            break
        group = [r for r in must if r["区"] == line[0]]
        if group:
            share = sum(r["状态"] in ("按时报送", "逾期报送") for r in group) / len(group)
            assert line[cols.index("上报率")] == pytest.approx(share), line[0]
    assert any(r[0] == "按报送渠道统计" for r in summary)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert any(n.startswith("xl/charts/chart") for n in names)
        assert "scatterChart" in z.read(next(n for n in names if n.startswith("xl/charts/chart"))).decode()


def test_outstanding_sheet_lists_who_to_phone(demo_book):
    """GIVEN overdue units WHEN the workbook is built THEN 未报送名单 lists exactly the overdue and pending
    units with district, channel, contact person, address and the phone from contacts.csv."""
    path, _ = demo_book
    book = openpyxl.load_workbook(path)
    status = list(book["报送情况"].iter_rows(values_only=True))
    wanted = {r[status[0].index("机构")] for r in status[1:] if r[status[0].index("状态")] in ("逾期未报", "未报（未到期）")}
    sheet = list(book["未报送名单"].iter_rows(values_only=True))
    head = sheet[0]
    assert {"区", "报送渠道", "联系人", "邮箱", "电话", "已发催报次数"} <= set(head)
    listed = [dict(zip(head, r, strict=True)) for r in sheet[1:]]
    assert wanted and {r["机构"] for r in listed} == wanted
    with (ROOT / "data" / "contacts.csv").open(encoding="utf-8-sig") as f:
        person_of = {row["address"].lower(): row["person"] for row in csv.DictReader(f)}
    with_phone = [r for r in listed if r["电话"]]
    assert with_phone, "no outstanding unit got its phone"
    for r in with_phone:
        first = r["邮箱"].split("；")[0]
        assert person_of[first] in r["联系人"]
        assert r["电话"].startswith("020-8")


def _office() -> str:
    office = shutil.which("soffice") or shutil.which("libreoffice")
    assert office, "LibreOffice is missing: scripts/setup --with-services installs libreoffice-calc-nogui"
    return office


def test_printed_pages_per_sheet(demo_book, tmp_path):
    """GIVEN the workbook WHEN LibreOffice prints it to PDF THEN 汇总 and 未报送名单 are one page each, every
    other sheet is a few pages, each page carries its sheet's header row, the campaign name and a page
    number, and the hidden chart data is not printed (before: 53 portrait pages)."""
    path, campaign = demo_book
    profile = tmp_path / "lo-profile"
    subprocess.run(
        [_office(), f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
         "--outdir", str(tmp_path), str(path)],
        check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    pages = [p.extract_text() for p in PdfReader(tmp_path / "book.pdf").pages]
    per_sheet: dict[str, list[str]] = {}
    for n, text in enumerate(pages, start=1):
        first = text.splitlines()[0]
        assert first.startswith(campaign), first
        sheet = first.removeprefix(campaign).strip()
        per_sheet.setdefault(sheet, []).append(text)
        assert f"第 {n} 页 / 共 {len(pages)} 页" in text
    assert list(per_sheet) == SHEETS
    counts = {name: len(texts) for name, texts in per_sheet.items()}
    assert counts["汇总"] == 1 and counts["未报送名单"] == 1, counts
    assert counts["报送情况"] <= 3 and all(n <= 3 for n in counts.values()), counts
    assert len(pages) <= 12, counts
    for name, texts in per_sheet.items():
        book = openpyxl.load_workbook(path, read_only=True)
        header = " ".join(str(c.value) for c in next(book[name].iter_rows(max_row=1)) if c.value)
        for text in texts:
            assert header.split()[1] in text, (name, header)  # the repeated header row is on every page
    summary = per_sheet["汇总"][0]
    assert "上报率" in summary and "及时率" in summary and "累计报送单位数与截止时间" in summary
