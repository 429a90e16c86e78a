"""Spreadsheets to DocumentText: xlsx/xlsm with openpyxl, legacy xls with xlrd.

Each non-empty sheet becomes one table (empty rows skipped, trailing empty cells
trimmed) preceded by a paragraph with the sheet's name (style "Sheet").

openpyxl parses with lxml (resolve_entities=False) for small parts but with the stdlib
expat `iterparse` for worksheets and shared strings, and defusedxml is not installed;
so it is handed a GuardedZipFile that caps every part it opens and refuses any part
carrying a DTD before a parser sees it.
"""

from __future__ import annotations

import io
from datetime import date, datetime, time

import xlrd
from openpyxl.reader.excel import ExcelReader

from parsers.documents.archive import check_zip
from parsers.documents.base import (
    Context,
    LimitExceeded,
    Outcome,
    TextBudget,
    UnsafeXml,
    short,
    unreadable,
)
from parsers.documents.xmlguard import GuardedZipFile, XmlGuard
from parsers.types import DocumentText, Paragraph, PartKind, Problem, ProblemCode

_MAX_CELLS = 1_000_000  # cells visited (empty ones too) per workbook: bounds CPU on sparse sheets
_MACRO_TYPES = ("application/vnd.ms-excel.sheet.macroEnabled.12",)


class _ExcelReader(ExcelReader):
    """openpyxl's ExcelReader over our already opened GuardedZipFile, read-only, values only."""

    def __init__(self, archive: GuardedZipFile) -> None:  # same attributes as ExcelReader.__init__
        self.archive = archive
        self.valid_files = archive.namelist()
        self.read_only = True
        self.keep_vba = False
        self.data_only = True
        self.keep_links = False
        self.rich_text = False
        self.shared_strings: list[str] = []


class _Collector:
    """Turns rows of cell values into budgeted tables, counting visited cells."""

    def __init__(self, budget: TextBudget) -> None:
        self.budget = budget
        self.cells_left = _MAX_CELLS
        self.paragraphs: list[Paragraph] = []
        self.tables: list[tuple[tuple[str, ...], ...]] = []

    @property
    def full(self) -> bool:
        return self.budget.exhausted or self.cells_left <= 0

    def sheet(self, name: str, rows) -> None:
        table: list[tuple[str, ...]] = []
        for row in rows:
            self.cells_left -= len(row) or 1
            if self.full:
                break
            cells = [_cell_text(value) for value in row]
            while cells and not cells[-1]:
                cells.pop()
            size = sum(map(len, cells))
            if size <= self.budget.left:  # the common case: one budget update per row
                self.budget.left -= size
            else:
                cells = [self.budget.take(cell) or "" for cell in cells]
            if cells:
                table.append(tuple(cells))
        if table:
            self.paragraphs.append(Paragraph(name, style="Sheet"))
            self.tables.append(tuple(table))

    def outcome(self, warnings: list[Problem], title: str = "") -> Outcome:
        if self.cells_left <= 0:
            warnings.append(Problem(ProblemCode.TEXT_TRUNCATED, f"spreadsheet cut short after {_MAX_CELLS} cells"))
        document = DocumentText(paragraphs=tuple(self.paragraphs), tables=tuple(self.tables), title=title)
        return Outcome(PartKind.DOCUMENT, document=document, warnings=warnings + self.budget.warnings())


def _cell_text(value) -> str:
    if value is None:
        return ""
    if value.__class__ is str:
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def read_xlsx(ctx: Context) -> Outcome:
    """Kind DOCUMENT for xlsx/xlsm/xltx; UNREADABLE with a reason otherwise."""
    zf = ctx.zf
    if not isinstance(zf, GuardedZipFile):
        return unreadable(ProblemCode.TRUNCATED, f"xlsx: bad zip central directory ({ctx.zip_error})")
    warnings = [Problem(ProblemCode.MACRO)] if ctx.content_type in _MACRO_TYPES else []
    limits = ctx.limits
    problem = check_zip(zf, limits, max_members=limits.max_archive_members * 20)
    if problem:
        return unreadable(problem, warnings=warnings)
    total = min(limits.max_document_bytes, ctx.budget.expanded_left)
    guard = zf.guard = XmlGuard(part_cap=limits.max_document_xml_bytes, total_left=total)
    collector = _Collector(TextBudget(limits.max_text_chars))
    try:
        # (openpyxl's UserWarnings are left alone: silencing them would mutate global state.)
        reader = _ExcelReader(zf)
        reader.read()
        workbook = reader.wb
        for sheet in workbook.worksheets:
            if collector.full:
                break
            if hasattr(sheet, "reset_dimensions"):
                sheet.reset_dimensions()  # ignore a bogus A1:XFD1048576 dimension: no padding
            collector.sheet(sheet.title, sheet.iter_rows(values_only=True))
        title = (workbook.properties.title or "").strip() if workbook.properties else ""
    except (LimitExceeded, UnsafeXml) as exc:
        return unreadable(exc.problem, warnings=warnings)
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, (LimitExceeded, UnsafeXml)) else None
        if cause is not None:
            return unreadable(cause.problem, warnings=warnings)
        return unreadable(ProblemCode.CORRUPT, f"xlsx could not be read: {short(exc)}", warnings)
    finally:
        zf.guard = None
        ctx.budget.expanded_left -= total - max(0, guard.total_left)
    return collector.outcome(warnings, title)


def read_xls(ctx: Context) -> Outcome:
    """Kind DOCUMENT for legacy BIFF workbooks (xlrd); UNREADABLE when encrypted or broken."""
    try:
        book = xlrd.open_workbook(
            file_contents=ctx.data, logfile=io.StringIO(), verbosity=0, on_demand=True, formatting_info=False
        )
    except Exception as exc:  # XLRDError, CompDocError, struct/index errors on damaged files
        if "encrypt" in str(exc).lower():
            return unreadable(ProblemCode.ENCRYPTED_OFFICE, "xls")
        return unreadable(ProblemCode.CORRUPT, f"legacy Excel .xls could not be read: {short(exc)}")
    collector = _Collector(TextBudget(ctx.limits.max_text_chars))
    try:
        for index in range(book.nsheets):
            if collector.full:
                break
            sheet = book.sheet_by_index(index)
            rows = ([_xls_value(cell, book.datemode) for cell in sheet.row(r)] for r in range(sheet.nrows))
            collector.sheet(sheet.name, rows)
            book.unload_sheet(index)
    except Exception as exc:  # a damaged sheet record
        return unreadable(ProblemCode.CORRUPT, f"legacy Excel .xls could not be read: {short(exc)}")
    finally:
        book.release_resources()
    return collector.outcome([])


def _xls_value(cell, datemode: int):
    kind = cell.ctype
    if kind == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate_as_datetime(cell.value, datemode)
        except Exception:
            return cell.value
    if kind == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if kind == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERR")
    return cell.value
